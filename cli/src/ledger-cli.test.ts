import { suite } from '../../test/harness/suite.js';
import * as assert from 'uvu/assert';
import { spawnSync } from 'node:child_process';
import { copyFileSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { randomUUID } from 'node:crypto';
import type { Bus } from '../../core/src/bus/bus.js';
import { loadConfig } from '../../core/src/config.js';
import { silentLogger } from '../../core/src/log.js';
import { packageRoot } from '../../core/src/package-root.js';
import { EmbeddedStore } from '../../core/src/store/embedded.js';
import { EventCodec } from '../../schemas/src/codec.js';
import type { AgateEvent } from '../../schemas/src/events.js';
import { SAMPLES } from '../../schemas/src/samples.js';
import { directorySink } from '../../services/ledger/src/checkpoint-sink.js';
import { LedgerService } from '../../services/ledger/src/ledger.js';
import { migrateQuery } from '../../services/query/src/schema.js';
import { ledgerSigner } from '../../services/ledger/src/from-config.js';

/*
 * The auditor's path through the real `agate` binary: the ledger writes checkpoint files, the
 * auditor copies one away, then verify, prove, verify-proof and consistency run against the
 * store (stopped Agate, --offline) and against nothing but files and the public key.
 */
const dir = mkdtempSync(join(tmpdir(), 'agate-cli-ledger-'));
const auditor = join(dir, 'auditor');
const configPath = join(dir, 'agate.yaml');
writeFileSync(configPath, `data_dir: ${dir}/data\nidentity:\n  dev_issuer: { enabled: true }\nledger:\n  origin: agate.test/ledger\n  checkpoint: { every_events: 10, dir: ${dir}/checkpoints }\n`);
const config = loadConfig(configPath);
// Every six events (each sample type once) are a session of their own, opened once.
const sessionIds = Array.from({ length: 5 }, () => randomUUID());
const events: AgateEvent[] = Array.from({ length: 30 }, (_, i) => ({ ...Object.values(SAMPLES)[i % 6]!, event_id: randomUUID(), session_id: sessionIds[Math.floor(i / 6)]! }) as AgateEvent);

function agate(...args: string[]): { code: number; out: string } {
  const r = spawnSync(process.execPath, [join(packageRoot(), 'bin', 'agate.js'), ...args], { encoding: 'utf8', timeout: 60_000 });
  return { code: r.status ?? -1, out: `${r.stdout}${r.stderr}` };
}

/** Runs `fn` with the store open in this process, then closes it so the CLI can open it. */
async function onStore(fn: (store: EmbeddedStore) => Promise<void>): Promise<void> {
  const store = EmbeddedStore.open(join(config.data_dir, 'store'));
  try {
    await fn(store);
  } finally {
    await store.close();
  }
}

const cli = suite('agate ledger commands');
cli.before(async () => {
  await onStore(async (store) => {
    const bus = { publish: async () => {}, subscribe: async () => ({ close: async () => {} }) } as unknown as Bus;
    const ledger = new LedgerService({ bus, store, codec: new EventCodec(), chainId: 'embedded', logger: silentLogger, signer: ledgerSigner(config), checkpoints: { everyEvents: 10, everyMs: 60_000, sinks: [directorySink(config.ledger.checkpoint.dir!)] } });
    await ledger.start();
    for (let i = 0; i < 30; i += 10) await ledger.append(events.slice(i, i + 10));
  });
  mkdirSync(auditor);
  for (const n of [10, 30]) copyFileSync(join(dir, 'checkpoints', 'embedded', `${n}.checkpoint`), join(auditor, `${n}.checkpoint`));
  writeFileSync(join(auditor, 'key'), agate('ledger-key', '--config', configPath).out);
});
cli.after(() => rmSync(dir, { recursive: true, force: true }));

const key = () => join(auditor, 'key');
const cp30 = () => join(auditor, '30.checkpoint');

cli('ledger-key prints a note verifier key', () => {
  assert.match(readFileSync(key(), 'utf8'), /^agate\.test\/ledger\+[0-9a-f]{8}\+[A-Za-z0-9+/=]{44}\n$/);
});

cli('verify against a kept checkpoint passes on an intact store', () => {
  const r = agate('verify', '--config', configPath, '--checkpoint', cp30(), '--key', key());
  assert.is(r.code, 0, r.out);
  assert.match(r.out, /chain embedded: OK, records 1\.\.30 verified \(30\); matches signed checkpoint 30/);
});

cli('prove, then verify-proof offline; one changed byte is refused', () => {
  const proofPath = join(auditor, 'proof.json');
  const p = agate('prove', events[12]!.event_id, '--config', configPath, '--offline', '--checkpoint', cp30(), '--out', proofPath);
  assert.is(p.code, 0, p.out);
  const ok = agate('verify-proof', '--proof', proofPath, '--checkpoint', cp30(), '--key', key());
  assert.is(ok.code, 0, ok.out);
  assert.match(ok.out, new RegExp(`OK: event ${events[12]!.event_id} is record 13 of agate.test/ledger/embedded, in the signed tree of 30`));
  const proof = JSON.parse(readFileSync(proofPath, 'utf8')) as { hashes: string[] };
  const h = Buffer.from(proof.hashes[0]!, 'base64');
  h[0]! ^= 1;
  proof.hashes[0] = h.toString('base64');
  writeFileSync(proofPath, JSON.stringify(proof));
  const bad = agate('verify-proof', '--proof', proofPath, '--checkpoint', cp30(), '--key', key());
  assert.is(bad.code, 1);
  assert.match(bad.out, /not in the signed tree/);
});

cli('consistency between two kept checkpoints verifies offline', () => {
  const out = join(auditor, 'consistency.json');
  const c = agate('consistency', join(auditor, '10.checkpoint'), cp30(), '--config', configPath, '--offline', '--key', key(), '--out', out);
  assert.is(c.code, 0, c.out);
  const v = agate('verify-proof', '--proof', out, '--key', key());
  assert.is(v.code, 0, v.out);
  assert.match(v.out, /size 30 extends size 10/);
});

cli('verify --repair-sessions derives lost session rows again from the verified ledger', async () => {
  let session = '';
  await onStore(async (s) => {
    await migrateQuery(s);
    [{ session_id: session }] = (await s.query<{ session_id: string }>('SELECT session_id FROM agate.q_sessions LIMIT 1')) as [{ session_id: string }];
    // What an insert that failed in the views leaves: the ledger's rows without the session rows.
    await s.exec(`ALTER TABLE agate.q_sessions DELETE WHERE session_id = '${session}' SETTINGS mutations_sync = 2`);
    await s.exec(`ALTER TABLE agate.q_session_stats DELETE WHERE session_id = '${session}' SETTINGS mutations_sync = 2`);
  });
  const broken = agate('verify', '--config', configPath, '--offline');
  assert.is(broken.code, 1, broken.out);
  assert.match(broken.out, new RegExp(`session tables: BROKEN: session ${session} is in the ledger`));
  const r = agate('verify', '--config', configPath, '--repair-sessions');
  assert.is(r.code, 0, r.out);
  assert.match(r.out, new RegExp(`session tables: derived again from the verified ledger \\(before: session ${session} is in the ledger`));
  assert.match(r.out, /session tables: OK, \d+ sessions match the ledger/);
  const again = agate('verify', '--config', configPath, '--offline');
  assert.is(again.code, 0, again.out);
  assert.not.match(again.out, /derived again/);
});

cli('a truncated tail is named by plain verify, from the checkpoint directory, even with the store\'s checkpoints cut too', async () => {
  await onStore((s) => s.exec('ALTER TABLE agate.ledger DELETE WHERE seq > 25 SETTINGS mutations_sync = 2'));
  // The ledger's own checkpoints table is in the store too; an attacker truncates it as well.
  await onStore((s) => s.exec('ALTER TABLE agate.checkpoints DELETE WHERE size > 20 SETTINGS mutations_sync = 2'));
  const plain = agate('verify', '--config', configPath, '--offline');
  assert.is(plain.code, 1, plain.out);
  assert.match(plain.out, /BROKEN at record 26: the store ends at record 25, but a signed checkpoint covers 30 records: records 26\.\.30 are missing \(tail truncated\) \[truncated\]/);
  const r = agate('verify', '--config', configPath, '--checkpoint', cp30(), '--key', key());
  assert.is(r.code, 1);
  assert.match(r.out, /BROKEN at record 26: .* \[truncated\]/);
});

cli('a modified field is named by verify', async () => {
  await onStore((s) => s.exec(`ALTER TABLE agate.ledger UPDATE target = 'elsewhere' WHERE seq = 7 SETTINGS mutations_sync = 2`));
  const r = agate('verify', '--config', configPath, '--checkpoint', cp30(), '--key', key());
  assert.is(r.code, 1);
  assert.match(r.out, /BROKEN at record 7 \(event [0-9a-f-]+\): .*\[altered\]/);
  // Session tables are not derived from a ledger that did not verify.
  await onStore((s) => s.exec('ALTER TABLE agate.q_session_stats DELETE WHERE 1 SETTINGS mutations_sync = 2'));
  const repair = agate('verify', '--config', configPath, '--repair-sessions');
  assert.is(repair.code, 1, repair.out);
  assert.match(repair.out, /session tables: not derived again: a chain did not verify/);
});

cli.run();

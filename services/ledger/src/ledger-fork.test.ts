import { suite } from '../../../test/harness/suite.js';
import * as assert from 'uvu/assert';
import { cpSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { createHash, randomUUID } from 'node:crypto';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { Bus } from '../../../core/src/bus/bus.js';
import { AgateError, ErrorCode } from '../../../core/src/errors.js';
import { silentLogger } from '../../../core/src/log.js';
import { EmbeddedStore } from '../../../core/src/store/embedded.js';
import { EventCodec } from '../../../schemas/src/codec.js';
import type { AgateEvent } from '../../../schemas/src/events.js';
import { SAMPLES } from '../../../schemas/src/samples.js';
import { LINK_SQL } from './chain.js';
import { directorySink } from './checkpoint-sink.js';
import { LedgerService } from './ledger.js';
import { generateSignerKey, parseSignerKey, parseVerifierKey, verifierKey } from './note.js';
import { chainsToVerify, verifyWithKnownCheckpoints } from './verify.js';

/*
 * A transparency log never forks. Each case builds a chain with checkpoints published to a
 * directory outside the store, then damages the store as a fault or an attacker would
 * (truncation, a rollback of the whole store to an older copy, a chain re-linked from a changed
 * record on), starts a ledger on it and runs plain verification (no checkpoint named). Both must
 * name the damage, and no checkpoint file may change by a byte.
 */
const codec = new EventCodec();
const root = mkdtempSync(join(tmpdir(), 'agate-ledger-fork-'));
const storeDir = join(root, 'store');
const cpDir = join(root, 'checkpoints');
const signer = parseSignerKey(generateSignerKey('agate.test/ledger'));
const sources = { verifiers: [parseVerifierKey(verifierKey(signer))], dirs: [cpDir] };
const bus = { publish: async () => {}, subscribe: async () => ({ close: async () => {} }) } as unknown as Bus;
const events = (n: number): AgateEvent[] => Array.from({ length: n }, (_, i) => ({ ...Object.values(SAMPLES)[i % 6]!, event_id: randomUUID() }) as AgateEvent);
const newLedger = (store: EmbeddedStore) => new LedgerService({ bus, store, codec, chainId: 'test', logger: silentLogger, signer, checkpoints: { everyEvents: 10, everyMs: 3_600_000, sinks: [directorySink(cpDir)] } });

async function withStore<T>(fn: (store: EmbeddedStore) => Promise<T>): Promise<T> {
  const store = EmbeddedStore.open(storeDir);
  try {
    return await fn(store);
  } finally {
    await store.close();
  }
}

/** A fresh store and checkpoint directory holding a chain of `n` events, appended 10 at a time. */
async function build(n: number): Promise<void> {
  rmSync(storeDir, { recursive: true, force: true });
  rmSync(cpDir, { recursive: true, force: true });
  await grow(n);
}

async function grow(n: number): Promise<void> {
  await withStore(async (store) => {
    const ledger = newLedger(store);
    await ledger.start();
    assert.is(ledger.problem(), undefined);
    const all = events(n);
    for (let i = 0; i < n; i += 10) await ledger.append(all.slice(i, i + 10));
    await ledger.stop();
  });
}

/** Every checkpoint file's SHA-256, by name. */
function fileHashes(): Record<string, string> {
  const dir = join(cpDir, 'test');
  return Object.fromEntries(readdirSync(dir).sort().map((f) => [f, createHash('sha256').update(readFileSync(join(dir, f))).digest('hex')]));
}

/** Starts a ledger on the damaged store and tries to append; returns what it reported. */
async function startOnDamaged(): Promise<{ problem: string | undefined; appendCode: string | undefined }> {
  return withStore(async (store) => {
    const ledger = newLedger(store);
    await ledger.start(); // refuses without throwing: the process stays up and says why
    const problem = ledger.problem();
    let appendCode: string | undefined;
    await ledger.append(events(5)).catch((err: unknown) => (appendCode = (err as AgateError).code));
    await ledger.stop();
    return { problem, appendCode };
  });
}

const plainVerify = () => withStore(async (store) => {
  const out = [];
  for (const c of await chainsToVerify(store, sources.dirs)) out.push(await verifyWithKnownCheckpoints(store, codec, c, sources));
  return out;
});

const test = suite('checkpoints never fork');
test.after(() => rmSync(root, { recursive: true, force: true }));

test('an intact store restarts and grows; latest.checkpoint only moves forward', async () => {
  await build(30);
  await grow(20);
  assert.is(readFileSync(join(cpDir, 'test', 'latest.checkpoint'), 'utf8'), readFileSync(join(cpDir, 'test', '50.checkpoint'), 'utf8'));
  const [report] = await plainVerify();
  assert.ok(report!.ok, JSON.stringify(report!.failure));
  assert.ok(report!.checkpoints.includes(50), `checked against ${report!.checkpoints}`);
});

test('a truncated store is refused at start and by plain verify; no checkpoint file changes', async () => {
  await build(30);
  const before = fileHashes();
  await withStore((s) => s.exec('ALTER TABLE agate.ledger DELETE WHERE seq > 24 SETTINGS mutations_sync = 2'));
  await withStore((s) => s.exec('ALTER TABLE agate.checkpoints DELETE WHERE size > 20 SETTINGS mutations_sync = 2'));
  const { problem, appendCode } = await startOnDamaged();
  assert.match(problem ?? '', /LEDGER_STORE_BEHIND: the store holds 24 records of chain test, but the checkpoint of size 30 published in .*30\.checkpoint covers 30/);
  assert.is(appendCode, ErrorCode.LEDGER_STORE_BEHIND);
  const [report] = await plainVerify();
  assert.is(report!.failure?.kind, 'truncated');
  assert.is(report!.failure?.seq, 25);
  assert.equal(fileHashes(), before);
});

test('a store rolled back to an older copy is refused at start and by plain verify', async () => {
  await build(20);
  const older = join(root, 'older-store');
  rmSync(older, { recursive: true, force: true });
  cpSync(storeDir, older, { recursive: true });
  await grow(30);
  const before = fileHashes();
  rmSync(storeDir, { recursive: true, force: true });
  cpSync(older, storeDir, { recursive: true });
  const { problem, appendCode } = await startOnDamaged();
  assert.match(problem ?? '', /LEDGER_STORE_BEHIND: the store holds 20 records .* size 50 /);
  assert.is(appendCode, ErrorCode.LEDGER_STORE_BEHIND);
  const [report] = await plainVerify();
  assert.is(report!.failure?.kind, 'truncated');
  assert.is(report!.failure?.seq, 21);
  assert.equal(fileHashes(), before);
  assert.is(readFileSync(join(cpDir, 'test', 'latest.checkpoint'), 'utf8').split('\n')[1], '50', 'latest.checkpoint did not go back');
});

test('a chain re-linked from a changed record on is refused at start and by plain verify', async () => {
  await build(30);
  const before = fileHashes();
  await withStore(async (s) => {
    const mutate = (sql: string) => s.exec(`${sql} SETTINGS mutations_sync = 2`);
    await mutate(`ALTER TABLE agate.ledger UPDATE text = 'nothing to see' WHERE seq = 12`);
    for (let seq = 12; seq <= 30; seq++) {
      if (seq > 12) await mutate(`ALTER TABLE agate.ledger UPDATE prev_hash = (SELECT hash FROM agate.ledger WHERE seq = ${seq - 1}) WHERE seq = ${seq}`);
      await mutate(`ALTER TABLE agate.ledger UPDATE hash = ${LINK_SQL} WHERE seq = ${seq}`);
    }
  });
  const { problem, appendCode } = await startOnDamaged();
  assert.match(problem ?? '', /LEDGER_STORE_DIVERGED: the chain head \(link hash\) at record 30 of chain test differs from the checkpoint published in/);
  assert.is(appendCode, ErrorCode.LEDGER_STORE_DIVERGED);
  const [report] = await plainVerify();
  assert.is(report!.failure?.kind, 'rewritten');
  assert.equal(fileHashes(), before);
});

test('a record changed under a running ledger: the next checkpoint has no consistency proof and is not published', async () => {
  await build(0);
  await withStore(async (store) => {
    const ledger = newLedger(store);
    await ledger.start();
    await ledger.append(events(10));
    await ledger.append(events(10));
    const before = fileHashes();
    const other = codec.encode({ ...SAMPLES.Command, text: 'SELECT 2' }).toString('hex');
    await store.exec(`ALTER TABLE agate.ledger UPDATE payload = unhex('${other}') WHERE seq = 3 SETTINGS mutations_sync = 2`);
    try {
      await ledger.append(events(10));
      assert.unreachable('the checkpoint at 30 was published');
    } catch (err) {
      assert.is((err as AgateError).code, ErrorCode.LEDGER_STORE_DIVERGED);
    }
    assert.match(ledger.problem() ?? '', /the tree of 30 records of chain test is not consistent with the checkpoint of size 20/);
    assert.equal(fileHashes(), before, 'nothing was published');
    assert.is((await ledger.append(events(1)).catch((err: AgateError) => err.code)), ErrorCode.LEDGER_STORE_DIVERGED, 'and nothing more is appended');
    await ledger.stop();
  });
});

test('the directory never takes a second checkpoint for a size: a forked note is refused, the file kept', async () => {
  await build(10);
  const before = fileHashes();
  const other = parseSignerKey(generateSignerKey('agate.test/ledger'));
  const forged = readFileSync(join(cpDir, 'test', '10.checkpoint'), 'utf8').replace(/\n\n.*$/s, `\n\n— ${other.name} forged\n`);
  try {
    await directorySink(cpDir).publish({ chainId: 'test', origin: 'agate.test/ledger/test', size: 10, note: forged });
    assert.unreachable('a second note for size 10 was accepted');
  } catch (err) {
    assert.is((err as AgateError).code, ErrorCode.LEDGER_CHECKPOINT_FORK);
  }
  await directorySink(cpDir).publish({ chainId: 'test', origin: 'agate.test/ledger/test', size: 10, note: readFileSync(join(cpDir, 'test', '10.checkpoint'), 'utf8') });
  assert.equal(fileHashes(), before, 'the same note again changes nothing');
});

test('a checkpoint in the directory the ledger key did not sign stops the ledger from appending', async () => {
  await build(10);
  writeFileSync(join(cpDir, 'test', '99.checkpoint'), 'agate.test/ledger/test\n99\nAAAA\n\n— nobody AAAA\n');
  const { problem, appendCode } = await startOnDamaged();
  assert.match(problem ?? '', /LEDGER_SIGNATURE_INVALID: .*99\.checkpoint holds a checkpoint of chain test that this ledger's key/);
  assert.is(appendCode, ErrorCode.LEDGER_SIGNATURE_INVALID);
});

test.run();

// tools/verify-chain.py, the auditor's own verifier written from docs/ledger.md alone, against
// `agate verify` on a real ledger: `agate start` in front of a real PostgreSQL records some
// sessions, then the store is tampered with the engine's own SQL (a changed body, a deleted
// record, two records swapped) and both verifiers must name the same record for the same
// reason, with the checkpoints published outside the store.
import { suite } from '../harness/suite.js';
import * as assert from 'uvu/assert';
import { spawnSync } from 'node:child_process';
import { cpSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import pg from 'pg';
import { packageRoot } from '../../core/src/package-root.js';
import { EmbeddedStore } from '../../core/src/store/embedded.js';
import { LEDGER_EXPORT_SQL } from '../../services/ledger/src/ledger-export.js';
import type { AgateProcess } from './agate-process.js';
import { RestartableAgate } from './restartable-agate.js';

const env = new RestartableAgate({ prefix: 'agate-ledger-verifier-' });
const test = suite('independent ledger verifier, real agate start');
const cpDir = () => join(env.work, 'checkpoints');
const pristine = () => join(env.work, 'pristine');
let agate: AgateProcess;

test.before(async () => {
  await env.setUp();
  agate = await env.start(`ledger:\n  checkpoint: { every_events: 10, every_ms: 200, dir: ${JSON.stringify(cpDir())} }\n`);
  try {
    const token = await env.issuer.mint({ sub: 'ci-bot', repository: 'acme/app' });
    for (let s = 0; s < 3; s++) {
      const client = new pg.Client({ host: '127.0.0.1', port: agate.pgPort, database: 'appdb', user: 'agent', password: token });
      await client.connect();
      try {
        // Text with quotes, a backslash, a newline and non-ASCII: the link's strings as bytes.
        for (let i = 0; i < 4; i++) await client.query(`SELECT ${i} AS n, 'it''s a "quote" \\ é ✓\n${s}' AS t`);
      } finally {
        await client.end();
      }
    }
  } finally {
    await agate.stop();
  }
  cpSync(env.dataDir, pristine(), { recursive: true });
});
test.after(() => env.tearDown());

/** The line `agate verify --offline` prints for the chain. */
async function agateVerify(): Promise<{ code: number; line: string; out: string }> {
  const r = await agate.cli(['verify', '--config', agate.configPath, '--offline']);
  return { code: r.code ?? -1, line: r.stdout.split('\n').find((l) => l.startsWith('chain embedded:')) ?? '', out: r.stdout + r.stderr };
}

/** tools/verify-chain.py over `agate ledger-export`'s rows, with the checkpoint directory and the verifier key. */
async function pythonVerify(...extra: string[]): Promise<{ code: number; line: string; out: string }> {
  const rows = join(env.work, 'rows.jsonl');
  const exported = await agate.cli(['ledger-export', '--config', agate.configPath, '--out', rows]);
  assert.is(exported.code, 0, exported.stdout + exported.stderr);
  const key = (await agate.cli(['ledger-key', '--config', agate.configPath])).stdout.trim();
  const r = spawnSync('python3', [join(packageRoot(), 'tools', 'verify-chain.py'), rows, '--checkpoint-dir', cpDir(), '--key', key, ...extra], { encoding: 'utf8', timeout: 120_000 });
  return { code: r.status ?? -1, line: r.stdout.split('\n').find((l) => l.startsWith('chain embedded:')) ?? '', out: r.stdout + r.stderr };
}

/** A fresh copy of the recorded data_dir, changed by `sql` (run in order) on its store. */
async function tampered(...sql: string[]): Promise<void> {
  rmSync(env.dataDir, { recursive: true, force: true });
  cpSync(pristine(), env.dataDir, { recursive: true });
  const store = EmbeddedStore.open(join(env.dataDir, 'store'));
  try {
    for (const s of sql) await store.exec(s);
  } finally {
    await store.close();
  }
}

test('the intact ledger: both verifiers hold, with the same head and root, every published checkpoint checked', async () => {
  await tampered();
  const [ours, theirs] = [await agateVerify(), await pythonVerify()];
  assert.is(ours.code, 0, ours.out);
  assert.is(theirs.code, 0, theirs.out);
  const headRoot = (line: string) => /records 1\.\.(\d+) verified .*; head ([0-9a-f]{64}), root ([0-9a-f]{64})$/.exec(line)?.slice(1);
  assert.ok(headRoot(ours.line) !== undefined, ours.line);
  assert.equal(headRoot(theirs.line), headRoot(ours.line));
  const size = Number(headRoot(ours.line)![0]);
  assert.ok(size >= 30, `${size} records`);
  const published = readdirSync(join(cpDir(), 'embedded')).map((n) => /^(\d+)\.checkpoint$/.exec(n)?.[1]).filter((n) => n !== undefined).map(Number).sort((a, b) => a - b);
  assert.ok(published.length >= 2, published.join(', '));
  assert.ok(theirs.line.includes(`; matches signed checkpoints ${published.join(', ')};`), `each size file in the directory: ${theirs.line}`);
  assert.not.match(theirs.out, /warning/);
});

test('the export query in docs/ledger.md is the one ledger-export runs', () => {
  assert.ok(readFileSync(join(packageRoot(), 'docs', 'ledger.md'), 'utf8').includes(LEDGER_EXPORT_SQL));
});

const cases: [string, string[], RegExp][] = [
  ['a changed body', [`ALTER TABLE agate.ledger UPDATE body = concat(body, ' ') WHERE seq = 9 SETTINGS mutations_sync = 2`], /BROKEN at record 9 \(event [0-9a-f-]+\): its hash does not match its content .*\[altered\]$/],
  ['a deleted record', ['ALTER TABLE agate.ledger DELETE WHERE seq = 14 SETTINGS mutations_sync = 2'], /BROKEN at record 14: record 14 is missing \(deleted\); the next stored record is 15 \[missing\]$/],
  ['two records swapped', [
    'CREATE TABLE default.moved ENGINE = Memory AS SELECT * FROM agate.ledger WHERE seq IN (17, 18)',
    'ALTER TABLE agate.ledger DELETE WHERE seq IN (17, 18) SETTINGS mutations_sync = 2',
    'INSERT INTO agate.ledger SELECT * REPLACE (35 - seq AS seq) FROM default.moved',
  ], /BROKEN at record 17 \(event [0-9a-f-]+\): its hash does not match its content .*\[altered\]$/],
  ['a truncated tail, the store\'s own checkpoints cut with it', [
    'ALTER TABLE agate.ledger DELETE WHERE seq > 12 SETTINGS mutations_sync = 2',
    'ALTER TABLE agate.checkpoints DELETE WHERE size > 10 SETTINGS mutations_sync = 2',
  ], /BROKEN at record 13: the store ends at record 12, but a signed checkpoint covers (\d+) records: records 13\.\.\1 are missing \(tail truncated\) \[truncated\]$/],
];

for (const [what, sql, expected] of cases) {
  test(`${what}: both verifiers name the same record, in the same words`, async () => {
    await tampered(...sql);
    const [ours, theirs] = [await agateVerify(), await pythonVerify()];
    assert.is(ours.code, 1, ours.out);
    assert.is(theirs.code, 1, theirs.out);
    assert.match(ours.line, expected);
    assert.is(theirs.line, ours.line);
  });
}

test.run();

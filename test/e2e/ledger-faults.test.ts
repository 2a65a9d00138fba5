// The ledger under store faults, against a real `agate start` in front of a real PostgreSQL:
// a data_dir rolled back to an older copy must not get a second history signed over the
// checkpoints already published outside it. The restarted Agate refuses to record, says why on
// /readyz, plain `agate verify` names the missing records, and no checkpoint file changes.
import { suite } from '../harness/suite.js';
import * as assert from 'uvu/assert';
import { createHash } from 'node:crypto';
import { appendFileSync, closeSync, cpSync, existsSync, openSync, readdirSync, readFileSync, rmSync, writeSync } from 'node:fs';
import { join } from 'node:path';
import { busSegments } from './bus-log.js';
import pg from 'pg';
import { FILE_HEADER, frameHeader, recordsIn } from '../../core/src/bus/log-frame.js';
import { EmbeddedStore } from '../../core/src/store/embedded.js';
import type { AgateProcess } from './agate-process.js';
import { RestartableAgate } from './restartable-agate.js';

const env = new RestartableAgate({ prefix: 'agate-ledger-faults-' });
const test = suite('ledger faults, real agate start');

test.before(() => env.setUp());
test.after(() => env.tearDown());

const dataDir = () => env.dataDir;
const cpDir = () => join(env.work, 'checkpoints');

/** `agate start` on the test's own data_dir, publishing checkpoints to a directory outside it. */
const start = () => env.start(`ledger:\n  checkpoint: { every_events: 10, every_ms: 200, dir: ${JSON.stringify(cpDir())} }\n`);

async function statements(agate: AgateProcess, n: number): Promise<void> {
  const token = await env.issuer.mint({ sub: 'ci-bot', repository: 'acme/app' });
  const client = new pg.Client({ host: '127.0.0.1', port: agate.pgPort, database: 'appdb', user: 'agent', password: token });
  await client.connect();
  try {
    for (let i = 0; i < n; i++) await client.query(`SELECT ${i}`);
  } finally {
    await client.end();
  }
}

const latestSize = () => {
  const f = join(cpDir(), 'embedded', 'latest.checkpoint');
  return existsSync(f) ? Number(readFileSync(f, 'utf8').split('\n')[1]) : 0;
};

function fileHashes(): Record<string, string> {
  const dir = join(cpDir(), 'embedded');
  return Object.fromEntries(readdirSync(dir).sort().map((f) => [f, createHash('sha256').update(readFileSync(join(dir, f))).digest('hex')]));
}

async function getJson(agate: AgateProcess, path: string): Promise<{ status: number; body: { status: string; problems?: { component: string; problem: string }[] } }> {
  const res = await fetch(agate.apiUrl + path);
  return { status: res.status, body: (await res.json()) as never };
}

test('a data_dir rolled back to an older copy: not ready, nothing recorded, verify names it, no checkpoint file changes', async () => {
  let agate = await start();
  try {
    assert.is((await getJson(agate, '/readyz')).status, 200);
    await statements(agate, 10);
  } finally {
    await agate.stop();
  }
  const older = join(env.work, 'older-data');
  cpSync(dataDir(), older, { recursive: true });
  const sizeThen = latestSize();
  assert.ok(sizeThen > 0, 'checkpoints were published');

  agate = await start();
  try {
    await statements(agate, 20);
  } finally {
    await agate.stop();
  }
  const published = latestSize();
  assert.ok(published > sizeThen, `the newer checkpoint (${published}) is past the older one (${sizeThen})`);
  const before = fileHashes();

  rmSync(dataDir(), { recursive: true, force: true });
  cpSync(older, dataDir(), { recursive: true });
  agate = await start();
  try {
    const ready = await getJson(agate, '/readyz');
    assert.is(ready.status, 503);
    assert.is(ready.body.problems?.[0]?.component, 'ledger');
    assert.match(ready.body.problems?.[0]?.problem ?? '', new RegExp(`LEDGER_STORE_BEHIND: the store holds ${sizeThen} records of chain embedded, but the checkpoint of size ${published} published in`));
    assert.is((await getJson(agate, '/healthz')).status, 200, 'alive: it waits for an operator, a restart does not help');
    assert.ok(agate.logs().some((l) => l.level === 'error' && /refuses to append/.test(String(l.msg))), 'said loudly in the log');
    await statements(agate, 5); // recorded in the bus; the ledger does not take them
  } finally {
    await agate.stop();
  }
  assert.equal(fileHashes(), before, 'no checkpoint file changed');
  const verify = await agate.cli(['verify', '--config', agate.configPath, '--offline']);
  assert.is(verify.code, 1, verify.stdout + verify.stderr);
  assert.match(verify.stdout, new RegExp(`BROKEN at record ${sizeThen + 1}: the store ends at record ${sizeThen}, but a signed checkpoint covers ${published} records.*\\[truncated\\]`));
});

test('a session row deleted from the tables behind agate.sessions is named by plain verify', async () => {
  rmSync(dataDir(), { recursive: true, force: true });
  rmSync(cpDir(), { recursive: true, force: true });
  const agate = await start();
  try {
    await statements(agate, 3);
    await statements(agate, 2);
  } finally {
    await agate.stop();
  }
  const intact = await agate.cli(['verify', '--config', agate.configPath, '--offline']);
  assert.is(intact.code, 0, intact.stdout + intact.stderr);
  assert.match(intact.stdout, /session tables: OK, 2 sessions match the ledger/);
  const store = EmbeddedStore.open(join(dataDir(), 'store'));
  let hidden: string;
  try {
    [{ session_id: hidden }] = (await store.query<{ session_id: string }>('SELECT session_id FROM agate.q_sessions FINAL ORDER BY opened_at LIMIT 1')) as [{ session_id: string }];
    await store.exec(`ALTER TABLE agate.q_sessions DELETE WHERE session_id = '${hidden}' SETTINGS mutations_sync = 2`);
  } finally {
    await store.close();
  }
  const r = await agate.cli(['verify', '--config', agate.configPath, '--offline']);
  assert.is(r.code, 1, r.stdout + r.stderr);
  assert.match(r.stdout, /chain embedded: OK/);
  assert.ok(r.stdout.includes(`session tables: BROKEN: session ${hidden} is in the ledger, but agate.sessions does not show it`), r.stdout);
});

test('a torn record in the zeros after a crash is cut at start with a warning; an undecodable record stops the consumers and fails /healthz and /readyz', async () => {
  rmSync(dataDir(), { recursive: true, force: true });
  rmSync(cpDir(), { recursive: true, force: true });
  let agate = await start();
  await statements(agate, 5);
  process.kill(agate.pid, 'SIGKILL'); // the file keeps the zeros written ahead of the records
  await agate.stop();
  const log = busSegments(join(dataDir(), 'bus')).pop()!; // the one segment, appended to (base 16: offsets are file positions)
  const bytes = readFileSync(log);
  const end = FILE_HEADER + recordsIn(bytes).reduce((n, r) => n + 8 + r.length, 0);
  assert.ok(bytes.length > end + 4096, 'zeros follow the records');
  const torn = Buffer.alloc(500, 0x5a);
  const fd = openSync(log, 'r+');
  writeSync(fd, Buffer.concat([frameHeader(torn), torn.subarray(0, 200)]), 0, 208, end); // a crash mid-record
  closeSync(fd);

  agate = await start();
  try {
    const cut = agate.logs().find((l) => l.msg === 'cut a torn or damaged record from the end of the event log');
    assert.ok(cut !== undefined, 'a warning says what was cut');
    assert.is(cut!.offset, end);
    assert.match(String(cut!.reason), /CRC-32C/);
    assert.is((await getJson(agate, '/readyz')).status, 200);
    await statements(agate, 3);
  } finally {
    await agate.stop();
  }

  // A record whose checksum holds but that is no event: consumers stop on it, never skip it.
  const junk = Buffer.from('not an event at all');
  appendFileSync(log, Buffer.concat([frameHeader(junk), junk]));
  agate = await start();
  try {
    let health = await getJson(agate, '/healthz');
    for (let i = 0; i < 100 && health.status === 200; i++) {
      await new Promise((r) => setTimeout(r, 100));
      health = await getJson(agate, '/healthz');
    }
    assert.is(health.status, 503);
    const bus = health.body.problems?.find((p) => p.component === 'bus.consumers');
    assert.match(bus?.problem ?? '', /consumer group "(ledger|policy)" stopped at log position \d+: BUS_LOG_CORRUPT: the record at offset \d+ is not an event this Agate can decode/);
    assert.is((await getJson(agate, '/readyz')).status, 503);
  } finally {
    await agate.stop();
  }
});

test.run();

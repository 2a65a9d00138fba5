// A stop the store cannot keep up with: the embedded store on a small tmpfs that fills up while
// statements keep running (the event log, on another disk, takes them). SIGTERM then stops a
// ledger that could not store the last batches: `agate start` exits 1 with an error naming how
// many events wait in the log, and the next start, with space again, stores them: nothing lost.
import { suite } from '../harness/suite.js';
import * as assert from 'uvu/assert';
import { execFileSync } from 'node:child_process';
import { closeSync, mkdirSync, openSync, rmSync, writeSync } from 'node:fs';
import { join } from 'node:path';
import pg from 'pg';
import { EventCodec } from '../../schemas/src/codec.js';
import { EmbeddedStore } from '../../core/src/store/embedded.js';
import { RestartableAgate } from './restartable-agate.js';
import { busLogBytes, logEvents } from './bus-log.js';
import type { AgateProcess } from './agate-process.js';

const env = new RestartableAgate({ prefix: 'agate-stop-trails-' });
const test = suite('a stop with the store behind the log: exit 1, and the next start stores the rest');
/** The store's disk: room for the engine to start and take the first inserts. */
const DISK_MB = 60;
let disk = '';
let mounted = false;

test.before(async () => {
  await env.setUp();
  disk = join(env.work, 'store-disk');
  mkdirSync(disk);
  execFileSync('mount', ['-t', 'tmpfs', '-o', `size=${DISK_MB}m`, 'tmpfs', disk]);
  mounted = true;
});
test.after(async () => {
  // tearDown removes the work directory, the mount point in it included: unmounted once the
  // processes are gone, then removed.
  await env.tearDown().catch(() => undefined);
  if (mounted) execFileSync('umount', ['-l', disk]);
  rmSync(env.work, { recursive: true, force: true });
});

const storePath = () => join(disk, 'store');
const storeYaml = () => `store: { kind: embedded, path: ${JSON.stringify(storePath())} }\n`;

/** Writes a file until the disk refuses more (ENOSPC). */
function fill(path: string): void {
  const fd = openSync(path, 'w');
  try {
    for (const size of [1024 * 1024, 4096]) {
      const chunk = Buffer.alloc(size, 0x5a);
      try {
        for (;;) writeSync(fd, chunk);
      } catch (err) {
        if ((err as NodeJS.ErrnoException).code !== 'ENOSPC') throw err;
      }
    }
  } finally {
    closeSync(fd);
  }
}

/** Runs `SELECT '<marker>'` once per marker on one connection; the markers that ran. */
async function statements(agate: AgateProcess, markers: string[]): Promise<string[]> {
  const token = await env.issuer.mint({ sub: 'ci-bot', repository: 'acme/app' });
  const client = new pg.Client({ host: '127.0.0.1', port: agate.pgPort, database: 'appdb', user: 'agent', password: token });
  client.on('error', () => undefined);
  await client.connect();
  const ran: string[] = [];
  try {
    for (const m of markers) if ((await client.query(`SELECT '${m}' AS m`).then((r) => r.rows[0]?.m, () => undefined)) === m) ran.push(m);
  } finally {
    await client.end().catch(() => undefined);
  }
  return ran;
}

/** The events of the log the ledger chains (Checkpoints aside), and the event ids the store holds. */
async function logAndStore(): Promise<{ logged: string[]; stored: Set<string> }> {
  const logged = logEvents(busLogBytes(join(env.dataDir, 'bus')), new EventCodec()).filter((e) => e.type !== 'Checkpoint').map((e) => e.event_id);
  const store = EmbeddedStore.open(storePath());
  try {
    const rows = await store.query<{ event_id: string }>("SELECT event_id FROM agate.ledger WHERE chain_id = 'embedded'");
    return { logged, stored: new Set(rows.map((r) => r.event_id)) };
  } finally {
    await store.close();
  }
}

test('the store refuses the last batches at the stop: exit 1 naming the events left in the log; the next start stores every one of them', async () => {
  const first = await env.start(storeYaml());
  assert.equal(await statements(first, ['before-0', 'before-1']), ['before-0', 'before-1']);
  // Stored before the disk fills: the ledger has caught up with the log.
  const filler = join(disk, 'filler');
  await new Promise((r) => setTimeout(r, 2000));
  fill(filler);
  // The log has room: statements run and are recorded there; the store can take none of them.
  const markers = Array.from({ length: 20 }, (_, i) => `full-${i}`);
  assert.equal(await statements(first, markers), markers, 'statements run while only the store is full');
  const exit = await first.stop(120_000);
  const said = first.logs().find((l) => /stopped with the store behind the event log/.test(String(l.msg)));
  assert.equal(exit, { code: 1, signal: null }, `exit 1 when the store trails the log\n${first.stderr().slice(-4000)}`);
  assert.ok(said !== undefined, 'the error says the store is behind the log');
  assert.is(said!.level, 'error');
  const { logged, stored } = await logAndStore().catch((err: Error) => {
    rmSync(filler, { force: true }); // the store may need room even to be read
    throw err;
  });
  const missing = logged.filter((id) => !stored.has(id));
  assert.ok(missing.length > 0, 'the store lacks the last events of the log');
  assert.is(said!.events, missing.length, 'the count named is the number of events the store lacks');
  assert.ok(!first.logs().some((l) => l.msg === 'stopped'), 'not logged as a clean stop');

  // Room again: the next start stores what the last one left in the log, each event once.
  rmSync(filler);
  const second = await env.start(storeYaml());
  const next = await second.stop(120_000);
  assert.equal(next, { code: 0, signal: null }, second.stderr().slice(-4000));
  const after = await logAndStore();
  assert.equal(after.logged.filter((id) => !after.stored.has(id)), [], 'every event of the log is stored');
  const store = EmbeddedStore.open(storePath());
  try {
    const rows = await store.query<{ n: string; d: string }>("SELECT toString(count()) AS n, toString(uniqExact(event_id)) AS d FROM agate.ledger WHERE chain_id = 'embedded'");
    assert.is(rows[0]!.n, rows[0]!.d, 'no event stored twice');
    const texts = await store.query<{ text: string }>("SELECT text FROM agate.ledger WHERE chain_id = 'embedded' AND event_type = 'Command'");
    for (const m of markers) assert.ok(texts.some((t) => t.text.includes(m)), `the Command of ${m} is stored`);
  } finally {
    await store.close();
  }
  const verify = await second.cli(['verify', '--config', second.configPath, '--offline']);
  assert.is(verify.code, 0, verify.stdout + verify.stderr);
});

test.run();

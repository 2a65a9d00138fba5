// A full disk under a real `agate start` (data_dir on a small tmpfs) in front of a real
// PostgreSQL: statements are refused while nothing can be recorded, /readyz says why, and once
// space is freed Agate resumes by itself and the ledger holds every event the bus recorded.
import { suite } from '../harness/suite.js';
import * as assert from 'uvu/assert';
import { execFileSync } from 'node:child_process';
import { closeSync, mkdirSync, mkdtempSync, openSync, rmSync, statfsSync, statSync, truncateSync, writeSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import pg from 'pg';
import { EventCodec } from '../../schemas/src/codec.js';
import { EmbeddedStore } from '../../core/src/store/embedded.js';
import { startOidcIssuer, type OidcIssuer } from '../harness/oidc-issuer.js';
import { startPostgres, type PostgresServer } from '../harness/postgres.js';
import { agateConfig, startAgateProcess, type AgateProcess } from './agate-process.js';
import { busLogBytes, logEvents } from './bus-log.js';
import { until } from '../harness/until.js';

interface Env {
  pg: PostgresServer;
  issuer: OidcIssuer;
  work: string;
  disk: string;
  mounted: boolean;
  agate?: AgateProcess;
}
const env = { mounted: false } as Env;
const test = suite('a full disk, freed again, real agate start');
/** The tmpfs holding data_dir: small enough to fill in a moment, large enough for the embedded store. */
const DISK_MB = 40;

test.before(async () => {
  env.work = mkdtempSync(join(tmpdir(), 'agate-disk-full-'));
  env.disk = join(env.work, 'disk');
  mkdirSync(env.disk);
  execFileSync('mount', ['-t', 'tmpfs', '-o', `size=${DISK_MB}m`, 'tmpfs', env.disk]);
  env.mounted = true;
  const [p, i] = await Promise.allSettled([startPostgres(), startOidcIssuer({ audience: 'agate' })]);
  if (p.status === 'fulfilled') env.pg = p.value;
  if (i.status === 'fulfilled') env.issuer = i.value;
  for (const r of [p, i]) if (r.status === 'rejected') throw r.reason;
});
test.after(async () => {
  // Room to shut down in, whatever the test left.
  for (const f of ['filler', 'filler2']) rmSync(join(env.disk, f), { force: true });
  await env.agate?.dispose();
  await env.issuer?.close();
  await env.pg?.stop();
  if (env.mounted) execFileSync('umount', [env.disk]);
  rmSync(env.work, { recursive: true, force: true });
});

const dataDir = () => join(env.disk, 'data');
const freeBytes = () => {
  const s = statfsSync(env.disk);
  return s.bavail * s.bsize;
};

/** Writes a file until the disk refuses more (ENOSPC); returns its path. */
function fill(name: string): string {
  const path = join(env.disk, name);
  const fd = openSync(path, 'w');
  const chunk = Buffer.alloc(1024 * 1024, 0x5a);
  try {
    for (;;) writeSync(fd, chunk);
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== 'ENOSPC') throw err;
  }
  // The last, partial megabyte too.
  const byte = Buffer.alloc(4096, 0x5a);
  try {
    for (;;) writeSync(fd, byte);
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== 'ENOSPC') throw err;
  } finally {
    closeSync(fd);
  }
  return path;
}

type Outcome = { marker: string; ok: boolean; error?: string };

/** Runs `SELECT '<marker>'` once per marker on one connection; every outcome kept. */
async function statements(agate: AgateProcess, markers: string[]): Promise<Outcome[]> {
  const token = await env.issuer.mint({ sub: 'ci-bot', repository: 'acme/app' });
  const client = new pg.Client({ host: '127.0.0.1', port: agate.pgPort, database: 'appdb', user: 'agent', password: token });
  client.on('error', () => undefined);
  const out: Outcome[] = [];
  try {
    await client.connect();
  } catch (err) {
    return markers.map((marker) => ({ marker, ok: false, error: `connect: ${(err as Error).message}` }));
  }
  try {
    for (const marker of markers) {
      try {
        const r = await client.query(`SELECT '${marker}' AS m`);
        out.push({ marker, ok: r.rows[0]?.m === marker });
      } catch (err) {
        out.push({ marker, ok: false, error: (err as Error).message });
      }
    }
  } finally {
    await client.end().catch(() => undefined);
  }
  return out;
}

async function readyz(agate: AgateProcess): Promise<{ status: number; body: { status: string; problems?: { component: string; problem: string }[] } }> {
  const res = await fetch(agate.apiUrl + '/readyz');
  return { status: res.status, body: (await res.json()) as never };
}

test('statements are refused while the disk is full, /readyz says why, and Agate resumes by itself once space is freed, losing no record', async () => {
  const base = agateConfig({ pg: env.pg, issuer: env.issuer });
  env.agate = await startAgateProcess({
    configYaml: (p) => base(p).replace(/^data_dir: .*$/m, `data_dir: ${JSON.stringify(dataDir())}`),
  });
  const agate = env.agate;
  const before = await statements(agate, Array.from({ length: 10 }, (_, i) => `before-${i}`));
  assert.ok(before.every((o) => o.ok), JSON.stringify(before));
  assert.is((await readyz(agate)).status, 200);

  const filler = fill('filler');
  // The engine gives space back now and then (merged parts deleted): taken too.
  await new Promise((r) => setTimeout(r, 1000));
  const filler2 = fill('filler2');
  assert.ok(freeBytes() < 64 * 1024, `${freeBytes()} bytes left`);
  const full = await statements(agate, Array.from({ length: 20 }, (_, i) => `full-${i}`));
  // Fail closed: what the log cannot take does not run. (Zeros the log wrote ahead while there
  // was room would take a few; on this small disk none were written: see PREALLOCATE_KEEP_FREE.
  // Space the engine frees meanwhile may let a few run: they must be recorded, checked below.)
  const refused = full.filter((o) => !o.ok);
  assert.ok(refused.length >= full.length / 2, `${full.length - refused.length} of ${full.length} ran on a full disk`);
  for (const o of refused) assert.match(o.error ?? '', /Agate refused the statement: the audit log is unavailable/);
  const waiting = await until('/readyz to say why', async () => {
    const r = await readyz(agate);
    const ledger = r.body.problems?.find((p) => p.component === 'ledger');
    const bus = r.body.problems?.find((p) => p.component === 'bus.append');
    return r.status === 503 && bus !== undefined ? { ledger, bus } : undefined;
  }, { timeoutMs: 15_000, everyMs: 250 });
  assert.ok(/commands are refused: last write failed: cannot append to the local event log: the disk is full/.test(waiting.bus.problem), waiting.bus.problem);
  assert.is((await fetch(agate.apiUrl + '/healthz')).status, 200, 'alive: freeing space is the remedy, not a restart');

  // Freed, but not by much: the store needs ~17 MiB to reserve an insert, and the log must not
  // take it first.
  rmSync(filler2);
  truncateSync(filler, Math.max(0, statSync(filler).size - 20 * 1024 * 1024));
  const after = await until('statements to run again', async () => {
    const [o] = await statements(agate, [`after-${Date.now()}`]);
    return o!.ok ? o : undefined;
  }, { timeoutMs: 30_000, everyMs: 250 });
  let last: unknown;
  await until('/readyz to be ready again', async () => {
    const r = await readyz(agate);
    last = r.body;
    return r.status === 200 ? true : undefined;
  }, { timeoutMs: 60_000, everyMs: 250 }).catch((err: Error) => {
    throw new Error(`${err.message}; it says ${JSON.stringify(last)}; ${freeBytes()} bytes free`);
  });
  const more = await statements(agate, Array.from({ length: 10 }, (_, i) => `more-${i}`));
  assert.ok(more.every((o) => o.ok), JSON.stringify(more));
  const stopped = await agate.stop();
  assert.is(stopped.code, 0);

  // Every event the bus recorded is in the ledger, once; every statement that ran has its Command there.
  const recorded = logEvents(busLogBytes(join(dataDir(), 'bus')), new EventCodec());
  const store = EmbeddedStore.open(join(dataDir(), 'store'));
  try {
    const rows = await store.query<{ event_id: string; text: string; event_type: string }>(`SELECT event_id, text, event_type FROM agate.ledger WHERE chain_id = 'embedded'`);
    const ids = new Set(rows.map((r) => r.event_id));
    assert.is(ids.size, rows.length, 'no event recorded twice');
    const expected = recorded.filter((e) => e.type !== 'Checkpoint');
    const missing = expected.map((e, i) => [i, e] as const).filter(([, e]) => !ids.has(e.event_id)).map(([i, e]) => `${i}:${e.type}:${e.type === 'Command' ? e.text : ''}`);
    assert.equal(missing, [], `no event of the bus missing from the ledger (of ${expected.length}); ${agate.logs().filter((l) => l.level !== 'info' && !/cannot commit|refusing it|bus refused/.test(String(l.msg))).map((l) => JSON.stringify(l).slice(0, 1500)).join('\n')}`);
    const ran = [...before, ...full, after, ...more].filter((o) => o.ok).map((o) => o.marker);
    const commands = rows.filter((r) => r.event_type === 'Command').map((r) => r.text);
    for (const m of ran) assert.ok(commands.some((t) => t.includes(m)), `the Command of ${m} is in the ledger`);
  } finally {
    await store.close();
  }
  // The whole record verifies: the chain against its signed checkpoint, and the session tables
  // behind agate.sessions against the ledger, though an INSERT whose materialized view failed on
  // the full disk stored the ledger's rows without the view's (the ledger derives them again).
  const verify = await agate.cli(['verify', '--config', agate.configPath, '--offline']);
  const said = verify.stdout + verify.stderr;
  assert.match(verify.stdout, /chain embedded: OK, records 1\.\.\d+ verified \(\d+\); matches signed checkpoint/, said);
  assert.match(verify.stdout, /session tables: OK, \d+ sessions match the ledger/, said);
  assert.is(verify.code, 0, said);
});

test.run();

import { suite } from '../../../../test/harness/suite.js';
import * as assert from 'uvu/assert';
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { AgateError } from '../../../../core/src/errors.js';
import { EmbeddedStore } from '../../../../core/src/store/embedded.js';
import { migrateQuery } from '../schema.js';
import { runAnalystSql, runBounded, type AnalystEngine } from '../sql-endpoint.js';
import { sessionEvents, testLedger } from '../test-ledger.js';
import { AnalystSandbox } from './sandbox.js';

/*
 * The sandbox on its own, with the allow-list bypassed: statements go straight to the sandboxed
 * engine, most without even readonly=1. Secrets are planted where Agate keeps them (the data
 * directory's checkpoint key and dev issuer key, the process environment) and served on
 * loopback; none may come back, and the real store must come out untouched. Meanwhile the
 * analyst views answer through the sandbox exactly as they do in-process.
 */
const dir = mkdtempSync(join(tmpdir(), 'agate-sandbox-'));
const CANARY = `agate-canary-${process.pid}-5b1e`;
const checkpointKey = join(dir, 'ledger', 'checkpoint.key');
const issuerKey = join(dir, 'dev-issuer', 'key.json');
for (const file of [checkpointKey, issuerKey]) {
  mkdirSync(join(file, '..'), { mode: 0o700 });
  writeFileSync(file, CANARY, { mode: 0o600 });
}
const storePath = join(dir, 'store');
const store = EmbeddedStore.open(storePath);
const limits = { max_execution_time_s: 5, max_result_rows: 10_000, max_memory_bytes: 512 * 1024 * 1024, sandbox: 'namespaces' as const };
const sandbox = AnalystSandbox.create(storePath, store);
let server: Server;
let url = '';

const inSandbox = <T>(fn: (engine: AnalystEngine) => Promise<T>) => sandbox.run(fn, 20_000);

/** The statement fails in the sandbox and nothing it returns or says holds the canary. */
async function fails(sql: string): Promise<string> {
  let message: string;
  try {
    const rows = await inSandbox((e) => e.query(sql));
    throw new Error(`not refused: ${sql} → ${JSON.stringify(rows).slice(0, 200)}`);
  } catch (err) {
    if (!(err instanceof AgateError)) throw err;
    message = `${err.message} ${String((err.cause as Error | undefined)?.message ?? '')}`;
  }
  assert.not.ok(message.includes(CANARY), `the canary in the failure of ${sql}`);
  return message;
}

const escape = suite('analyst SQL sandbox: nothing outside the store is reachable, allow-list bypassed');
escape.before(async () => {
  const ledger = await testLedger(store);
  await ledger.append(sessionEvents('alice', 4));
  await migrateQuery(store);
  server = createServer((_req, res) => res.end(CANARY));
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  url = `http://127.0.0.1:${(server.address() as AddressInfo).port}/`;
});

escape('the same file() calls read the secrets in Agate\'s process (so the test would see a leak)', async () => {
  for (const path of [checkpointKey, issuerKey]) {
    const [row] = await store.query<{ f: string }>(`SELECT file('${path}') AS f`);
    assert.is(row?.f, CANARY);
  }
  const [env] = await store.query<{ f: string }>("SELECT file('/proc/self/environ') AS f");
  assert.ok(env!.f.includes('PATH='));
});

escape('scalar and table file() find no key, no environment, no /proc, no /etc', async () => {
  for (const path of [checkpointKey, issuerKey, '/proc/self/environ', '/proc/1/environ', '/proc/self/cmdline', '/etc/passwd', join(dir, 'ledger')]) {
    assert.match(await fails(`SELECT file('${path}') AS f`), /No such file|FILE_DOESNT_EXIST|Cannot open/, path);
    await fails(`SELECT * FROM file('${path}', 'LineAsString')`);
  }
  // The directory listing of / shows only what the sandbox was given.
  const names = await inSandbox((e) => e.query<{ _path: string }>("SELECT DISTINCT _path FROM file('/*', 'LineAsString') SETTINGS engine_file_skip_empty_files = 1")).catch(() => []);
  assert.not.ok(names.some((r) => r._path.includes('proc') || r._path.includes('etc')));
});

escape('no network: url() cannot reach a loopback server that answers Agate\'s own process', async () => {
  const direct = await store.query<{ line: string }>(`SELECT line FROM url('${url}', 'LineAsString', 'line String')`);
  assert.is(direct[0]?.line, CANARY);
  // One try: the engine's own retries would only make the failure slower.
  assert.match(await fails(`SELECT line FROM url('${url}', 'LineAsString', 'line String') SETTINGS http_max_tries = 1`), /Net Exception|connect|unreachable/i);
});

escape('no process: executable() finds no script and no shell', async () => {
  await fails("SELECT * FROM executable('cat /proc/self/environ', 'LineAsString', 'x String')");
  await fails(`SELECT * FROM executable('sh', 'LineAsString', 'x String', (SELECT 'cat ${checkpointKey}'))`);
});

escape('writes land in the sandbox\'s copy and vanish; the real store is untouched', async () => {
  const count = async () => Number((await store.query<{ n: string }>('SELECT toString(count()) AS n FROM agate.ledger'))[0]!.n);
  const before = await count();
  // Whether the engine manages each write on the overlay or not, none may reach the store.
  await inSandbox(async (e) => {
    for (const sql of ['INSERT INTO agate.ledger SELECT * FROM agate.ledger', 'CREATE TABLE agate.planted (a String) ENGINE = MergeTree ORDER BY a', 'DROP TABLE agate.commands', 'TRUNCATE TABLE agate.ledger']) {
      await e.query(sql).catch(() => undefined);
    }
  });
  assert.is(await count(), before);
  assert.is((await store.query('SELECT 1 FROM system.tables WHERE database = \'agate\' AND name = \'planted\'')).length, 0);
  assert.is((await store.query('SELECT 1 FROM system.tables WHERE database = \'agate\' AND name = \'commands\'')).length, 1);
});

escape('the analyst views answer through the sandbox as in-process, and each request sees the store as it is now', async () => {
  const q = 'SELECT subject, count() AS n FROM agate.commands GROUP BY subject ORDER BY subject';
  const viaSandbox = async () => (await inSandbox((e) => runAnalystSql(e, q, limits))).rows.map((r) => [r.subject, Number(r.n)]);
  assert.equal(await viaSandbox(), (await runAnalystSql(store, q, limits)).rows.map((r) => [r.subject, Number(r.n)]));
  assert.equal(await viaSandbox(), [['alice', 4]]);
  const ledger = await testLedger(store);
  await ledger.append(sessionEvents('bob', 2));
  assert.equal(await viaSandbox(), [['alice', 4], ['bob', 2]]);
  // The engine layer still applies inside: readonly and the limits.
  const ro = await inSandbox((e) => runBounded(e, 'INSERT INTO agate.ledger SELECT * FROM agate.ledger', limits)).catch((err: AgateError) => err);
  assert.is((ro as AgateError).code, 'SQL_READ_ONLY');
});

escape('a worker that outlives its deadline is killed', async () => {
  const started = Date.now();
  const err = await sandbox.run((e) => e.query('SELECT sleepEachRow(1) FROM numbers(30) SETTINGS max_block_size = 1'), 1500).catch((e: AgateError) => e);
  assert.is((err as AgateError).code, 'SQL_LIMIT_EXCEEDED');
  assert.ok(Date.now() - started < 10_000, `${Date.now() - started} ms`);
});

escape('fail closed: a sandbox that cannot be set up refuses with SQL_SANDBOX_UNAVAILABLE and the reason', async () => {
  const gone = join(dir, 'gone');
  mkdirSync(gone);
  const broken = AnalystSandbox.create(gone, store);
  rmSync(gone, { recursive: true });
  const err = await broken.run((e) => e.query('SELECT 1'), 5000).catch((e: AgateError) => e);
  broken.close();
  assert.is((err as AgateError).code, 'SQL_SANDBOX_UNAVAILABLE');
  assert.match((err as AgateError).message, /mount|no such file/i);
});

escape.after(async () => {
  await new Promise((resolve) => server.close(resolve));
  sandbox.close();
  await store.close();
  rmSync(dir, { recursive: true, force: true });
});
escape.run();

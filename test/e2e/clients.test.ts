// Real clients through Agate: psql (meta-commands and \copy), pgbench in all three query modes,
// and psycopg 3 (installed into a cached virtualenv by test/harness/install-psycopg.sh).
import { suite } from '../harness/suite.js';
import * as assert from 'uvu/assert';
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { packageRoot } from '../../core/src/package-root.js';
import type { AgateEvent, Command, Response } from '../../schemas/src/events.js';
import { DEFAULT_PG_BIN } from '../harness/postgres.js';
import { describeFailure, run } from '../harness/proc.js';
import { startAgate, waitForEvents, type AgateFixture } from './agate-fixture.js';

const clients = suite<{ agate: AgateFixture; tmp: string }>('real clients through Agate');
const bin = (tool: string) => join(process.env.AGATE_PG_BIN ?? DEFAULT_PG_BIN, tool);

clients.before(async (ctx) => {
  ctx.agate = await startAgate();
  ctx.tmp = await mkdtemp(join(tmpdir(), 'agate-clients-'));
});
clients.after(async (ctx) => {
  await ctx.agate?.cleanup();
  if (ctx.tmp) await rm(ctx.tmp, { recursive: true, force: true });
});

async function ok(cmd: string, args: string[], env: NodeJS.ProcessEnv, input?: string): Promise<string> {
  const r = await run(cmd, args, { env, input, timeoutMs: 120_000 });
  if (r.code !== 0) throw new Error(describeFailure(cmd, args, r));
  return r.stdout;
}

clients('psql: queries, \\d meta-commands, \\copy out and in', async ({ agate, tmp }) => {
  const env = await agate.libpqEnv();
  const psql = (script: string) => ok(bin('psql'), ['-X', '-v', 'ON_ERROR_STOP=1', '-f', '-'], env, script);
  assert.match(await psql('SELECT name FROM items ORDER BY id;'), /alpha\s+beta\s+gamma/);
  const d = await psql('\\d items\n\\dt\n\\l\n\\du\n');
  assert.match(d, /Table "public\.items"/);
  assert.match(d, /id\s+\|\s+integer/);
  const out = join(tmp, 'items.csv');
  await psql(`\\copy items TO '${out}' WITH (FORMAT csv)\n`);
  assert.is(await readFile(out, 'utf8'), '1,alpha\n2,beta\n3,gamma\n');
  await writeFile(join(tmp, 'more.csv'), '10,ten\n11,eleven\n');
  // With a column list the sample keeps the fields no column rule matches (without one, every field is masked).
  const copied = await psql(`CREATE TABLE items_copy (id int, name text);\n\\copy items_copy (id, name) FROM '${join(tmp, 'more.csv')}' WITH (FORMAT csv)\nSELECT count(*) FROM items_copy;\n`);
  assert.match(copied, /COPY 2[\s\S]*\b2\b/);
  const events = await waitForEvents(agate, (ev) => ev.some((e) => e.type === 'Response' && e.command_tag === 'COPY 2'));
  const copyIn = events.find((e): e is Response => e.type === 'Response' && e.command_tag === 'COPY 2')!;
  assert.is(copyIn.bytes, '10,ten\n11,eleven\n'.length);
  assert.ok(copyIn.digest?.startsWith('sha256:'));
  assert.equal(copyIn.sample, [['10,ten'], ['11,eleven']]);
  const copyOut = events.find((e): e is Response => e.type === 'Response' && e.command_tag === 'COPY 3')!;
  assert.is(copyOut.rows, 3);
  assert.equal(copyOut.sample, [['[masked],[masked]'], ['[masked],[masked]'], ['[masked],[masked]']]);
  assert.ok(copyOut.digest?.startsWith('sha256:'));
});

for (const mode of ['simple', 'extended', 'prepared'] as const) {
  clients(`pgbench -M ${mode} (select-only and TPC-B-like)`, async ({ agate }) => {
    if (mode === 'simple') {
      // Initialised directly on the server: pgbench -i drops tables, which this policy denies.
      const cred = agate.pg.users.scram;
      const direct = { ...(await agate.libpqEnv()), PGPORT: String(agate.pg.port), PGUSER: cred.user, PGPASSWORD: cred.password };
      await ok(bin('pgbench'), ['-i', '-s', '1', '-q'], direct);
    }
    const env = await agate.libpqEnv();
    const select = await ok(bin('pgbench'), ['-n', '-S', '-M', mode, '-c', '2', '-t', '50'], env);
    assert.match(select, /number of transactions actually processed: 100\/100/);
    const tpcb = await ok(bin('pgbench'), ['-n', '-M', mode, '-c', '2', '-t', '10'], env);
    assert.match(tpcb, /number of transactions actually processed: 20\/20/);
    assert.match(tpcb, /number of failed transactions: 0/);
  });
}

clients('psycopg 3: parameters, binary results, executemany, pipeline mode, COPY', async ({ agate }) => {
  const python = (await ok('bash', [join(packageRoot(), 'test/harness/install-psycopg.sh')], process.env)).trim();
  const env = await agate.libpqEnv();
  const script = `
import psycopg
with psycopg.connect("") as conn:
    cur = conn.cursor()
    cur.execute("SELECT id, name FROM items WHERE id = %s AND name = %s", (1, "alpha"))
    assert cur.fetchall() == [(1, "alpha")], "params"
    cur.execute("SELECT %s::int8, %s::text, %s::bool", (7, "seven", True), binary=True)
    assert cur.fetchone() == (7, "seven", True), "binary"
    cur.executemany("INSERT INTO items VALUES (%s, %s)", [(60, "sixty"), (61, "sixty-one")])
    with conn.pipeline():
        cur.execute("UPDATE items SET name = %s WHERE id = %s", ("SIXTY", 60))
        cur.execute("DELETE FROM items WHERE id = %s", (61,))
    conn.commit()
    with cur.copy("COPY (SELECT id FROM items WHERE id >= 60 ORDER BY id) TO STDOUT") as copy:
        rows = [r for r in copy.rows()]
    assert rows == [("60",)], rows
    try:
        cur.execute("TRUNCATE items")
        raise SystemExit("TRUNCATE was not refused")
    except psycopg.errors.InsufficientPrivilege:
        conn.rollback()
    cur.execute("DELETE FROM items WHERE id = %s", (60,))
    conn.commit()
print("psycopg ok")
`;
  assert.match(await ok(python, ['-c', script], env), /psycopg ok/);
  const events = await waitForEvents(agate, (ev) => ev.some((e) => e.type === 'Command' && e.text.startsWith('UPDATE items SET name')));
  const update = events.find((e): e is Command => e.type === 'Command' && e.text.startsWith('UPDATE items SET name'))!;
  assert.equal(update.parameters, ['SIXTY', '60']);
});

clients('psycopg 3 pipelines with an error: every result is recorded against its own statement', async ({ agate }) => {
  const python = (await ok('bash', [join(packageRoot(), 'test/harness/install-psycopg.sh')], process.env)).trim();
  const env = await agate.libpqEnv();
  const rounds = 24;
  const script = `
import psycopg
with psycopg.connect("", autocommit=True) as conn:
    for i in range(${rounds}):
        try:
            with conn.pipeline():
                conn.execute("SELECT 1 AS one_%d" % i)
                conn.execute("SELECT 1/(id - id) AS boom_%d FROM items" % i)
                conn.execute("SELECT 2 AS two_%d" % i)
            raise SystemExit("no error")
        except psycopg.errors.DivisionByZero:
            pass
        with conn.pipeline():
            three = conn.execute("SELECT 3 AS three_%d" % i)
            four = conn.execute("SELECT 4 AS four_%d" % i)
        assert three.fetchone() == (3,) and four.fetchone() == (4,)
print("pipelines ok")
`;
  assert.match(await ok(python, ['-c', script], env), /pipelines ok/);
  const responseOf = (events: AgateEvent[], text: string) => {
    const cmd = events.find((e): e is Command => e.type === 'Command' && e.text === text);
    return cmd === undefined ? undefined : events.find((e): e is Response => e.type === 'Response' && e.command_id === cmd.event_id);
  };
  const last = `SELECT 4 AS four_${rounds - 1}`;
  const events = await waitForEvents(agate, (ev) => responseOf(ev, last) !== undefined);
  for (let i = 0; i < rounds; i++) {
    const expected: [string, string, string[], string | null][] = [
      [`SELECT 1 AS one_${i}`, 'ok', [`one_${i}`], null],
      [`SELECT 1/(id - id) AS boom_${i} FROM items`, 'error', [`boom_${i}`], '22012'],
      [`SELECT 2 AS two_${i}`, 'skipped', [`two_${i}`], null],
      [`SELECT 3 AS three_${i}`, 'ok', [`three_${i}`], null],
      [`SELECT 4 AS four_${i}`, 'ok', [`four_${i}`], null],
    ];
    for (const [text, status, columns, code] of expected) {
      const r = responseOf(events, text);
      assert.ok(r !== undefined, `no response for ${text}`);
      assert.equal([r!.status, r!.error_code], [status, code], text);
      if (status === 'ok') assert.equal(r!.columns, columns, text);
    }
  }
});

clients.run();

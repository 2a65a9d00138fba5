// A hostile agent with a valid token, second pass (pg-hostile.test.ts has the first): through
// the real `agate start` in front of a PostgreSQL 15 that logs every statement it executes
// (pgaudit). Side doors tried here: statements that change tables they never name, built-ins
// bound under a new name, functions that read a table or a query given as text, values sent back
// outside a result, protocol-level tricks, and settings or startup options that would blind the
// server's own log. The database is read directly afterwards and pgaudit's log is checked against
// Agate's record.
import { suite } from '../harness/suite.js';
import * as assert from 'uvu/assert';
import { randomBytes } from 'node:crypto';
import { serialize } from 'pg-protocol';
import { run } from '../harness/proc.js';
import { waitForEvents } from './agate-fixture.js';
import { auditAgent, intact, pgBin, refused, send, startHostile, stopHostile, type HostileCtx } from './pg-hostile-fixture.js';
import { RawClient, type Reply } from './raw-client.js';

interface Ctx extends HostileCtx { loid: number }
const hostile = suite<Ctx>('a hostile agent against the PostgreSQL proxy, second pass');

/** Values of the masked column; no detector knows their shape, only the column rule masks them. */
const TOKEN = `tok${randomBytes(10).toString('hex')}`;
const TOKEN2 = `tok${randomBytes(10).toString('hex')}`;

hostile.before(async (ctx) => {
  await startHostile(ctx, {
    tokens: [TOKEN, TOKEN2],
    extraRules: `    - id: no-destroy
      action: deny
      match: { sql: { effects: [destroy] } }
`,
  });
  const owner = ctx.agate.pg.users.scram.user;
  ctx.loid = Number(await ctx.agate.pg.psql("SELECT lo_from_bytea(0, 'kept')"));
  await ctx.agate.pg.psql(`ALTER LARGE OBJECT ${ctx.loid} OWNER TO ${owner}`);
});

hostile.after(stopHostile);

/** Every way a value can show in what a client received. */
function leaks(seen: string): boolean {
  return [TOKEN, TOKEN2].some((t) => seen.includes(t) || seen.includes(Buffer.from(t).toString('hex')) || seen.includes(t.slice(3, 15)));
}

hostile('a statement that changes tables it never names is a write of every table', async (ctx) => {
  // DROP OWNED drops people with everything else the role owns; no DropStmt, no table named.
  await refused(ctx, 'BEGIN; DROP OWNED BY CURRENT_USER; ROLLBACK', 'people-read-only');
  await refused(ctx, `BEGIN; REASSIGN OWNED BY CURRENT_USER TO ${ctx.agate.pg.users.md5.user}; ROLLBACK`, 'people-read-only');
  await refused(ctx, `BEGIN; GRANT UPDATE ON ALL TABLES IN SCHEMA public TO ${ctx.agate.pg.users.md5.user}; ROLLBACK`, 'people-read-only');
  // Renaming the schema gives public.ledger a name the qualified rule does not know.
  await refused(ctx, 'ALTER SCHEMA public RENAME TO pub2; UPDATE pub2.ledger SET amount = 0 WHERE id = 1; ALTER SCHEMA pub2 RENAME TO public', 'people-read-only');
  // A partition's rows are written through its parent, which names it nowhere.
  assert.ok((await send(ctx, 'CREATE TABLE pp (id int, name text) PARTITION BY LIST (id)')).ok);
  await refused(ctx, "ALTER TABLE pp ATTACH PARTITION people FOR VALUES IN (1, 2); UPDATE pp SET name = 'x' WHERE id = 1", 'people-read-only');
  // Regression: the named forms were refused already.
  await refused(ctx, 'DROP SCHEMA public CASCADE', 'no-delete');
  await refused(ctx, 'ALTER TABLE people SET SCHEMA other', 'people-read-only');
  await refused(ctx, 'ALTER TABLE ledger SET SCHEMA other', 'ledger-read-only');
  // Schemas and grants that reach no table still run. (Renaming any schema is refused here: the
  // people rule names no schema, and Agate cannot know which schemas hold a `people`.)
  for (const sql of ['CREATE SCHEMA spare', `GRANT USAGE ON SCHEMA other TO ${ctx.agate.pg.users.md5.user}`, 'ALTER SCHEMA spare OWNER TO CURRENT_USER']) {
    const r = await send(ctx, sql);
    assert.ok(r.ok, `${sql}: ${JSON.stringify(r)}`);
  }
});

hostile('regression: writes inside EXPLAIN ANALYZE, CTEs and MERGE, and settings changing how text is read', async (ctx) => {
  await refused(ctx, 'EXPLAIN ANALYZE DELETE FROM people WHERE id = 1', 'no-delete');
  await refused(ctx, "EXPLAIN (ANALYZE, FORMAT json) UPDATE people SET name = 'x' WHERE id = 1", 'people-read-only');
  await refused(ctx, "WITH d AS (UPDATE people SET name = 'x' WHERE id = 1 RETURNING *) SELECT count(*) FROM d", 'people-read-only');
  await refused(ctx, "MERGE INTO people p USING scratch s ON s.id = p.id WHEN MATCHED THEN UPDATE SET name = 'x'", 'people-read-only');
  await refused(ctx, 'MERGE INTO scratch s USING people p ON s.id = p.id WHEN MATCHED THEN DELETE', 'no-delete');
  for (const sql of ['BEGIN; SET LOCAL standard_conforming_strings = off; COMMIT', "SELECT set_config('client_encoding', 'SJIS', true)", "SET client_encoding = 'GBK'", "SET NAMES 'BIG5'"]) {
    ctx.refusals += 1;
    const r = await send(ctx, sql);
    assert.ok(!r.ok && /agate\.lexing-setting/.test(r.message), `${sql}: ${JSON.stringify(r)}`);
  }
  const env = await ctx.agate.libpqEnv();
  const big5 = await run(pgBin('psql'), ['-X', '-A', '-t', '-w', '-c', 'SELECT 1'], { env: { ...env, PGCLIENTENCODING: 'BIG5' }, timeoutMs: 30_000 });
  assert.ok(big5.code !== 0 && /client_encoding/.test(big5.stderr), big5.stderr);
});

hostile('a built-in bound to a new name (operator, aggregate) counts as a call of it', async (ctx) => {
  // Called by name it is refused; an operator would call it with no name in the text.
  await refused(ctx, `SELECT lo_unlink(${ctx.loid})`, 'no-destroy');
  await refused(ctx, 'CREATE OPERATOR ### (rightarg = oid, function = lo_unlink)', 'no-destroy');
  await refused(ctx, 'CREATE OPERATOR ### (rightarg = oid, procedure = pg_catalog.lo_unlink)', 'no-destroy');
  await refused(ctx, 'CREATE AGGREGATE unlink_all(oid) (sfunc = lo_unlink, stype = int4)', 'no-destroy');
  assert.is(await ctx.agate.pg.psql(`SELECT count(*) FROM pg_largeobject_metadata WHERE oid = ${ctx.loid}`), '1');
  // SQL given as text, run by the built-in: not in the statement's text, so not allowed by default.
  for (const sql of ['CREATE OPERATOR ### (rightarg = text, function = ts_stat)', 'CREATE OPERATOR ### (leftarg = tsquery, rightarg = text, function = ts_rewrite)']) {
    ctx.refusals += 1;
    const r = await send(ctx, sql);
    assert.ok(!r.ok && /agate\.unverifiable/.test(r.message), `${sql}: ${JSON.stringify(r)}`);
  }
  assert.is(await ctx.agate.pg.psql("SELECT count(*) FROM pg_operator WHERE oprname = '###'"), '0');
  // ts_rewrite runs the SQL of its second argument: read as the statement's own.
  await refused(ctx, "SELECT ts_rewrite('a'::tsquery, 'DELETE FROM people RETURNING ''a''::tsquery, ''b''::tsquery')", 'no-delete');
  // An operator over a harmless function still runs.
  const ok = await send(ctx, 'CREATE OPERATOR @+@ (leftarg = int4, rightarg = int4, function = int4pl)');
  assert.ok(ok.ok, JSON.stringify(ok));
});

hostile('a function reading a table or a query given as text returns masked columns under its own name: masked whole', async (ctx) => {
  const reads = [
    "SELECT table_to_xml('vault', true, false, '')",
    "SELECT table_to_xml_and_xmlschema('public.vault'::regclass, true, false, '')",
    "SELECT query_to_xml('SELECT api_token FROM vault', true, false, '')",
    "SELECT schema_to_xml('public', true, false, '')",
    "SELECT database_to_xml(true, false, '')",
    "SELECT word FROM ts_stat('SELECT to_tsvector(''simple'', api_token) FROM vault')",
    "SELECT ts_rewrite('x'::tsquery, 'SELECT ''x''::tsquery, api_token::tsquery FROM vault')::text AS q",
    "BEGIN; DECLARE c CURSOR FOR SELECT id, api_token FROM vault; SELECT cursor_to_xml('c', 5, false, false, ''); COMMIT",
    // The planner's statistics hold sampled values of every column.
    "ANALYZE vault; SELECT histogram_bounds::text AS h, most_common_vals::text AS m FROM pg_stats WHERE tablename = 'vault'",
  ];
  const failures: string[] = [];
  for (const sql of reads) {
    const r = await send(ctx, sql, true);
    if (leaks(JSON.stringify(r))) failures.push(`${sql}: the masked client saw ${JSON.stringify(r).slice(0, 300)}`);
    const copy = await send(ctx, `CREATE TABLE loot AS ${sql.replace(/^.*?;\s*(SELECT)/, '$1').replace(/; COMMIT$/, '')}`, true);
    if (copy.ok) failures.push(`copying ${sql} ran`);
    await ctx.agate.pg.psql('DROP TABLE IF EXISTS loot');
  }
  assert.equal(failures, []);
  assert.is(await ctx.agate.pg.psql("SELECT count(*) FROM pg_class WHERE relname = 'loot'"), '0');
  // The same reads by an unmasked client: the record (audit mask) still holds no token.
  const before = ctx.agate.events().filter((e) => e.type === 'Response').length;
  for (const sql of reads) await send(ctx, sql);
  await waitForEvents(ctx.agate, (ev) => ev.filter((e) => e.type === 'Response').length >= before + reads.length);
  assert.not.ok(leaks(ctx.agate.busLog().toString('latin1')), 'the bus log carries the masked column');
});

hostile('a masked value sent back outside the result (notification, parameter report, function call) does not reach the masked client', async (ctx) => {
  const raw = await RawClient.login(ctx.agate.host, ctx.agate.port, await ctx.agate.token({ masked: 'yes' }));
  try {
    const attempts: Buffer[][] = [
      [serialize.query('LISTEN loot')],
      [serialize.query("SELECT pg_notify('loot', api_token) FROM vault")],
      [serialize.query("BEGIN; SELECT pg_notify('loot', v::text) FROM vault v; COMMIT")],
      [serialize.query("SELECT set_config('application_name', api_token, false) FROM vault WHERE id = 1")],
      [serialize.query("SELECT set_config('agate.loot', api_token, false) FROM vault WHERE id = 1"), serialize.query("SHOW agate.loot")],
      // A notification still on its way arrives with the next answer.
      [serialize.query('SELECT 1')],
    ];
    // A function that keeps its argument, created by the masked client itself (no masked name in its body).
    raw.send(serialize.query("CREATE FUNCTION keep(t text) RETURNS text LANGUAGE sql AS 'INSERT INTO scratch VALUES (0, t) RETURNING t'"));
    assert.not.ok((await raw.readyCount(1)).some((r) => r.name === 'error'));
    attempts.push([serialize.query('SELECT keep(api_token) FROM vault'), serialize.query('SELECT note FROM scratch WHERE id = 0')]);
    // The same under a built-in's name: other.upper found before pg_catalog.upper.
    raw.send(serialize.query("CREATE FUNCTION other.upper(t text) RETURNS text LANGUAGE sql AS 'INSERT INTO scratch VALUES (0, t) RETURNING t'"));
    assert.not.ok((await raw.readyCount(1)).some((r) => r.name === 'error'));
    attempts.push([serialize.query('SET search_path = other, pg_catalog, public'), serialize.query('SELECT upper(api_token) FROM vault'), serialize.query('RESET search_path'), serialize.query('SELECT note FROM scratch WHERE id = 0')]);
    const failures: string[] = [];
    for (const frames of attempts) {
      raw.send(...frames);
      const replies = await raw.readyCount(frames.length);
      const seen = JSON.stringify(replies.map(describe));
      if (leaks(seen)) failures.push(`${frames.map((f) => f.toString('latin1', 5)).join(' | ')}: ${seen.slice(0, 400)}`);
    }
    assert.equal(failures, []);
    assert.is(await ctx.agate.pg.psql('SELECT count(*) FROM scratch WHERE id = 0'), '0');
    // FunctionCall: table_to_xml(regclass, bool, bool, text) by OID, answered outside any row.
    const oid = Number(await ctx.agate.pg.psql("SELECT 'table_to_xml(regclass, boolean, boolean, text)'::regprocedure::oid"));
    const vault = Number(await ctx.agate.pg.psql("SELECT 'public.vault'::regclass::oid"));
    raw.send(functionCall(oid, [int32(vault), Buffer.from([1]), Buffer.from([0]), Buffer.alloc(0)], [1, 1, 1, 0]));
    const replies = await raw.readyCount(1);
    assert.not.ok(leaks(JSON.stringify(replies.map(describe))), `FunctionCall table_to_xml: ${JSON.stringify(replies.map(describe))}`);
  } finally {
    raw.close();
  }
});

hostile('protocol tricks: statements swapped between Parse, Bind and Execute, pipelines, stray messages', async (ctx) => {
  const raw = await RawClient.login(ctx.agate.host, ctx.agate.port, await ctx.agate.token());
  try {
    // Bind captures the statement: a re-Parse of the unnamed statement before Execute changes nothing.
    raw.send(
      serialize.parse({ text: "SELECT 'first' AS x" }), serialize.bind({}),
      serialize.parse({ text: "UPDATE people SET name = 'x' WHERE id = 1" }), serialize.execute({}), serialize.sync(),
    );
    let replies = await raw.readyCount(1);
    assert.ok(replies.some((r) => r.name === 'dataRow'), JSON.stringify(replies.map(describe)));
    // A named statement bound by another name runs as the statement it names.
    raw.send(
      serialize.parse({ name: 's1', text: 'SELECT 1 AS one' }), serialize.parse({ name: 's2', text: 'DELETE FROM people WHERE id = 2' }),
      serialize.bind({ statement: 's2', portal: 'p' }), serialize.execute({ portal: 'p' }), serialize.sync(),
    );
    replies = await raw.readyCount(1);
    assert.ok(replies.some((r) => r.name === 'error' && /rule "no-delete"/.test(r.message ?? '')), JSON.stringify(replies.map(describe)));
    // Two statements in one Parse: refused (by policy here; the server refuses any pair).
    raw.send(serialize.parse({ text: 'SELECT 1; DELETE FROM people' }), serialize.bind({}), serialize.execute({}), serialize.sync());
    replies = await raw.readyCount(1);
    assert.ok(replies.some((r) => r.name === 'error'), JSON.stringify(replies.map(describe)));
    raw.send(serialize.parse({ text: "SELECT 1; UPDATE scratch SET note = 'p'" }), serialize.bind({}), serialize.execute({}), serialize.sync());
    replies = await raw.readyCount(1);
    assert.ok(replies.some((r) => r.name === 'error' && r.code === '42601'), JSON.stringify(replies.map(describe)));
    // A pipeline without Sync: the refused Execute ends the batch, the next after Sync runs.
    raw.send(
      ...[1, 2].flatMap((i) => [serialize.parse({ text: `SELECT ${i}` }), serialize.bind({}), serialize.execute({})]),
      serialize.parse({ text: 'TRUNCATE people' }), serialize.bind({}), serialize.execute({}),
      serialize.parse({ text: "UPDATE scratch SET note = 'after'" }), serialize.bind({}), serialize.execute({}), serialize.sync(),
    );
    replies = await raw.readyCount(1);
    assert.is(replies.filter((r) => r.name === 'dataRow').length, 2, JSON.stringify(replies.map(describe)));
    // CopyData and CopyDone outside a COPY: the server ignores them; the session goes on.
    raw.send(copyData(Buffer.from('1\tx\n')), Buffer.from([0x63, 0, 0, 0, 4]), serialize.query('SELECT 7 AS seven'));
    replies = await raw.readyCount(1);
    assert.ok(replies.some((r) => r.name === 'dataRow'), JSON.stringify(replies.map(describe)));
    // FunctionCall of a built-in running SQL text: decided as the SELECT it amounts to.
    const oid = Number(await ctx.agate.pg.psql("SELECT 'query_to_xml(text, boolean, boolean, text)'::regprocedure::oid"));
    raw.send(functionCall(oid, [Buffer.from('DELETE FROM people RETURNING 1'), Buffer.from('t'), Buffer.from('f'), Buffer.alloc(0)], [0]));
    replies = await raw.readyCount(1);
    assert.ok(replies.some((r) => r.name === 'error' && /agate\.unverifiable/.test(r.message ?? '')), JSON.stringify(replies.map(describe)));
    // An SSLRequest after login is no message of the protocol: the session ends.
    raw.send(Buffer.from([0, 0, 0, 8, 0x04, 0xd2, 0x16, 0x2f]), Buffer.alloc(2048));
    replies = await raw.until((r) => r.name === 'error');
    assert.ok(replies.some((r) => r.name === 'error' && r.code === '08P01'), JSON.stringify(replies.map(describe)));
  } finally {
    raw.close();
  }
  await intact(ctx);
  assert.is(await ctx.agate.pg.psql("SELECT count(*) FROM scratch WHERE note IN ('p', 'after')"), '0');
});

hostile("settings and startup options that would blind the server's log or change identity: refused by the server, recorded", async (ctx) => {
  const attempts = [
    "SET pgaudit.log = 'none'",
    "SELECT set_config('pgaudit.log', 'none', false)",
    "ALTER SYSTEM SET pgaudit.log = 'none'",
    'SET session_replication_role = replica',
    'SET ROLE postgres',
    'SET SESSION AUTHORIZATION postgres',
    "COPY scratch FROM PROGRAM 'id'",
    "SELECT lo_import('/etc/hostname')",
    "SELECT pg_read_file('/etc/hostname')",
    'CREATE EVENT TRIGGER e ON ddl_command_start EXECUTE FUNCTION suppress_redundant_updates_trigger()',
  ];
  for (const sql of attempts) {
    const r = await send(ctx, sql);
    assert.ok(!r.ok, `${sql} ran`);
  }
  // A program on the database server is not SQL Agate can read: refused by Agate itself, whatever
  // the server's privileges (with a superuser upstream it would have run).
  const program = await send(ctx, "COPY (SELECT 1) TO PROGRAM 'cat > /dev/null'");
  assert.ok(!program.ok && /agate\.unverifiable/.test(program.message), JSON.stringify(program));
  const env = await ctx.agate.libpqEnv();
  for (const options of ['-c pgaudit.log=none', '-c session_replication_role=replica', '-c role=postgres']) {
    const r = await run(pgBin('psql'), ['-X', '-A', '-t', '-w', '-c', "UPDATE scratch SET note = 'opt' WHERE true"], { env: { ...env, PGOPTIONS: options }, timeoutMs: 30_000 });
    assert.ok(r.code !== 0, `${options}: ${r.stdout}`);
  }
  // A masked client may not put a schema before pg_catalog at startup either (other.upper above).
  const maskedEnv = { ...env, PGPASSWORD: await ctx.agate.token({ masked: 'yes' }), PGOPTIONS: '-c search_path=other,pg_catalog' };
  const shadow = await run(pgBin('psql'), ['-X', '-A', '-t', '-w', '-c', 'SELECT upper(api_token) FROM vault'], { env: maskedEnv, timeoutMs: 30_000 });
  assert.ok(shadow.code !== 0 && /search_path/.test(shadow.stderr) && /puts a schema before pg_catalog in search_path/.test(shadow.stderr), shadow.stdout + shadow.stderr);
  assert.is(await ctx.agate.pg.psql("SELECT count(*) FROM scratch WHERE note = 'opt'"), '0');
  // An application_name spoofing Agate's own catalog connection is still the agent's, in pgaudit's log.
  const r = await run(pgBin('psql'), ['-X', '-A', '-t', '-w', '-c', "UPDATE scratch SET note = 'spoofed' WHERE true"], { env: { ...env, PGAPPNAME: 'agate catalog lookup' }, timeoutMs: 30_000 });
  assert.is(r.code, 0, r.stderr);
});

hostile('pgaudit: everything PostgreSQL executed was recorded as allowed; nothing refused ran', async (ctx) => {
  const { agate } = ctx;
  const { entries, checked, report } = await auditAgent(ctx);
  assert.ok(report.checked > 10, `pgaudit logged the attempts (${report.checked})`);
  // pgaudit does not log a FunctionCall (fastpath) itself, only the SQL the function runs: the
  // query table_to_xml ran for the FunctionCall above, which Agate recorded as that call.
  const fastpath = 'SELECT: SELECT * FROM vault';
  assert.is(report.unexplained.filter((u) => u === fastpath).length, 1, JSON.stringify(report.unexplained));
  assert.ok(agate.events().some((e) => e.type === 'Command' && e.attributes.function === 'pg_catalog.table_to_xml'));
  assert.equal(report.unexplained.filter((u) => u !== fastpath), []);
  // (cursor_to_xml, which fetches the portal its argument names, is refused as agate.unverifiable
  // since pass 5, pg-hostile-4.test.ts: its cursor's query no longer runs.)
  assert.equal(report.overrun, []);
  // The spoofing session's UPDATE ran under Agate's catalog connection's name, and is still checked.
  assert.ok(entries.some((e) => e.statement.includes("'spoofed'") && e.app === 'agate catalog lookup' && checked(e)), 'the spoofed UPDATE was left out of the check');
  const writes = entries.filter((e) => e.auditClass === 'WRITE' && /people|ledger|\bpp\b/i.test(e.statement) && e.user === agate.pg.users.scram.user);
  assert.equal(writes.map((e) => e.statement), []);
  assert.is(await agate.pg.psql(`SELECT count(*) FROM pg_largeobject_metadata WHERE oid = ${ctx.loid}`), '1');
  const refusedCount = agate.events().filter((e) => e.type === 'Response' && (e as { status?: string }).status === 'refused').length;
  assert.ok(ctx.refusals > 10 && refusedCount >= ctx.refusals, `${refusedCount} refusals recorded, ${ctx.refusals} expected`);
});

function describe(r: Reply): unknown {
  const { name, length: _length, ...rest } = r as Reply & Record<string, unknown>;
  return { name, ...Object.fromEntries(Object.entries(rest).map(([k, v]) => [k, Buffer.isBuffer(v) ? v.toString('latin1') : v])) };
}

function int32(n: number): Buffer {
  const b = Buffer.alloc(4);
  b.writeInt32BE(n);
  return b;
}

function copyData(data: Buffer): Buffer {
  const head = Buffer.from([0x64, 0, 0, 0, 0]);
  head.writeInt32BE(data.length + 4, 1);
  return Buffer.concat([head, data]);
}

/** A FunctionCall ('F') message: OID, argument formats, arguments, result format text. */
function functionCall(oid: number, args: Buffer[], formats: number[]): Buffer {
  const parts: Buffer[] = [int32(oid)];
  const f = Buffer.alloc(2 + formats.length * 2);
  f.writeInt16BE(formats.length);
  formats.forEach((x, i) => f.writeInt16BE(x, 2 + i * 2));
  parts.push(f);
  const n = Buffer.alloc(2);
  n.writeInt16BE(args.length);
  parts.push(n);
  for (const a of args) parts.push(int32(a.length), a);
  parts.push(Buffer.from([0, 0]));
  const body = Buffer.concat(parts);
  const head = Buffer.from([0x46, 0, 0, 0, 0]);
  head.writeInt32BE(body.length + 4, 1);
  return Buffer.concat([head, body]);
}

hostile.run();

// A hostile agent with a valid token, through the real `agate start` in front of a PostgreSQL 15
// that logs every statement it executes (pgaudit): each attempt to run a write the policy denies,
// or to read a masked column, through a side door. The database is read directly afterwards (not
// through Agate), and pgaudit's log is checked against Agate's record, so a statement that ran
// while Agate thought it harmless shows. The attempts already covered by the neighbouring files
// (lexing, pg-policy-facts, pgaudit-oracle, masking, canaries) are not repeated here.
import { suite } from '../harness/suite.js';
import * as assert from 'uvu/assert';
import { randomBytes } from 'node:crypto';
import type { Command, Response } from '../../schemas/src/events.js';
import { run } from '../harness/proc.js';
import { waitForEvents } from './agate-fixture.js';
import { auditAgent, intact, pgBin, refused, send, startHostile, stopHostile, type HostileCtx } from './pg-hostile-fixture.js';

const hostile = suite<HostileCtx>('a hostile agent against the PostgreSQL proxy: side doors around deny and mask');

/** The value of a masked column; no detector knows its shape, only the column rule masks it. */
const TOKEN = `tok${randomBytes(10).toString('hex')}`;

hostile.before((ctx) => startHostile(ctx, { tokens: [TOKEN] }));
hostile.after(stopHostile);

hostile('an updatable view over a read-only table is a write path to it: creating it is a write of the table', async (ctx) => {
  // CREATE VIEW only reads people; UPDATE/INSERT through the view would write people itself.
  await refused(ctx, 'CREATE VIEW people_v AS SELECT * FROM people', 'people-read-only');
  await refused(ctx, 'CREATE VIEW other.p AS SELECT id, name FROM public.people WHERE id > 0 WITH CHECK OPTION', 'people-read-only');
  await refused(ctx, 'CREATE OR REPLACE VIEW ppl AS WITH x AS (SELECT * FROM people) SELECT * FROM x', 'people-read-only');
  assert.is(await ctx.agate.pg.psql("SELECT count(*) FROM pg_views WHERE viewname IN ('people_v', 'p', 'ppl')"), '0');
  // A materialized view is a copy, not a window: it still runs.
  const mv = await send(ctx, 'CREATE MATERIALIZED VIEW people_copy AS SELECT * FROM people');
  assert.ok(mv.ok, JSON.stringify(mv));
});

hostile('a rule naming a qualified table also stops the unqualified name (search_path decides the schema)', async (ctx) => {
  await refused(ctx, 'UPDATE ledger SET amount = 0', 'ledger-read-only');
  await refused(ctx, 'INSERT INTO ledger VALUES (2, 5)', 'ledger-read-only');
  await refused(ctx, 'SET search_path = other, public; UPDATE ledger SET amount = 0 WHERE id = 1', 'ledger-read-only');
  await refused(ctx, 'UPDATE "public"."ledger" SET amount = 0 WHERE id = 1', 'ledger-read-only');
  // Reads still run.
  const r = await send(ctx, 'SELECT amount FROM ledger');
  assert.ok(r.ok && JSON.stringify(r.rows) === '[{"amount":100}]', JSON.stringify(r));
});

hostile('writes hidden in code the agent defines are refused at definition: function, procedure, rule, trigger function', async (ctx) => {
  await refused(ctx, "CREATE FUNCTION f1() RETURNS void LANGUAGE sql AS 'DELETE FROM people'", 'no-delete');
  await refused(ctx, 'CREATE PROCEDURE p1() LANGUAGE sql BEGIN ATOMIC UPDATE people SET name = $$x$$ WHERE id = 1; END', 'people-read-only');
  await refused(ctx, 'CREATE FUNCTION t1() RETURNS trigger LANGUAGE plpgsql AS $$ BEGIN DELETE FROM people; RETURN NEW; END $$', 'no-delete');
  await refused(ctx, 'CREATE RULE r1 AS ON INSERT TO vault DO ALSO UPDATE people SET name = NEW.api_token', 'people-read-only');
  await refused(ctx, 'CREATE RULE r2 AS ON SELECT TO vault DO INSTEAD DELETE FROM people', 'no-delete');
  await refused(ctx, 'COPY (DELETE FROM people RETURNING *) TO STDOUT', 'no-delete');
  await refused(ctx, "DO $$ BEGIN PERFORM 1; UPDATE people SET name = 'x' WHERE id = 2; END $$", 'people-read-only');
  await refused(ctx, 'CREATE TABLE people_child () INHERITS (people)', 'people-read-only');
  await refused(ctx, 'ALTER TABLE people RENAME TO people_old', 'people-read-only');
  // A child's rows show in its parent: joining one later is the same write as CREATE … INHERITS.
  assert.ok((await send(ctx, 'CREATE TABLE kid (id int, name text)')).ok);
  await refused(ctx, 'ALTER TABLE kid INHERIT people', 'people-read-only');
  assert.is(await ctx.agate.pg.psql("SELECT count(*) FROM pg_inherits WHERE inhparent = 'people'::regclass"), '0');
  await refused(ctx, 'SELECT * FROM people FOR UPDATE; UPDATE people SET name = name WHERE id = 1', 'people-read-only');
  assert.is(await ctx.agate.pg.psql("SELECT count(*) FROM pg_proc WHERE proname IN ('f1', 'p1', 't1')"), '0');
  assert.is(await ctx.agate.pg.psql("SELECT count(*) FROM pg_rules WHERE rulename IN ('r1', 'r2')"), '0');
});

hostile('a masked column read under another name reaches neither the masked client nor the record', async (ctx) => {
  const reads = [
    'SELECT api_token AS t FROM vault',
    'SELECT v.api_token AS "id" FROM vault v',
    "SELECT api_token || '' AS t FROM vault",
    'SELECT upper(api_token) FROM vault',
    "SELECT string_agg(api_token, ',') FROM vault",
    'SELECT v FROM vault v',
    'SELECT v::text FROM vault v',
    'SELECT ROW(v.*) FROM vault v',
    "SELECT encode(convert_to(api_token, 'UTF8'), 'hex') AS h FROM vault",
    'SELECT x.t FROM (SELECT api_token AS t FROM vault) x',
    'WITH w(t) AS (SELECT api_token FROM vault) SELECT t FROM w',
    'SELECT substr(api_token, 1, 12) AS a, substr(api_token, 13) AS b FROM vault',
    'SELECT * FROM vault v(a, b)',
    'WITH w(a, b) AS (SELECT * FROM vault) SELECT * FROM w',
    "SELECT 0, 'x' UNION ALL SELECT * FROM vault",
    // The renaming statement's rows come back later, to a statement that names no column.
    'PREPARE renamed AS SELECT api_token AS pt FROM vault; EXECUTE renamed; DEALLOCATE renamed',
    'BEGIN; DECLARE c CURSOR FOR SELECT api_token AS ct FROM vault; FETCH 1 FROM c; COMMIT',
  ];
  const hex = Buffer.from(TOKEN).toString('hex');
  for (const sql of reads) {
    const r = await send(ctx, sql, true);
    const seen = JSON.stringify(r);
    assert.not.ok(seen.includes(TOKEN) || seen.includes(hex) || seen.includes(TOKEN.slice(3, 15).toUpperCase()), `${sql}: the masked client saw ${seen}`);
    assert.not.ok(r.ok && seen.includes(TOKEN.slice(0, 12)) && seen.includes(TOKEN.slice(12)), `${sql}: pieces reached the client`);
  }
  // Masked whole, not refused: the agent still gets an answer of the same shape.
  assert.equal(await send(ctx, 'SELECT api_token AS t FROM vault', true), { ok: true, rows: [{ t: '[masked]' }] });
  assert.equal(await send(ctx, 'SELECT api_token FROM vault', true), { ok: true, rows: [{ api_token: '[masked]' }] });
  // The same reads by an unmasked client: the record (audit mask) still holds no token.
  for (const sql of reads) await send(ctx, sql);
  await waitForEvents(ctx.agate, (ev) => ev.filter((e) => e.type === 'Response').length >= reads.length * 2);
  assert.not.ok(ctx.agate.busLog().includes(TOKEN), 'the bus log carries the masked column');
  assert.not.ok(ctx.agate.busLog().includes(hex), 'the bus log carries the masked column in hex');
});

hostile('a masked client may not copy a masked column where it would read it back under another name', async (ctx) => {
  const copies = [
    'CREATE TABLE loot AS SELECT api_token AS t FROM vault',
    'SELECT api_token AS t INTO loot FROM vault',
    'CREATE VIEW loot_v AS SELECT api_token AS t FROM vault',
    'CREATE MATERIALIZED VIEW loot_m AS SELECT id, api_token AS t FROM vault',
    'INSERT INTO scratch SELECT id, api_token FROM vault',
    'UPDATE scratch SET note = (SELECT api_token FROM vault LIMIT 1)',
    "CREATE FUNCTION leak() RETURNS text LANGUAGE sql AS 'SELECT api_token FROM vault'",
    'DO $$ BEGIN INSERT INTO scratch SELECT id, api_token FROM vault; END $$',
    "COPY (SELECT api_token AS t FROM vault) TO '/tmp/loot.csv'",
    'CREATE VIEW loot_star (a, b) AS SELECT * FROM vault',
    'CREATE TABLE loot (a, b) AS SELECT * FROM vault',
    'INSERT INTO scratch SELECT * FROM vault',
    'ALTER TABLE vault RENAME COLUMN api_token TO t',
    // A COPY stream is masked by detectors only: no column rule reaches it.
    'COPY vault TO STDOUT',
  ];
  for (const sql of copies) {
    const r = await send(ctx, sql, true);
    assert.ok(!r.ok && r.code === '42501' && /copies a column that mask set "default" masks/.test(r.message), `${sql}: ${JSON.stringify(r)}`);
  }
  assert.is(await ctx.agate.pg.psql("SELECT count(*) FROM scratch"), '0');
  assert.is(await ctx.agate.pg.psql("SELECT count(*) FROM pg_class WHERE relname LIKE 'loot%'"), '0');
  assert.is(await ctx.agate.pg.psql("SELECT count(*) FROM pg_proc WHERE proname = 'leak'"), '0');
  assert.is(await ctx.agate.pg.psql("SELECT count(*) FROM pg_attribute WHERE attrelid = 'vault'::regclass AND attname = 'api_token'"), '1');
  // Writing a masked column, or reading it as itself, still runs for the masked client.
  for (const sql of ['COPY vault (id) TO STDOUT', "INSERT INTO vault (id, api_token) VALUES (5, 'x')", "UPDATE vault SET api_token = 'y' WHERE id = 5", 'SELECT api_token FROM vault WHERE id = 5']) {
    const r = await send(ctx, sql, true);
    assert.ok(r.ok, `${sql}: ${JSON.stringify(r)}`);
  }
  assert.is(await ctx.agate.pg.psql('SELECT api_token FROM vault WHERE id = 5'), 'y');
  // An unmasked client is not limited by the audit set: it may copy (the record stays masked).
  const r = await send(ctx, 'INSERT INTO scratch SELECT id, api_token FROM vault WHERE id = 5');
  assert.ok(r.ok, JSON.stringify(r));
});

hostile('a masked column echoed by an error message reaches neither the masked client nor the record', async (ctx) => {
  for (const sql of ['SELECT api_token::int FROM vault', 'SELECT CAST(api_token AS numeric) FROM vault', "SELECT to_date(api_token, 'YYYY') FROM vault"]) {
    const r = await send(ctx, sql, true);
    assert.ok(!r.ok, `${sql}: ran`);
    assert.not.ok(r.message.includes(TOKEN), `${sql}: the error carried the value: ${r.message}`);
    await send(ctx, sql);
  }
  assert.not.ok(ctx.agate.busLog().includes(TOKEN), 'the bus log carries the masked column');
});

hostile('replication=database at startup: no walsender upstream, replication commands refused, SQL still decided', async (ctx) => {
  const env = await ctx.agate.libpqEnv();
  const psql = (sql: string) => run(pgBin('psql'), ['-X', '-A', '-t', '-w', '-d', 'dbname=appdb replication=database', '-c', sql], { env, timeoutMs: 30_000 });
  // START_REPLICATION would stream every row change, masked columns included.
  for (const sql of ['IDENTIFY_SYSTEM', 'CREATE_REPLICATION_SLOT loot LOGICAL test_decoding', 'START_REPLICATION SLOT loot LOGICAL 0/0']) {
    const r = await psql(sql);
    assert.ok(r.code !== 0, `${sql} ran: ${r.stdout}`);
  }
  assert.is(await ctx.agate.pg.psql('SELECT count(*) FROM pg_replication_slots'), '0');
  assert.is(await ctx.agate.pg.psql("SELECT count(*) FROM pg_stat_replication"), '0');
  const drop = await psql('TRUNCATE people');
  assert.ok(drop.code !== 0 && drop.stderr.includes('rule "no-delete"'), drop.stderr);
  await intact(ctx);
});

hostile('pgaudit: everything PostgreSQL executed was recorded as allowed; nothing refused ran', async (ctx) => {
  const { agate } = ctx;
  const { entries, report } = await auditAgent(ctx);
  assert.ok(report.checked > 10, `pgaudit logged the attempts (${report.checked})`);
  assert.equal(report.unexplained, []);
  assert.equal(report.overrun, []);
  // No write to people or ledger reached the server at all.
  const writes = entries.filter((e) => e.auditClass === 'WRITE' && /people|ledger/i.test(e.statement) && e.user === agate.pg.users.scram.user);
  assert.equal(writes.map((e) => e.statement), []);
  const refusedCommands = agate.events().filter((e): e is Response => e.type === 'Response' && e.status === 'refused');
  assert.ok(ctx.refusals > 15 && refusedCommands.length >= ctx.refusals, `${refusedCommands.length} refusals recorded, ${ctx.refusals} expected`);
  assert.ok(agate.events().some((e): e is Command => e.type === 'Command' && e.text === 'UPDATE ledger SET amount = 0'));
});

hostile.run();

// A hostile agent with a valid token, fifth pass (pg-hostile.test.ts, -2, -3 and -4 have the first
// four): through the real `agate start` in front of a PostgreSQL 15 that logs every statement it
// executes (pgaudit). Corners tried here: built-ins that read or change a relation named by a
// value rather than in the text (`table_to_xml('vault', …)`, `nextval('invoice_no')`), so that a
// rule naming the relation would not see it; and protocol paths around a refused statement.
// Witnesses: the database read directly, the replies on the wire, the record, and pgaudit's log
// checked against it.
import { suite } from '../harness/suite.js';
import * as assert from 'uvu/assert';
import { randomBytes } from 'node:crypto';
import { serialize } from 'pg-protocol';
import { auditAgent, refused, send, startHostile, stopHostile, type HostileCtx } from './pg-hostile-fixture.js';
import { RawClient, type Reply } from './raw-client.js';
import { waitForEvents } from './agate-fixture.js';
import type { AgateEvent, Command, Response } from '../../schemas/src/events.js';

const hostile = suite<HostileCtx>('a hostile agent against the PostgreSQL proxy, fifth pass');

/** The secret column's values: no detector knows their shape. */
const TOKEN = `tok${randomBytes(10).toString('hex')}`;

hostile.before(async (ctx) => {
  await startHostile(ctx, {
    tokens: [TOKEN],
    extraRules: `    - id: vault-unread
      action: deny
      match: { sql: { tables_read: [vault] } }
    - id: invoice-numbers-fixed
      action: deny
      match: { sql: { tables_written: [public.invoice_no] } }
    - id: no-signals
      action: deny
      match: { sql: { statements: [NotifyStmt] } }
`,
  });
  await ctx.agate.pg.psql(`CREATE SEQUENCE public.invoice_no START 100;
ALTER SEQUENCE public.invoice_no OWNER TO ${ctx.agate.pg.users.scram.user};
ANALYZE public.vault;
CREATE TABLE public.keyring (id int, api_token text);
INSERT INTO public.keyring VALUES (1, '${TOKEN}');
ALTER TABLE public.keyring OWNER TO ${ctx.agate.pg.users.scram.user};`);
});
hostile.after(stopHostile);

/** The sequence as PostgreSQL has it, read directly. */
const invoiceNo = (ctx: HostileCtx) => ctx.agate.pg.psql("SELECT last_value || ':' || is_called FROM public.invoice_no");

hostile('a built-in handed a table by name reads it: a rule refusing reads of the table refuses the call', async (ctx) => {
  // The named read is refused (the baseline the built-ins must not get around).
  await refused(ctx, 'SELECT api_token FROM vault', 'vault-unread');
  for (const sql of [
    "SELECT table_to_xml('vault', true, false, '')",
    "SELECT table_to_xml('public.vault'::regclass, true, false, '')",
    'SELECT table_to_xml(\'"public"."vault"\', true, false, \'\')',
    "SELECT table_to_xml(' Public . VAULT ', true, false, '')",
    "SELECT table_to_xml_and_xmlschema('vault', true, false, '')",
    // The schema or the whole database: every table in it.
    "SELECT schema_to_xml('public', true, false, '')",
    "SELECT schema_to_xml_and_xmlschema('public', true, false, '')",
    "SELECT database_to_xml(true, false, '')",
    // A name Agate cannot read before it runs: any table.
    "SELECT table_to_xml(t, true, false, '') FROM (SELECT 'vault'::regclass) s(t)",
    `SELECT table_to_xml(${await ctx.agate.pg.psql("SELECT 'public.vault'::regclass::oid")}, true, false, '')`,
    // The planner's statistics hold sample values of every analysed column.
    "SELECT most_common_vals::text FROM pg_stats WHERE tablename = 'vault'",
    "SELECT stavalues1::text FROM pg_catalog.pg_statistic WHERE starelid = 'vault'::regclass",
  ]) {
    const r = await send(ctx, sql);
    assert.ok(!r.ok, `${sql}: ran, ${JSON.stringify(r)}`);
    assert.match(r.message, 'rule "vault-unread"', `${sql}: ${r.message}`);
    ctx.refusals += 1;
  }
  // Other tables, by name or by the same built-ins, still read.
  for (const sql of ["SELECT table_to_xml('people', true, false, '')", "SELECT table_to_xml('scratch', true, false, '')", 'SELECT name FROM people']) {
    const r = await send(ctx, sql);
    assert.ok(r.ok, `${sql}: ${JSON.stringify(r)}`);
  }
});

hostile('a built-in that moves a sequence writes it: a rule refusing writes of the sequence refuses the call', async (ctx) => {
  const before = await invoiceNo(ctx);
  assert.is(before, '100:false');
  await refused(ctx, 'ALTER SEQUENCE invoice_no RESTART 1', 'invoice-numbers-fixed');
  for (const sql of [
    "SELECT nextval('invoice_no')",
    "SELECT setval('public.invoice_no', 1)",
    "SELECT setval('invoice_no'::regclass, 5, false)",
    'SELECT nextval(\'"invoice_no"\')',
    "SELECT nextval(s) FROM (SELECT 'invoice_no'::regclass) x(s)",
    "INSERT INTO scratch VALUES (nextval('invoice_no'), 'n')",
    // A default the agent attaches runs later, by an INSERT that does not name it.
    "ALTER TABLE scratch ALTER COLUMN id SET DEFAULT nextval('invoice_no')",
  ]) {
    const r = await send(ctx, sql);
    assert.ok(!r.ok, `${sql}: ran, ${JSON.stringify(r)}`);
    // A sequence named by a value Agate cannot read is any relation: the first refusing table rule refuses it.
    assert.match(r.message, /rule "(invoice-numbers-fixed|people-read-only)"/, `${sql}: ${r.message}`);
    ctx.refusals += 1;
    assert.is(await invoiceNo(ctx), before, `${sql} moved the sequence`);
  }
  // Reading it moves nothing and runs.
  const r = await send(ctx, 'SELECT last_value FROM invoice_no');
  assert.ok(r.ok, JSON.stringify(r));
});

function describe(r: Reply): unknown {
  const { name, length: _length, ...rest } = r as Reply & Record<string, unknown>;
  return { name, ...Object.fromEntries(Object.entries(rest).map(([k, v]) => [k, Buffer.isBuffer(v) ? v.toString('latin1') : v])) };
}
const seen = (replies: readonly Reply[]) => JSON.stringify(replies.map(describe));

hostile('a message sent during COPY FROM STDIN is not run by the server: it cannot shift replies onto other statements', async (ctx) => {
  const masked = await RawClient.login(ctx.agate.host, ctx.agate.port, await ctx.agate.token({ masked: 'yes' }));
  const carrier = 'SELECT x FROM keyring, LATERAL (SELECT api_token) l(x)';
  try {
    // Read directly, the carrier is masked whole.
    masked.send(serialize.query(carrier));
    let replies = await masked.readyCount(1);
    assert.not.ok(seen(replies).includes(TOKEN), seen(replies));
    // The server takes a Query sent while it waits for COPY data as the COPY's protocol
    // violation: it never runs it. The replies of the next statement must not be taken as its.
    masked.send(serialize.query('COPY scratch FROM STDIN'));
    await masked.until((r) => r.name === 'copyInResponse' || r.name === 'error');
    masked.send(serialize.query('SELECT 1 AS x'), serialize.query(carrier), serialize.query('SELECT 2 AS x'));
    replies = await masked.until(() => false, 3000).catch(() => masked.take());
    assert.not.ok(seen(replies).includes(TOKEN), `the masked client saw ${seen(replies)}`);
  } finally {
    masked.close();
  }
});

hostile('a Sync the server ignores during COPY FROM STDIN cannot shift replies onto other statements', async (ctx) => {
  const carrier = 'SELECT x FROM keyring, LATERAL (SELECT api_token) l(x)';
  const rows = (replies: readonly Reply[]) => replies.filter((r) => r.name === 'dataRow').length;
  for (const { start, ready } of [
    // libpq's way: the Sync goes with the Execute, before any data; the server ignores a Sync
    // while it waits for COPY data, and the client sends another after CopyDone.
    { start: [serialize.parse({ text: 'COPY scratch FROM STDIN' }), serialize.bind({}), serialize.execute({}), serialize.sync()], ready: 1 },
    // A simple Query's COPY, with a Sync the server ignores the same way; the Query's end and the
    // Sync after CopyDone each get a ReadyForQuery.
    { start: [serialize.query('COPY scratch FROM STDIN'), serialize.sync()], ready: 2 },
  ]) {
    const masked = await RawClient.login(ctx.agate.host, ctx.agate.port, await ctx.agate.token({ masked: 'yes' }));
    try {
      masked.send(...start);
      await masked.until((r) => r.name === 'copyInResponse');
      masked.send(serialize.copyData(Buffer.from('7\tcopied\n')), serialize.copyDone(), serialize.sync());
      let replies = await masked.readyCount(ready);
      assert.ok(replies.some((r) => r.name === 'commandComplete' && r.text === 'COPY 1'), seen(replies));
      // An error answers the next Query; then the carrier, whose rows are masked whole.
      masked.send(serialize.query('SELECT 1/0 AS x'));
      replies = await masked.readyCount(1);
      assert.ok(replies.some((r) => r.name === 'error'), seen(replies));
      masked.send(serialize.query(carrier));
      replies = await masked.readyCount(1);
      assert.is(rows(replies), 1, seen(replies));
      assert.not.ok(seen(replies).includes(TOKEN), `the masked client saw ${seen(replies)}`);
    } finally {
      masked.close();
    }
  }
  // A Sync inside the data is honoured or not depending on where the COPY fails: the session ends.
  const masked = await RawClient.login(ctx.agate.host, ctx.agate.port, await ctx.agate.token({ masked: 'yes' }));
  try {
    masked.send(serialize.query('COPY scratch FROM STDIN'));
    await masked.until((r) => r.name === 'copyInResponse');
    masked.send(serialize.copyData(Buffer.from('8\tcopied\n')), serialize.sync(), serialize.copyDone(), serialize.query(carrier));
    const replies = await masked.until((r) => r.name === 'error' && (r as { severity?: string }).severity === 'FATAL');
    const fatal = replies.find((r) => r.name === 'error' && (r as { severity?: string }).severity === 'FATAL');
    assert.match(fatal?.message ?? '', /inside COPY data/);
    assert.not.ok(seen(replies).includes(TOKEN), `the masked client saw ${seen(replies)}`);
  } finally {
    masked.close();
  }
  assert.is(await ctx.agate.pg.psql("SELECT count(*) FROM scratch WHERE note = 'copied'"), '2');
  // The record: the two carriers after a COPY answered as themselves (the one after the Sync
  // inside data was never read; the earlier test's, sent inside the COPY, never ran).
  const events = await waitForEvents(ctx.agate, (ev) => ev.filter((e) => e.type === 'Response' && ev.some((c) => c.type === 'Command' && c.text === carrier && c.event_id === (e as Response).command_id)).length >= 4);
  const carriers = events.filter((e): e is Command => e.type === 'Command' && e.text === carrier);
  const status = (id: string) => events.find((e): e is Response => e.type === 'Response' && e.command_id === id);
  assert.equal(carriers.map((c) => [status(c.event_id)?.status, status(c.event_id)?.command_tag]), [['ok', 'SELECT 1'], ['skipped', null], ['ok', 'SELECT 1'], ['ok', 'SELECT 1']]);
});

hostile('a pipeline flushed without Sync, with a refused statement in its middle: the record names each statement and whether it ran', async (ctx) => {
  const raw = await RawClient.login(ctx.agate.host, ctx.agate.port, await ctx.agate.token());
  const marker = `pipe-${randomBytes(4).toString('hex')}`;
  const texts = [`SELECT '${marker}' AS a`, `DELETE FROM people WHERE name = '${marker}'`, `UPDATE scratch SET note = '${marker}' WHERE id = 1`];
  try {
    raw.send(...texts.flatMap((text) => [serialize.parse({ text }), serialize.bind({}), serialize.execute({})]), serialize.flush());
    // The Flush brings the first statement's row and the refusal, with no Sync.
    const replies = await raw.until((r) => r.name === 'error');
    assert.is(replies.filter((r) => r.name === 'dataRow').length, 1, seen(replies));
    assert.match(replies.find((r) => r.name === 'error')?.message ?? '', /rule "no-delete"/);
    ctx.refusals += 1;
    raw.send(serialize.sync());
    await raw.readyCount(1);
  } finally {
    raw.close();
  }
  const answered = (ev: AgateEvent[], text: string) => {
    const command = ev.find((c): c is Command => c.type === 'Command' && c.text === text);
    return command === undefined ? undefined : ev.find((r): r is Response => r.type === 'Response' && r.command_id === command.event_id);
  };
  const events = await waitForEvents(ctx.agate, (ev) => texts.every((t) => answered(ev, t) !== undefined));
  assert.equal(texts.map((t) => answered(events, t)!.status), ['ok', 'refused', 'skipped']);
  assert.is(await ctx.agate.pg.psql(`SELECT count(*) FROM scratch WHERE note = '${marker}'`), '0');
});

hostile('a Terminate in the middle of COPY FROM STDIN: nothing is copied, and the record does not say it was', async (ctx) => {
  const raw = await RawClient.login(ctx.agate.host, ctx.agate.port, await ctx.agate.token());
  const marker = `cut-${randomBytes(4).toString('hex')}`;
  const text = `COPY scratch (id, note) FROM STDIN /* ${marker} */`;
  raw.send(serialize.query(text));
  await raw.until((r) => r.name === 'copyInResponse');
  raw.sendAndLeave(serialize.copyData(Buffer.from(`9\t${marker}\n`)));
  const events = await waitForEvents(ctx.agate, (ev) => ev.some((c) => c.type === 'Command' && c.text === text && ev.some((r) => r.type === 'Response' && r.command_id === c.event_id)));
  const command = events.find((c): c is Command => c.type === 'Command' && c.text === text)!;
  const response = events.find((r): r is Response => r.type === 'Response' && r.command_id === command.event_id)!;
  assert.is.not(response.status, 'ok', JSON.stringify(response));
  assert.is(await ctx.agate.pg.psql(`SELECT count(*) FROM scratch WHERE note = '${marker}'`), '0');
});

hostile('pg_notify is NOTIFY by another name: a rule refusing NotifyStmt refuses it', async (ctx) => {
  const listener = await ctx.agate.client();
  const heard: string[] = [];
  listener.on('notification', (n) => heard.push(`${n.channel}:${n.payload ?? ''}`));
  await listener.query('LISTEN jobs');
  try {
    await refused(ctx, "NOTIFY jobs, 'run'", 'no-signals');
    for (const sql of ["SELECT pg_notify('jobs', 'run')", 'CREATE OPERATOR ### (leftarg = text, rightarg = text, function = pg_notify)', "SELECT pg_catalog.pg_notify(c, 'run') FROM (SELECT 'jobs') s(c)", "SELECT query_to_xml('SELECT pg_notify(''jobs'', ''run'')', true, false, '')"]) {
      const r = await send(ctx, sql);
      assert.ok(!r.ok, `${sql}: ran`);
      assert.match(r.message, 'rule "no-signals"', `${sql}: ${r.message}`);
      ctx.refusals += 1;
    }
    await listener.query('SELECT 1');
    assert.equal(heard, []);
  } finally {
    await listener.end();
  }
});

hostile('pgaudit: everything PostgreSQL executed was recorded as allowed; nothing refused ran', async (ctx) => {
  const { report } = await auditAgent(ctx);
  assert.ok(report.checked > 3, `pgaudit logged the attempts (${report.checked})`);
  assert.equal(report.unexplained, []);
  assert.equal(report.substituted, []);
  assert.equal(report.overrun, []);
  const refusedCount = ctx.agate.events().filter((e) => e.type === 'Response' && (e as { status?: string }).status === 'refused').length;
  assert.ok(refusedCount >= ctx.refusals, `${refusedCount} refusals recorded, ${ctx.refusals} expected`);
});

hostile.run();

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
import { auditAgent, refused, send, startHostile, stopHostile, type HostileCtx } from './pg-hostile-fixture.js';

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
`,
  });
  await ctx.agate.pg.psql(`CREATE SEQUENCE public.invoice_no START 100;
ALTER SEQUENCE public.invoice_no OWNER TO ${ctx.agate.pg.users.scram.user};
ANALYZE public.vault;`);
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

// A hostile agent with a valid token, seventh pass (pg-hostile.test.ts … -6 have the first six):
// through the real `agate start` in front of a PostgreSQL 15 that logs every statement it
// executes (pgaudit). Corners tried here: statements that policy counted only as writes of a
// table while they return or test its rows (`SELECT … FOR UPDATE`, `UPDATE … RETURNING`, `INSERT
// … ON CONFLICT DO UPDATE … RETURNING`, a view over it read later, an index or ALTER TABLE whose
// expression fails on a row and quotes it), and a table whose rows are handed elsewhere (joining
// a parent, attached as a partition, a trigger, rule or row security policy of its own). Witnesses: the replies on the wire, the database
// read directly, and pgaudit's log checked against the record.
import { suite } from '../harness/suite.js';
import * as assert from 'uvu/assert';
import { randomBytes } from 'node:crypto';
import { serialize } from 'pg-protocol';
import { untilQuiet } from './agate-fixture.js';
import { auditAgent, refused, send, startHostile, stopHostile, type HostileCtx } from './pg-hostile-fixture.js';
import { RawClient } from './raw-client.js';

const hostile = suite<HostileCtx>('a hostile agent against the PostgreSQL proxy, seventh pass');

/** The secret column's values: no detector knows their shape. */
const TOKEN = `tok${randomBytes(10).toString('hex')}`;
/** A secret the audit mask set's detectors know by its shape. */
const AWS_KEY = `AKIA${randomBytes(8).toString('hex').toUpperCase()}`;

hostile.before(async (ctx) => {
  await startHostile(ctx, {
    tokens: [TOKEN],
    extraRules: `    - id: vault-unread
      action: deny
      match: { claims: { masked: "no" }, sql: { tables_read: [vault] } }
`,
  });
});
hostile.after(stopHostile);

/** The plain agent (claim `masked: no`, which the refusing rule of this suite matches). */
async function plain(ctx: HostileCtx): Promise<void> {
  ctx.session ??= await ctx.agate.client({ masked: 'no' });
}

hostile('a statement that returns or tests the rows it changes reads them: a rule refusing reads of the table refuses it', async (ctx) => {
  await plain(ctx);
  await refused(ctx, 'SELECT * FROM vault', 'vault-unread');
  for (const sql of [
    // Row locks write the rows (they block writers) and return them.
    'SELECT * FROM vault FOR UPDATE',
    'SELECT api_token FROM vault FOR KEY SHARE',
    'SELECT 1 FROM scratch WHERE note IN (SELECT api_token FROM vault FOR SHARE)',
    // The rows changed come back, or the WHERE tests them.
    'UPDATE vault SET id = id WHERE id = 1 RETURNING api_token',
    "UPDATE vault SET id = id WHERE api_token LIKE 'tok%'",
    'WITH u AS (UPDATE vault SET id = id WHERE id = 1 RETURNING api_token) SELECT * FROM u',
    "INSERT INTO vault VALUES (1, 'x') ON CONFLICT (id) DO UPDATE SET id = excluded.id RETURNING api_token",
    'MERGE INTO vault v USING (VALUES (1)) s(id) ON v.id = s.id WHEN MATCHED AND v.api_token LIKE \'tok%\' THEN UPDATE SET id = v.id',
    // A view's query runs whenever the view is read, under a name no rule knows.
    'CREATE VIEW vault_copy AS SELECT * FROM vault',
    'CREATE VIEW scratch_plus AS SELECT s.*, (SELECT api_token FROM vault LIMIT 1) AS t FROM scratch s',
    // An expression evaluated on every row quotes the one it fails on.
    'CREATE INDEX ON vault ((api_token::int))',
    'ALTER TABLE vault ALTER COLUMN api_token TYPE int USING api_token::int',
    'ALTER TABLE vault ADD CONSTRAINT c1 CHECK (api_token::int > 0)',
  ]) {
    ctx.refusals += 1;
    const r = await send(ctx, sql);
    assert.ok(!r.ok && /rule "vault-unread"/.test(r.message), `${sql}: ${JSON.stringify(r)}`);
    assert.not.match(JSON.stringify(r), TOKEN, `${sql} returned the token`);
  }
  assert.is(await ctx.agate.pg.psql("SELECT count(*) FROM pg_class WHERE relname IN ('vault_copy', 'scratch_plus')"), '0');
  assert.is(await ctx.agate.pg.psql("SELECT count(*) FROM pg_indexes WHERE tablename = 'vault'"), '1');
  assert.is(await ctx.agate.pg.psql('SELECT api_token FROM public.vault WHERE id = 1'), TOKEN);
  // Writes that cannot look at the rows already there are still no reads.
  for (const sql of ["INSERT INTO vault VALUES (2, 'n') RETURNING id", 'ALTER TABLE vault SET (fillfactor = 90)', "COMMENT ON TABLE vault IS 'tokens'"]) {
    const r = await send(ctx, sql);
    assert.ok(r.ok, `${sql}: ${JSON.stringify(r)}`);
  }
});

hostile('a table joining a parent, attached as a partition, or handed to a trigger, rule or policy is read: its rows show under another name', async (ctx) => {
  await plain(ctx);
  for (const sql of [
    'CREATE TABLE vault_parent (id int, api_token text)',
    'CREATE TABLE vault_parts (id int, api_token text) PARTITION BY LIST (id)',
    // Stores the row it is handed: allowed, it writes only scratch.
    'CREATE FUNCTION keep_row() RETURNS trigger LANGUAGE plpgsql AS $$BEGIN INSERT INTO scratch VALUES (NEW.id, NEW.api_token); RETURN NEW; END$$',
    'CREATE FUNCTION keep(t text) RETURNS boolean LANGUAGE sql AS $$INSERT INTO scratch VALUES (0, t) RETURNING true$$',
  ]) {
    const r = await send(ctx, sql);
    assert.ok(r.ok, `${sql}: ${JSON.stringify(r)}`);
  }
  for (const sql of [
    'ALTER TABLE vault INHERIT vault_parent',
    'ALTER TABLE vault_parts ATTACH PARTITION vault FOR VALUES IN (1)',
    'CREATE TRIGGER keep_rows AFTER UPDATE ON vault FOR EACH ROW EXECUTE FUNCTION keep_row()',
    'CREATE RULE keep_rows AS ON UPDATE TO vault DO ALSO INSERT INTO scratch VALUES (old.id, old.api_token)',
    'CREATE POLICY keep_rows ON vault USING (keep(api_token))',
  ]) {
    ctx.refusals += 1;
    const r = await send(ctx, sql);
    assert.ok(!r.ok && /rule "vault-unread"/.test(r.message), `${sql}: ${JSON.stringify(r)}`);
  }
  // What the server itself shows: vault has no parent, trigger, rule or policy, and nothing was kept.
  assert.is(await ctx.agate.pg.psql("SELECT count(*) FROM pg_inherits WHERE inhrelid = 'public.vault'::regclass"), '0');
  assert.is(await ctx.agate.pg.psql("SELECT (SELECT count(*) FROM pg_trigger WHERE tgrelid = 'public.vault'::regclass) + (SELECT count(*) FROM pg_rules WHERE tablename = 'vault') + (SELECT count(*) FROM pg_policies WHERE tablename = 'vault')"), '0');
  assert.is(await ctx.agate.pg.psql(`SELECT count(*) FROM public.scratch WHERE note = '${TOKEN}'`), '0');
  assert.is(await ctx.agate.pg.psql("SELECT count(*) FROM public.vault_parent"), '0');
});

hostile('a secret bound as a binary parameter of a type Agate does not know is masked in the record, not kept as hex', async (ctx) => {
  const raw = await RawClient.login(ctx.agate.host, ctx.agate.port, await ctx.agate.token({ masked: 'no' }));
  try {
    // Parse leaves the type to the server ($1::text makes it text); pg-protocol sends a Buffer in binary format.
    for (const value of [Buffer.from(`deploy key ${AWS_KEY}`), Buffer.from(`\\x${Buffer.from(AWS_KEY).toString('hex')}`)]) {
      raw.send(serialize.parse({ text: 'SELECT length($1::text) AS n' }), serialize.bind({ values: [value] }), serialize.execute({}), serialize.sync());
      const replies = await raw.readyCount(1);
      assert.ok(replies.some((r) => r.name === 'commandComplete'), JSON.stringify(replies.map((r) => r.name)));
    }
  } finally {
    raw.close();
  }
  await untilQuiet(ctx.agate);
  const hex = Buffer.from(AWS_KEY).toString('hex');
  const commands = ctx.agate.events().filter((e) => e.type === 'Command' && (e as { text?: string }).text === 'SELECT length($1::text) AS n') as unknown as { parameters: (string | null)[] }[];
  assert.is(commands.length, 2);
  for (const c of commands) assert.ok(!JSON.stringify(c.parameters).includes(AWS_KEY) && !JSON.stringify(c.parameters).includes(hex), `recorded ${JSON.stringify(c.parameters)}`);
  const log = ctx.agate.busLog().toString('latin1');
  assert.ok(!log.includes(AWS_KEY) && !log.includes(hex), 'the bus log carries the secret');
});

hostile('pgaudit: everything PostgreSQL executed was recorded as allowed; nothing refused ran', async (ctx) => {
  const { entries, checked, report } = await auditAgent(ctx);
  assert.ok(report.checked >= 3, `pgaudit logged the attempts (${report.checked})`);
  assert.equal(report.unexplained, []);
  assert.equal(report.substituted, []);
  assert.equal(report.overrun, []);
  assert.equal(entries.filter((e) => checked(e) && /FOR (UPDATE|KEY SHARE|SHARE)|RETURNING api_token|vault_copy|scratch_plus|::int|INHERIT vault_parent|ATTACH PARTITION|keep_rows|keep\(api_token\)/i.test(e.statement)).map((e) => e.statement), []);
  const refusedCount = ctx.agate.events().filter((e) => e.type === 'Response' && (e as { status?: string }).status === 'refused').length;
  assert.ok(refusedCount >= ctx.refusals, `${refusedCount} refusals recorded, ${ctx.refusals} expected`);
});

hostile.run();

// End to end: policy decides by what a statement does, not how it is spelled. The real `agate
// start` in front of a real PostgreSQL, driven by the real psql: a deny on the effect class
// `destroy` refuses DROP OWNED BY CURRENT_USER and a DO block that EXECUTEs a DROP; SQL known only
// at run time is refused under `default: allow`; a deny on written tables refuses writes to them
// and lets reads through; pg_dump still works under such a policy. Each refused statement leaves
// the database as it was.
import { suite } from '../harness/suite.js';
import * as assert from 'uvu/assert';
import { join } from 'node:path';
import { DEFAULT_PG_BIN, startPostgres, type PostgresServer } from '../harness/postgres.js';
import { startOidcIssuer, type OidcIssuer } from '../harness/oidc-issuer.js';
import { run } from '../harness/proc.js';
import { agateConfig, cleanEnv, startAgateProcess, type AgateProcess, type CliResult } from './agate-process.js';
import { connectAgent } from '../harness/agent-client.js';

interface Ctx {
  pg: PostgresServer;
  oidc: OidcIssuer;
  agate: AgateProcess;
  token: string;
}
const facts = suite<Ctx>('agate start: policy on effect classes, bodies and written tables, through psql');

const POLICY = `policy:
  default: allow
  rules:
    - id: no-delete
      action: deny
      match: { sql: { statements: [DeleteStmt] } }
    - id: no-destroy
      action: deny
      message: destructive statements need a human
      match: { sql: { effects: [destroy] } }
    - id: people-read-only
      action: deny
      match: { sql: { tables_written: [people] } }
    - id: no-server-admin
      action: deny
      match: { sql: { effects: [admin, privilege] } }
`;

facts.before(async (ctx) => {
  ctx.pg = await startPostgres();
  ctx.oidc = await startOidcIssuer();
  ctx.agate = await startAgateProcess({ configYaml: agateConfig({ pg: ctx.pg, issuer: ctx.oidc, policy: POLICY }) });
  ctx.token = await ctx.oidc.mint(ctx.oidc.githubActionsClaims());
  // Owned by the role Agate logs in as, so DROP OWNED BY CURRENT_USER would drop them.
  await ctx.pg.psql("CREATE TABLE v (id int); INSERT INTO v VALUES (1); CREATE TABLE people (id int, name text); INSERT INTO people VALUES (1, 'ada')", 'scram');
});

facts.after(async (ctx) => {
  await ctx.agate?.dispose();
  await ctx.oidc?.close();
  await ctx.pg?.stop();
});

async function psql(ctx: Ctx, sql: string): Promise<CliResult> {
  const conninfo = `host=127.0.0.1 port=${ctx.agate.pgPort} dbname=appdb user=agent sslmode=disable`;
  const r = await run('/usr/bin/psql', ['-X', '-A', '-t', '-w', '-v', 'ON_ERROR_STOP=1', '-v', 'VERBOSITY=verbose', conninfo, '-c', sql], {
    env: cleanEnv({ PGPASSWORD: ctx.token, PGCONNECT_TIMEOUT: '10' }),
    timeoutMs: 30_000,
  });
  if (r.timedOut) throw new Error(`psql -c ${JSON.stringify(sql)} timed out: ${r.stderr}`);
  return { code: r.code, stdout: r.stdout, stderr: r.stderr };
}

/** Every table the test created still exists with its rows (read directly, not through Agate). */
async function intact(ctx: Ctx): Promise<void> {
  assert.is(await ctx.pg.psql("SELECT to_regclass('public.v') IS NOT NULL AND to_regclass('public.people') IS NOT NULL"), 't', 'a table was dropped');
  assert.is(await ctx.pg.psql('SELECT (SELECT count(*) FROM v) || \',\' || (SELECT count(*) FROM people)'), '1,1');
  assert.is(await ctx.pg.psql("SELECT count(*) FROM pg_attribute WHERE attrelid = 'people'::regclass AND attname = 'name' AND NOT attisdropped"), '1');
}

async function refused(ctx: Ctx, sql: string, rule: string): Promise<void> {
  const r = await psql(ctx, sql);
  assert.ok(r.code !== 0, `${sql}: psql exited ${r.code}: ${r.stdout}`);
  assert.match(r.stderr, `ERROR:  42501: Agate refused the statement by rule "${rule}"`);
  await intact(ctx);
}

facts('a deny on destroy refuses DROP OWNED BY CURRENT_USER', async (ctx) => {
  await refused(ctx, 'DROP OWNED BY CURRENT_USER', 'no-destroy');
});

facts("a deny on destroy refuses DO $$ … EXECUTE 'DROP TABLE v' … $$ and the other spellings", async (ctx) => {
  await refused(ctx, "DO $$ BEGIN EXECUTE 'DROP TABLE v'; END $$", 'no-destroy');
  await refused(ctx, "DO $$ BEGIN EXECUTE 'DROP ' || 'TABLE v'; END $$", 'no-destroy');
  await refused(ctx, 'ALTER TABLE people DROP COLUMN name', 'no-destroy');
  await refused(ctx, "CREATE FUNCTION wipe() RETURNS void LANGUAGE sql AS 'TRUNCATE v'", 'no-destroy');
  await refused(ctx, 'MERGE INTO v USING (SELECT 1 AS id) s ON v.id = s.id WHEN MATCHED THEN UPDATE SET id = 2 WHEN NOT MATCHED BY SOURCE THEN DELETE', 'no-delete');
  await refused(ctx, 'WITH d AS (DELETE FROM v WHERE id = 1 RETURNING 1) SELECT count(*) FROM d', 'no-delete');
  assert.is(await ctx.pg.psql("SELECT to_regproc('public.wipe') IS NULL"), 't', 'the function was created');
});

facts('extended protocol: MERGE … WHEN MATCHED THEN DELETE with a bound parameter meets the DeleteStmt deny', async (ctx) => {
  const client = await connectAgent({ port: ctx.agate.pgPort, token: ctx.token });
  try {
    const err = await client.query('MERGE INTO v USING (SELECT $1::int AS id) s ON v.id = s.id WHEN MATCHED THEN DELETE', [1]).then(
      () => undefined,
      (e: { code?: string; message: string }) => e,
    );
    assert.is(err?.code, '42501');
    assert.match(err?.message ?? '', 'rule "no-delete"');
    // The session stays usable, and the same shape without the DELETE action runs.
    const ok = await client.query('MERGE INTO v USING (SELECT $1::int AS id) s ON v.id = s.id WHEN MATCHED THEN DO NOTHING', [1]);
    assert.is(ok.command, 'MERGE');
  } finally {
    await client.end();
  }
  await intact(ctx);
});

facts('SQL known only at run time is refused under default allow', async (ctx) => {
  await refused(ctx, "DO $$ DECLARE t text := 'v'; BEGIN EXECUTE format('DROP TABLE %I', t); END $$", 'agate.unverifiable');
  // Control: a DO block whose EXECUTE is a constant the policy allows does run through the proxy.
  const r = await psql(ctx, "DO $$ BEGIN EXECUTE 'INSERT INTO v VALUES (2)'; END $$");
  assert.is(r.code, 0, r.stderr);
  assert.is(await ctx.pg.psql('SELECT count(*) FROM v'), '2');
  await ctx.pg.psql('DELETE FROM v WHERE id = 2', 'scram');
});

facts('a body Agate cannot parse is refused by agate.unparseable, never forwarded', async (ctx) => {
  await refused(ctx, 'DO $$ BEGIN DELET FROM v; END $$', 'agate.unparseable');
  await refused(ctx, "CREATE FUNCTION broken() RETURNS void LANGUAGE sql AS 'DROP TABL v'", 'agate.unparseable');
});

facts('a deny on written tables refuses writes to them and lets reads through', async (ctx) => {
  await refused(ctx, "UPDATE people SET name = 'x' WHERE id = 1", 'people-read-only');
  await refused(ctx, "INSERT INTO people VALUES (2, 'bob')", 'people-read-only');
  await refused(ctx, "COPY people FROM PROGRAM 'echo 3,eve' WITH (FORMAT csv)", 'people-read-only');
  const r = await psql(ctx, 'SELECT name FROM people');
  assert.is(r.code, 0, r.stderr);
  assert.is(r.stdout, 'ada\n');
});

facts('pg_dump runs through a policy that denies destroy, admin and privilege (its ACCESS SHARE locks are reads)', async (ctx) => {
  const r = await run(join(DEFAULT_PG_BIN, 'pg_dump'), ['-h', '127.0.0.1', '-p', String(ctx.agate.pgPort), '-U', 'agent', '-w', '-d', 'appdb', '--no-owner', '-t', 'people'], {
    env: cleanEnv({ PGPASSWORD: ctx.token, PGSSLMODE: 'disable', PGCONNECT_TIMEOUT: '10' }),
    timeoutMs: 60_000,
  });
  assert.is(r.code, 0, r.stderr);
  assert.match(r.stdout, 'CREATE TABLE public.people');
  assert.match(r.stdout, /COPY public\.people \(id, name\) FROM stdin;\n1\tada\n/);
});

facts.run();

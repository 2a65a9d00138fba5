// The independent oracle: an adversarial corpus through `agate start` (real psql, pg_dump,
// node-postgres and a raw protocol client) against a PostgreSQL 15 that logs, with pgaudit,
// every statement it executes. The suite asserts from the server log that everything PostgreSQL
// executed for Agate's sessions was recorded by Agate as allowed, and that nothing Agate recorded
// as denied ran. Add a case to CORPUS to widen it.
import { suite } from '../harness/suite.js';
import * as assert from 'uvu/assert';
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import pg from 'pg';
import { serialize } from 'pg-protocol';
import { initSqlParser } from '../../core/src/sql/analyze.js';
import { DEFAULT_PG_BIN } from '../harness/postgres.js';
import { run } from '../harness/proc.js';
import { untilTrue } from '../harness/until.js';
import { startAgate, untilQuiet, type AgateFixture } from './agate-fixture.js';
import { auditEntries, auditOracle, isCatalogLookup } from './pgaudit-log.js';
import { RawClient } from './raw-client.js';

const bin = (tool: string) => join(process.env.AGATE_PG_BIN ?? DEFAULT_PG_BIN, tool);
const SMUGGLE = "SELECT 'a\\' , '; DROP TABLE v; --'";

/**
 * One step of the corpus. `expect`: what the client sees — the statement ran, was refused (an
 * error, a refused login, a closed session), or either (a psql run mixing both).
 */
type Case = { name: string; expect: 'ran' | 'refused' | 'either' } & (
  | { client: 'psql'; args: string[]; env?: Record<string, string>; file?: Buffer }
  | { client: 'pg_dump' }
  /** On one node-postgres session kept across cases (a PREPARE lives in its session). */
  | { client: 'pg'; query: string | pg.QueryConfig }
  /** Raw protocol frames sent in one write; done after `readies` ReadyForQuery or a FATAL error. */
  | { client: 'raw'; frames: () => Buffer[]; readies: number }
  /** Edits the policy in the running Agate (the config file) and waits for the reload. */
  | { client: 'reload'; from: string; to: string }
);

const extended = (text: string) => [serialize.parse({ text }), serialize.bind({}), serialize.execute({})];

const CORPUS: Case[] = [
  // Ordinary traffic the oracle must account for.
  { name: 'multi-statement string', client: 'psql', args: ['-c', "SELECT 1; SELECT 'x'"], expect: 'ran' },
  { name: 'parameters, extended protocol', client: 'pg', query: { text: 'SELECT $1::int AS x', values: [5] }, expect: 'ran' },
  { name: 'DO block', client: 'pg', query: 'DO $$ BEGIN PERFORM count(*) FROM items; END $$', expect: 'ran' },
  { name: 'cursor', client: 'psql', args: ['-c', 'BEGIN', '-c', 'DECLARE c CURSOR FOR SELECT * FROM items', '-c', 'FETCH 2 FROM c', '-c', 'COMMIT'], expect: 'ran' },
  { name: 'COPY out', client: 'psql', args: ['-c', '\\copy items to stdout'], expect: 'ran' },
  { name: 'a denied DROP', client: 'pg', query: 'DROP TABLE v', expect: 'refused' },
  { name: 'backslash and non-ASCII text', client: 'pg', query: "SELECT E'a\\\\b' AS x, 'é✓' AS y, 'c:\\dir' AS z", expect: 'ran' },
  { name: 'pipeline with an error, then another Sync', client: 'raw', frames: () => [...extended('SELECT 1/0'), ...extended('SELECT 2'), serialize.sync(), ...extended('SELECT 3'), serialize.sync()], readies: 2, expect: 'refused' },
  { name: 'harmless SET and RESET ALL', client: 'pg', query: 'SET standard_conforming_strings = on; RESET ALL', expect: 'ran' },
  { name: 'an allowed startup option', client: 'psql', args: ['-c', 'SHOW geqo'], env: { PGOPTIONS: '-c geqo=off' }, expect: 'ran' },
  // Item 1: lexer smuggling.
  { name: 'PGOPTIONS standard_conforming_strings=off', client: 'psql', args: ['-c', SMUGGLE], env: { PGOPTIONS: '-c standard_conforming_strings=off' }, expect: 'refused' },
  { name: 'SET standard_conforming_strings = off, then the smuggle', client: 'psql', args: ['-c', 'SET standard_conforming_strings = off', '-c', SMUGGLE], expect: 'either' },
  { name: 'set_config in a SELECT', client: 'pg', query: "SELECT set_config('standard_conforming_strings', 'off', false)", expect: 'refused' },
  { name: 'SET NAMES SJIS', client: 'pg', query: "SET NAMES 'SJIS'", expect: 'refused' },
  {
    name: 'client_encoding SJIS with a quote hidden in a multibyte character', client: 'psql', args: ['-f', 'FILE'], env: { PGCLIENTENCODING: 'SJIS' },
    file: Buffer.concat([Buffer.from("SELECT E'"), Buffer.from([0x83, 0x5c]), Buffer.from("' , '; DROP TABLE v; --';\n")]), expect: 'refused',
  },
  { name: 'a function turns standard strings off, the smuggle pipelined behind', client: 'raw', frames: () => [serialize.query('SELECT public.strings_off()'), serialize.query(SMUGGLE)], readies: 2, expect: 'refused' },
  { name: 'UPDATE pg_settings, the smuggle pipelined behind', client: 'raw', frames: () => [serialize.query("UPDATE pg_settings SET setting = 'off' WHERE name = 'standard_conforming_strings'"), serialize.query(SMUGGLE)], readies: 2, expect: 'refused' },
  { name: 'extended batch: the smuggle after a statement that ran, before Sync', client: 'raw', frames: () => [...extended('SELECT public.strings_off()'), ...extended(SMUGGLE), serialize.sync()], readies: 1, expect: 'refused' },
  // Item 6: a PREPARE made before a reload.
  { name: 'PREPARE a DELETE while allowed', client: 'pg', query: 'PREPARE pd(int) AS DELETE FROM items WHERE id = $1', expect: 'ran' },
  { name: 'EXECUTE it while allowed', client: 'pg', query: 'EXECUTE pd(3)', expect: 'ran' },
  { name: 'reload: DELETE denied', client: 'reload', from: 'id: deletes\n      action: allow', to: 'id: deletes\n      action: deny', expect: 'ran' },
  { name: 'EXECUTE after the reload', client: 'pg', query: 'EXECUTE pd(1)', expect: 'refused' },
  { name: 'EXPLAIN ANALYZE EXECUTE after the reload', client: 'pg', query: 'EXPLAIN ANALYZE EXECUTE pd(2)', expect: 'refused' },
  { name: 'EXECUTE over the extended protocol', client: 'pg', query: { name: 'ext', text: 'EXECUTE pd(2)' }, expect: 'refused' },
  { name: 'EXECUTE of a name Agate never saw', client: 'pg', query: 'EXECUTE nosuch(1)', expect: 'refused' },
  { name: 'EXPLAIN ANALYZE DELETE after the reload', client: 'pg', query: 'EXPLAIN ANALYZE DELETE FROM items WHERE id = 1', expect: 'refused' },
  { name: 'DELETE in a CTE after the reload', client: 'pg', query: 'WITH d AS (DELETE FROM items WHERE id = 1 RETURNING *) SELECT * FROM d', expect: 'refused' },
  // Item 7: large objects over FunctionCall.
  { name: 'psql \\lo_import', client: 'psql', args: ['-c', '\\lo_import /etc/hostname'], expect: 'ran' },
  { name: 'pg_dump with a large object', client: 'pg_dump', expect: 'ran' },
];

interface Ctx { agate: AgateFixture; session?: pg.Client }
const oracle = suite<Ctx>('pgaudit oracle: what PostgreSQL executed is what Agate allowed');

oracle.before(async (ctx) => {
  await initSqlParser();
  ctx.agate = await startAgate({
    pgaudit: true,
    policyYaml: `policy:
  default: allow
  reload_ms: 100
  rules:
    - id: no-destructive-ddl
      action: deny
      match: { sql: { statements: [DropStmt, TruncateStmt] } }
    - id: deletes
      action: allow
      match: { sql: { statements: [DeleteStmt] } }
    # Reads that call a function made in the database (public.strings_off): stored code, allowed here.
    - id: stored-reads
      action: allow
      match: { sql: { effects: [read, stored] } }
`,
  });
  await ctx.agate.pg.psql(`CREATE TABLE public.v (id int); ALTER TABLE public.v OWNER TO ${ctx.agate.pg.users.scram.user};
CREATE FUNCTION public.strings_off() RETURNS text LANGUAGE plpgsql AS $$ BEGIN RETURN set_config('standard_conforming_strings', 'off', false); END $$;`);
});
oracle.after(async (ctx) => {
  await ctx.session?.end().catch(() => undefined);
  await ctx.agate?.cleanup();
});

async function runCase(ctx: Ctx, c: Case): Promise<'ran' | 'refused'> {
  const { agate } = ctx;
  switch (c.client) {
    case 'psql': {
      const args = c.args.map((a) => (a === 'FILE' ? join(agate.dir, 'case.sql') : a));
      if (c.file !== undefined) writeFileSync(join(agate.dir, 'case.sql'), c.file);
      const r = await run(bin('psql'), ['-X', '-w', ...args], { env: { ...(await agate.libpqEnv()), ...c.env }, timeoutMs: 30_000 });
      return r.code === 0 ? 'ran' : 'refused';
    }
    case 'pg_dump': {
      const r = await run(bin('pg_dump'), ['--no-owner', 'appdb'], { env: await agate.libpqEnv(), timeoutMs: 60_000 });
      return r.code === 0 && r.stdout.includes('lo_create') ? 'ran' : 'refused';
    }
    case 'pg': {
      ctx.session ??= await agate.client();
      return ctx.session.query(c.query as string).then(() => 'ran' as const, () => 'refused' as const);
    }
    case 'raw': {
      const client = await RawClient.login(agate.host, agate.port, await agate.token());
      try {
        client.send(...c.frames());
        const fatal = (r: { name: string }) => r.name === 'error' && (r as { severity?: string }).severity === 'FATAL';
        const replies = await client.until((r) => fatal(r) || client.replies.filter((x) => x.name === 'readyForQuery').length >= c.readies);
        return replies.some((r) => r.name === 'error') ? 'refused' : 'ran';
      } finally {
        client.close();
      }
    }
    case 'reload': {
      const path = join(agate.dir, 'agate.yaml');
      const reloads = () => agate.logs().split('policy reloaded').length;
      const before = reloads();
      writeFileSync(path, readFileSync(path, 'utf8').replace(c.from, c.to));
      await untilTrue('the policy to reload', () => reloads() !== before, 30_000);
      return 'ran';
    }
  }
}

oracle('every case behaves as expected for its client', async (ctx) => {
  // Every case runs even when one misbehaves, so the oracle below sees the whole corpus.
  const wrong: string[] = [];
  for (const c of CORPUS) {
    const outcome = await runCase(ctx, c);
    if (c.expect !== 'either' && outcome !== c.expect) wrong.push(`${c.name}: ${outcome}, expected ${c.expect}`);
  }
  assert.equal(wrong, []);
  assert.is(await ctx.agate.pg.psql("SELECT to_regclass('public.v') IS NOT NULL"), 't', 'no smuggled DROP ran');
  assert.is(await ctx.agate.pg.psql('SELECT string_agg(id::text, \',\' ORDER BY id) FROM items'), '1,2', 'only the DELETE allowed before the reload ran');
});

oracle('pgaudit: everything executed was allowed by Agate; nothing Agate denied ran', async (ctx) => {
  const { agate } = ctx;
  await ctx.session?.end();
  ctx.session = undefined;
  await untilQuiet(agate);
  const upstreamUser = agate.pg.users.scram.user;
  const entries = auditEntries(readFileSync(agate.pg.logFile, 'utf8'));
  // Agate's own catalog lookups (FunctionCall OIDs) are not client statements.
  const report = auditOracle(entries, agate.events(), (e) => e.user === upstreamUser && !isCatalogLookup(e));
  assert.ok(report.checked > 50, `pgaudit logged the corpus (${report.checked} statement groups)`);
  assert.equal(report.unexplained, [], 'executed by PostgreSQL but not recorded by Agate as allowed');
  assert.equal(report.overrun, [], 'ran more often than Agate allowed');
  assert.equal(report.substituted, [], 'an EXECUTE ran another statement than the PREPARE it was decided as');
});

oracle('the oracle itself catches a smuggled statement and a denied one that ran', () => {
  // A server that read the smuggle as two statements, and a DROP Agate denied: both must show.
  const log = [
    `app=psql user=u pid=1 LOG:  AUDIT: SESSION,1,1,READ,SELECT,,,"${SMUGGLE.replace(/"/g, '""')}",<none>`,
    `app=psql user=u pid=1 LOG:  AUDIT: SESSION,2,1,DDL,DROP TABLE,,,"${SMUGGLE.replace(/"/g, '""')}",<none>`,
    'app=psql user=u pid=2 LOG:  AUDIT: SESSION,1,1,DDL,DROP TABLE,,,DROP TABLE v,<none>',
  ].join('\n');
  const base = { time: 0, session_id: 's', proxy_id: 'p', sequence: 1, protocol: 'postgres' as const, target: 't', identity: { issuer: 'i', subject: 's', claims: {} }, parameters: [], attributes: {} };
  const verdict = (command_id: string, decision: 'allow' | 'deny') => ({ type: 'Verdict' as const, event_id: `v${command_id}`, time: 0, session_id: 's', command_id, decision, rule_id: null, reason: '', source: 'policy' as const, policy_revision: '', mask_set: null, approval_id: null, hold_expires_at: null });
  const events = [
    { ...base, type: 'Command' as const, event_id: 'c1', text: SMUGGLE }, verdict('c1', 'allow'),
    { ...base, type: 'Command' as const, event_id: 'c2', text: 'DROP TABLE v' }, verdict('c2', 'deny'),
  ];
  const report = auditOracle(auditEntries(log), events, () => true);
  assert.equal(report.unexplained, []);
  assert.equal(report.overrun, [`${SMUGGLE} ran 2×, allowed 1×`, 'DROP TABLE v ran 1×, allowed 0×']);
  // A statement no recorded text accounts for at all.
  const stray = auditOracle(auditEntries('app=psql user=u pid=3 LOG:  AUDIT: SESSION,1,1,WRITE,DELETE,,,DELETE FROM items,<none>'), events, () => true);
  assert.equal(stray.unexplained, ['DELETE: DELETE FROM items']);
  // An EXECUTE decided as one PREPARE while the server ran another statement under its name.
  const swapped = [
    'app=psql user=u pid=4 LOG:  AUDIT: SESSION,1,1,MISC,EXECUTE,,,EXECUTE ps,<none>',
    'app=psql user=u pid=4 LOG:  AUDIT: SESSION,1,2,WRITE,DELETE,,,DELETE FROM items RETURNING id,<none>',
    'app=psql user=u pid=5 LOG:  AUDIT: SESSION,1,1,MISC,EXECUTE,,,EXECUTE ok,<none>',
    'app=psql user=u pid=5 LOG:  AUDIT: SESSION,1,2,READ,SELECT,,,PREPARE ok AS SELECT 1,<none>',
  ].join('\n');
  const executes = [
    { ...base, type: 'Command' as const, event_id: 'c3', text: 'EXECUTE ps', attributes: { prepared_statements: 'PREPARE ps AS SELECT 1' } }, verdict('c3', 'allow'),
    { ...base, type: 'Command' as const, event_id: 'c4', text: 'EXECUTE ok', attributes: { prepared_statements: 'PREPARE ok AS SELECT 1' } }, verdict('c4', 'allow'),
  ];
  assert.equal(auditOracle(auditEntries(swapped), executes, () => true).substituted, ['EXECUTE ps ran DELETE: DELETE FROM items RETURNING id']);
});

oracle.run();

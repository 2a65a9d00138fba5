// The ground the hostile-agent suites stand on (pg-hostile.test.ts, pg-hostile-2.test.ts,
// pg-hostile-3.test.ts): one policy (a suite may bring its own), the same tables owned by the
// upstream role, a way to send SQL as the agent (plain or masked), the checks that a refused
// attempt was refused by the rule named and changed nothing, and pgaudit's log read against the record.
import * as assert from 'uvu/assert';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import type pg from 'pg';
import { initSqlParser } from '../../core/src/sql/analyze.js';
import { DEFAULT_PG_BIN } from '../harness/postgres.js';
import { startAgate, untilQuiet, type AgateFixture } from './agate-fixture.js';
import { auditEntries, auditOracle, isCatalogLookup, type AuditEntry, type OracleReport } from './pgaudit-log.js';

/** A PostgreSQL client tool (psql) from the harness's install. */
export const pgBin = (tool: string) => join(process.env.AGATE_PG_BIN ?? DEFAULT_PG_BIN, tool);

export interface HostileCtx {
  agate: AgateFixture;
  /** The plain agent's session, opened on first use. */
  session?: pg.Client;
  /** A session whose token carries `masked: yes` (mask_client applies), opened on first use. */
  masked?: pg.Client;
  /** How many attempts the tests expected Agate to refuse; the pgaudit test compares the record. */
  refusals: number;
}

interface HostileOptions {
  /** Values of vault.api_token, ids 1, 2, …; no detector knows their shape, only the column rule masks them. */
  tokens: string[];
  /** More rules (YAML list items at the rules' indent), decided before the masked-agents rule. */
  extraRules?: string;
  /** The whole policy section, in place of the shared one (`extraRules` is then not used). */
  policyYaml?: string;
  /** More config appended as it is (e.g. a `logins:` section). */
  extraYaml?: string;
  /** SQL run once the tables exist (rows a suite's tests count on). */
  moreSql?: string;
}

/** Deletes, writes of people and of public.ledger denied; `masked: yes` clients get masked answers. */
function hostilePolicy(extraRules: string): string {
  return `policy:
  default: allow
  rules:
    - id: no-delete
      action: deny
      match: { sql: { statements: [DeleteStmt, DropStmt, TruncateStmt] } }
    - id: people-read-only
      action: deny
      match: { sql: { tables_written: [people] } }
    - id: ledger-read-only
      action: deny
      match: { sql: { tables_written: [public.ledger] } }
${extraRules}    - id: masked-agents
      action: allow
      mask_client: true
      match: { claims: { masked: "yes" } }
`;
}

/** Starts Agate (with pgaudit) and creates people, ledger, vault, scratch and schema other. */
export async function startHostile(ctx: HostileCtx, options: HostileOptions): Promise<void> {
  await initSqlParser();
  ctx.refusals = 0;
  ctx.agate = await startAgate({ pgaudit: true, policyYaml: options.policyYaml ?? hostilePolicy(options.extraRules ?? ''), extraYaml: options.extraYaml });
  const owner = ctx.agate.pg.users.scram.user;
  const vault = options.tokens.map((t, i) => `(${i + 1}, '${t}')`).join(', ');
  await ctx.agate.pg.psql(`
CREATE TABLE public.people (id int PRIMARY KEY, name text);
CREATE TABLE public.ledger (id int PRIMARY KEY, amount int);
CREATE TABLE public.vault (id int PRIMARY KEY, api_token text);
CREATE TABLE public.scratch (id int, note text);
CREATE SCHEMA other;
INSERT INTO public.people VALUES (1, 'ada'), (2, 'bob');
INSERT INTO public.ledger VALUES (1, 100);
INSERT INTO public.vault VALUES ${vault};
ALTER TABLE public.people OWNER TO ${owner};
ALTER TABLE public.ledger OWNER TO ${owner};
ALTER TABLE public.vault OWNER TO ${owner};
ALTER TABLE public.scratch OWNER TO ${owner};
ALTER SCHEMA other OWNER TO ${owner};
${options.moreSql ?? ''}
`);
}

export async function stopHostile(ctx: HostileCtx): Promise<void> {
  await ctx.session?.end().catch(() => undefined);
  await ctx.masked?.end().catch(() => undefined);
  await ctx.agate?.cleanup();
}

type Outcome = { ok: true; rows: unknown[] } | { ok: false; code: string | undefined; message: string };

/** Runs `sql` as one Query through Agate; an error is an outcome, not a throw. */
export async function send(ctx: HostileCtx, sql: string, masked = false): Promise<Outcome> {
  const client = masked ? (ctx.masked ??= await ctx.agate.client({ masked: 'yes' })) : (ctx.session ??= await ctx.agate.client());
  // A Query of several statements answers with one result each.
  return client.query(sql).then(
    (r: pg.QueryResult | pg.QueryResult[]) => ({ ok: true as const, rows: Array.isArray(r) ? r.flatMap((x) => x.rows) : r.rows }),
    (e: Error & { code?: string }) => ({ ok: false as const, code: e.code, message: e.message }),
  );
}

/** People and ledger, read directly from PostgreSQL: same rows, same schema, no parent table. */
export async function intact(ctx: HostileCtx): Promise<void> {
  assert.is(await ctx.agate.pg.psql("SELECT string_agg(id || ':' || name, ',' ORDER BY id) FROM public.people"), '1:ada,2:bob', 'people was changed');
  assert.is(await ctx.agate.pg.psql("SELECT string_agg(id || ':' || amount, ',' ORDER BY id) FROM public.ledger"), '1:100', 'ledger was changed');
  assert.is(await ctx.agate.pg.psql("SELECT string_agg(nspname || '.' || relname, ',' ORDER BY relname) FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace WHERE relname IN ('people', 'ledger')"), 'public.ledger,public.people', 'a table moved');
  assert.is(await ctx.agate.pg.psql("SELECT count(*) FROM pg_inherits WHERE inhrelid IN ('public.people'::regclass, 'public.ledger'::regclass)"), '0', 'a table joined a parent');
}

/** `sql` from the plain agent is refused by `rule` (42501) and people and ledger stay intact. */
export async function refused(ctx: HostileCtx, sql: string, rule: string): Promise<void> {
  ctx.refusals += 1;
  const r = await send(ctx, sql);
  assert.ok(!r.ok, `${sql}: ran`);
  assert.is(r.code, '42501', `${sql}: ${r.message}`);
  assert.match(r.message, `rule "${rule}"`, `${sql}: ${r.message}`);
  await intact(ctx);
}

/**
 * Ends both sessions, waits until the logs settle, and checks pgaudit's log against Agate's record
 * for the agent's statements (those of the upstream role, Agate's own catalog lookups left out).
 */
export async function auditAgent(ctx: HostileCtx): Promise<{ entries: AuditEntry[]; checked: (e: AuditEntry) => boolean; report: OracleReport }> {
  const { agate } = ctx;
  await ctx.session?.end();
  await ctx.masked?.end();
  ctx.session = ctx.masked = undefined;
  await untilQuiet(agate);
  const entries = auditEntries(readFileSync(agate.pg.logFile, 'utf8'));
  const checked = (e: AuditEntry) => e.user === agate.pg.users.scram.user && !isCatalogLookup(e);
  return { entries, checked, report: auditOracle(entries, agate.events(), checked) };
}

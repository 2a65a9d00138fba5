import { AgateError, ErrorCode } from '../../../core/src/errors.js';
import type { QuerySqlConfig } from '../../../core/src/config.js';
import type { Store } from '../../../core/src/store/store.js';
import { ANALYST_VIEWS } from './schema.js';
import type { AnalystSandbox } from './sql/sandbox.js';
import { checkAst, checkCanonicalText } from './sql/guard.js';

/**
 * Read-only SQL for analysts, in the ClickHouse dialect, behind three layers; the first two are
 * independent, so either alone keeps an analyst inside the views.
 *
 * 1. The allow-list (`sql/guard.ts`): the engine's own parser prints the statement back as one
 *    canonical line (`formatQuerySingleLine`: one statement, comments gone) and as a tree
 *    (`EXPLAIN AST`, parse only, nothing runs); every function, table function and table in the
 *    tree must be on an allow-list, or the query is refused (`SQL_REFUSED`) naming what it used.
 *    The canonical line is what runs, so what was checked is what executes.
 * 2. Confinement of the engine. On the embedded engine every request runs in a fresh sandboxed
 *    process (sql/sandbox.ts): new user, mount, PID and network namespaces whose only files are
 *    system libraries, the engine and a copy-on-write view of the store, so a function the
 *    allow-list missed finds no key, environment, /proc or network to reach. (clickhouse-local
 *    does not confine the scalar `file()` to `user_files_path`; a ClickHouse server does, and
 *    there the server's own configuration is this layer.) The sandbox runs all three steps:
 *    the parse, the tree and the query.
 * 3. The engine's own limits, applied to that query alone: `readonly=1` (no writes, DDL,
 *    setting changes, or table functions that reach files, URLs, processes or remote servers),
 *    introspection functions off, and `max_execution_time`, `max_result_rows` with
 *    `result_overflow_mode=throw` and `max_memory_usage`.
 *
 * The settings are a SETTINGS clause on the statement rather than a `SET` (which would stick to a
 * session the ledger may share: `query.sql.sandbox: off`), on clickhouse-local and on a ClickHouse
 * server alike.
 */

interface SqlResult {
  rows: Record<string, unknown>[];
}

/** Where analyst statements run: a sandboxed worker, or the store itself. */
export interface AnalystEngine {
  query<T extends object>(sql: string, params?: Record<string, unknown>): Promise<T[]>;
}

/** Runs one analyst request through every layer; what the API's /v1/sql calls. */
export type AnalystSql = (text: string) => Promise<SqlResult>;

/** Analyst SQL on the store's own engine: a ClickHouse server, or `query.sql.sandbox: off`. */
export function unconfinedAnalystSql(store: Store, limits: QuerySqlConfig): AnalystSql {
  return (text) => runAnalystSql(store, text, limits);
}

/** Analyst SQL on the embedded engine, each request in its own sandbox (sql/sandbox.ts). */
export function sandboxedAnalystSql(sandbox: AnalystSandbox, limits: QuerySqlConfig): AnalystSql {
  return (text) => sandbox.run((engine) => runAnalystSql(engine, text, limits), limits.max_execution_time_s * 1000 + DEADLINE_MARGIN_MS);
}

/** Beyond max_execution_time: the parse, the tree, and sending the rows back. */
const DEADLINE_MARGIN_MS = 5000;

const MAX_SQL_BYTES = 64 * 1024;

/** The per-query settings, `readonly` last so that nothing after it can change a limit. */
function readOnlySettings(limits: QuerySqlConfig): [string, string | number][] {
  return [
    ['max_execution_time', limits.max_execution_time_s],
    ['timeout_overflow_mode', 'throw'],
    ['max_result_rows', limits.max_result_rows],
    ['result_overflow_mode', 'throw'],
    ['max_memory_usage', limits.max_memory_bytes],
    ['allow_introspection_functions', 0],
    ['readonly', 1],
  ];
}

export async function runAnalystSql(engine: AnalystEngine, text: string, limits: QuerySqlConfig): Promise<SqlResult> {
  const sql = text.trim().replace(/;\s*$/, '');
  if (sql.length === 0) throw new AgateError(ErrorCode.SQL_INVALID, 'the SQL text is empty');
  if (Buffer.byteLength(sql) > MAX_SQL_BYTES) throw new AgateError(ErrorCode.SQL_INVALID, `the SQL text is longer than ${MAX_SQL_BYTES} bytes`);
  if (sql.includes('\0')) throw new AgateError(ErrorCode.SQL_INVALID, 'the SQL text contains a NUL character');
  const canonical = await normalise(engine, sql);
  checkCanonicalText(canonical);
  checkAst(canonical, await explainAst(engine, canonical), { tables: ANALYST_TABLES });
  return runBounded(engine, canonical, limits);
}

/**
 * The engine layer alone: runs one statement with the per-query limits and readonly. Exported so
 * that a test can show what the engine refuses without the allow-list in front of it.
 */
export async function runBounded(engine: AnalystEngine, canonical: string, limits: QuerySqlConfig): Promise<SqlResult> {
  const settings = readOnlySettings(limits).map(([k, v]) => `${k} = ${typeof v === 'string' ? `'${v}'` : v}`).join(', ');
  // The newline ends a trailing `--` comment in text that did not come from the formatter.
  const bounded = `${canonical}\nSETTINGS ${settings}`;
  try {
    return { rows: await engine.query<Record<string, unknown>>(bounded, {}) };
  } catch (err) {
    throw translate(err, limits);
  }
}

const ANALYST_TABLES: ReadonlySet<string> = new Set(ANALYST_VIEWS.map((v) => `agate.${v}`));

/** One statement, as the engine's parser prints it back: comments stripped, literals canonical. */
async function normalise(engine: AnalystEngine, sql: string): Promise<string> {
  try {
    const [row] = await engine.query<{ q: string }>('SELECT formatQuerySingleLine({q:String}) AS q SETTINGS readonly = 1', { q: sql });
    return row?.q ?? '';
  } catch (err) {
    throw translate(err, undefined);
  }
}

/** The engine's parse tree of one canonical statement; EXPLAIN AST parses and runs nothing. */
async function explainAst(engine: AnalystEngine, canonical: string): Promise<string[]> {
  try {
    return (await engine.query<{ explain: string }>(`EXPLAIN AST ${canonical}`)).map((r) => r.explain);
  } catch (err) {
    throw translate(err, undefined);
  }
}

const READ_ONLY = 164; // READONLY
const LIMIT_CODES: Record<number, string> = {
  159: 'max_execution_time', // TIMEOUT_EXCEEDED
  396: 'max_result_rows', // TOO_MANY_ROWS_OR_BYTES
  241: 'max_memory_usage', // MEMORY_LIMIT_EXCEEDED
  158: 'max_result_rows', // TOO_MANY_ROWS
};

/**
 * The engine's first line, cut where it starts printing the query back (`in scope …`, which
 * ends in the SETTINGS Agate appends) or the expression it was evaluating (`while executing …`,
 * which may be a view's own, with its internal columns), then its error name.
 */
function engineMessage(line: string): string {
  const name = /\(([A-Z][A-Z0-9_]+)\)\s*$/.exec(line)?.[1];
  const said = line.replace(/^Code: \d+\. DB::Exception: /, '').replace(/(?:[:.]\s*|\s+)in scope .*$/is, '').replace(/:?\s*while executing .*$/is, '').replace(/\s*\([A-Z][A-Z0-9_]+\)\s*$/, '').replace(/\.$/, '');
  return `${said.slice(0, 400)}${name === undefined ? '' : ` (${name})`}`;
}

/** Engine errors become typed errors whose message is the engine's first line, without the query. */
function translate(err: unknown, limits: QuerySqlConfig | undefined): AgateError {
  const cause = (err as { cause?: unknown }).cause ?? err;
  const text = String((cause as Error).message ?? cause);
  const code = (cause as { clickhouseCode?: number }).clickhouseCode ?? Number(/Code: (\d+)/.exec(text)?.[1] ?? NaN);
  if (Number.isNaN(code)) return err instanceof AgateError ? err : new AgateError(ErrorCode.STORE_FAILED, 'the store failed', { cause });
  const engine = engineMessage(text.split('\n')[0]!);
  if (code === READ_ONLY) return new AgateError(ErrorCode.SQL_READ_ONLY, `the engine refused a write or a settings change: analyst SQL is read-only (${engine})`, { cause });
  const limit = LIMIT_CODES[code];
  if (limit !== undefined) {
    const value = limits === undefined ? '' : ` = ${{ max_execution_time: `${limits.max_execution_time_s} s`, max_result_rows: `${limits.max_result_rows} rows`, max_memory_usage: `${limits.max_memory_bytes} bytes` }[limit]}`;
    return new AgateError(ErrorCode.SQL_LIMIT_EXCEEDED, `the query was stopped at its limit ${limit}${value}: ${engine}`, { cause });
  }
  return new AgateError(ErrorCode.SQL_INVALID, `the engine refused the query: ${engine}`, { cause });
}

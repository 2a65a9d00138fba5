import { AgateError, ErrorCode } from '../../../core/src/errors.js';
import type { QuerySqlConfig } from '../../../core/src/config.js';
import type { Store } from '../../../core/src/store/store.js';

/**
 * Read-only SQL for analysts, in the ClickHouse dialect.
 *
 * The engine enforces read-only: every statement runs with `readonly=1` applied to that query
 * alone, after the limits (`max_execution_time`, `max_result_rows` with
 * `result_overflow_mode=throw`, `max_memory_usage`). readonly=1 also forbids changing any
 * setting inside the query and refuses table functions such as file() and url().
 *
 * The embedded engine shares one session with the ledger, so the settings are a SETTINGS clause
 * on the statement rather than a `SET` (which would stick to the session). On a ClickHouse server
 * the same settings travel as HTTP URL parameters (`serverSettingsQuery`).
 *
 * Before running, the engine's own parser normalises the text (one statement, comments gone) and
 * Agate refuses the few constructs that readonly=1 does not cover, each found by a test against
 * ClickHouse 26.x: a SETTINGS clause inside a subquery overrides the query's readonly=1; INTO
 * OUTFILE writes on the client side; KILL QUERY runs in readonly mode; SET and USE would change
 * the shared session; inline INSERT data would swallow the appended SETTINGS clause.
 */

export interface SqlResult {
  rows: Record<string, unknown>[];
}

const MAX_SQL_BYTES = 64 * 1024;

/** The per-query settings, `readonly` last so that nothing after it can change a limit. */
export function readOnlySettings(limits: QuerySqlConfig): [string, string | number][] {
  return [
    ['max_execution_time', limits.max_execution_time_s],
    ['timeout_overflow_mode', 'throw'],
    ['max_result_rows', limits.max_result_rows],
    ['result_overflow_mode', 'throw'],
    ['max_memory_usage', limits.max_memory_bytes],
    ['readonly', 1],
  ];
}

/** The settings as URL query parameters, for the HTTP interface of a ClickHouse server. */
export function serverSettingsQuery(limits: QuerySqlConfig): URLSearchParams {
  return new URLSearchParams(readOnlySettings(limits).map(([k, v]) => [k, String(v)]));
}

export async function runAnalystSql(store: Store, text: string, limits: QuerySqlConfig): Promise<SqlResult> {
  const sql = text.trim().replace(/;\s*$/, '');
  if (sql.length === 0) throw new AgateError(ErrorCode.SQL_INVALID, 'the SQL text is empty');
  if (Buffer.byteLength(sql) > MAX_SQL_BYTES) throw new AgateError(ErrorCode.SQL_INVALID, `the SQL text is longer than ${MAX_SQL_BYTES} bytes`);
  if (sql.includes('\0')) throw new AgateError(ErrorCode.SQL_INVALID, 'the SQL text contains a NUL character');
  const canonical = await normalise(store, sql);
  refuseUncovered(canonical);
  const settings = readOnlySettings(limits).map(([k, v]) => `${k} = ${typeof v === 'string' ? `'${v}'` : v}`).join(', ');
  // The newline ends a trailing `--` comment; the statement is known to be complete.
  const bounded = `${sql}\nSETTINGS ${settings}`;
  try {
    return { rows: await store.query<Record<string, unknown>>(bounded, {}) };
  } catch (err) {
    throw translate(err, limits);
  }
}

/** One statement, as the engine's parser prints it back: comments stripped, literals canonical. */
async function normalise(store: Store, sql: string): Promise<string> {
  try {
    const [row] = await store.query<{ q: string }>('SELECT formatQuerySingleLine({q:String}) AS q SETTINGS readonly = 1', { q: sql });
    return row?.q ?? '';
  } catch (err) {
    throw translate(err, undefined);
  }
}

/** Words of the statement outside string literals and quoted identifiers, upper-cased. */
export function keywords(canonical: string): string[] {
  const words: string[] = [];
  let i = 0;
  while (i < canonical.length) {
    const c = canonical[i]!;
    if (c === "'" || c === '"' || c === '`') {
      i++;
      while (i < canonical.length && canonical[i] !== c) i += canonical[i] === '\\' ? 2 : 1;
      i++;
      words.push('?'); // a literal or quoted name: never a keyword
    } else if (/[A-Za-z_]/.test(c)) {
      const m = /^[A-Za-z_][A-Za-z0-9_]*/.exec(canonical.slice(i))!;
      words.push(m[0].toUpperCase());
      i += m[0].length;
    } else {
      if (c === '(') words.push('(');
      i++;
    }
  }
  return words;
}

function refuseUncovered(canonical: string): void {
  const w = keywords(canonical);
  const refuse = (what: string) => {
    throw new AgateError(ErrorCode.SQL_REFUSED, `${what} is not allowed in analyst SQL (queries run read-only with fixed limits)`);
  };
  const first = w[0] ?? '';
  if (first === 'SET' || first === 'USE' || first === 'KILL' || first === 'SYSTEM') refuse(first);
  if (first === 'INSERT' && /\bFORMAT\s+\w+$/i.test(canonical)) {
    throw new AgateError(ErrorCode.SQL_READ_ONLY, 'INSERT is not allowed: analyst SQL is read-only');
  }
  for (let i = 0; i < w.length; i++) {
    if (w[i] === 'SETTINGS' && w[i + 1] !== '(') refuse('a SETTINGS clause');
    if (w[i] === 'INTO' && w[i + 1] === 'OUTFILE') refuse('INTO OUTFILE');
    if (w[i] === 'FORMAT' && w[i + 1] !== '(' && first !== 'INSERT') refuse('a FORMAT clause (ask for json, ndjson or csv instead)');
  }
}

const READ_ONLY = 164; // READONLY
const LIMIT_CODES: Record<number, string> = {
  159: 'max_execution_time', // TIMEOUT_EXCEEDED
  396: 'max_result_rows', // TOO_MANY_ROWS_OR_BYTES
  241: 'max_memory_usage', // MEMORY_LIMIT_EXCEEDED
  158: 'max_result_rows', // TOO_MANY_ROWS
};

/** Engine errors become typed errors whose message is the engine's first line, without the query. */
function translate(err: unknown, limits: QuerySqlConfig | undefined): AgateError {
  const cause = (err as { cause?: unknown }).cause ?? err;
  const text = String((cause as Error).message ?? cause);
  const code = (cause as { clickhouseCode?: number }).clickhouseCode ?? Number(/Code: (\d+)/.exec(text)?.[1] ?? NaN);
  if (Number.isNaN(code)) return err instanceof AgateError ? err : new AgateError(ErrorCode.STORE_FAILED, 'the store failed', { cause });
  const engine = text.split('\n')[0]!.replace(/^Code: \d+\. DB::Exception: /, '').replace(/: In scope .*$/, '').slice(0, 400);
  if (code === READ_ONLY) return new AgateError(ErrorCode.SQL_READ_ONLY, `the engine refused a write or a settings change: analyst SQL is read-only (${engine})`, { cause });
  const limit = LIMIT_CODES[code];
  if (limit !== undefined) {
    const value = limits === undefined ? '' : ` = ${{ max_execution_time: `${limits.max_execution_time_s} s`, max_result_rows: `${limits.max_result_rows} rows`, max_memory_usage: `${limits.max_memory_bytes} bytes` }[limit]}`;
    return new AgateError(ErrorCode.SQL_LIMIT_EXCEEDED, `the query was stopped at its limit ${limit}${value}: ${engine}`, { cause });
  }
  return new AgateError(ErrorCode.SQL_INVALID, `the engine refused the query: ${engine}`, { cause });
}

import { loadModule, parseSync } from 'libpg-query';

/** One statement of a SQL string, as PostgreSQL's own parser sees it. */
export interface SqlStatement {
  /** The statement's source text, without the separating semicolon. */
  text: string;
  /** The parse-node name, e.g. `SelectStmt`, `DropStmt`, `TruncateStmt`. */
  kind: string;
  node: Record<string, unknown>;
}

export type SqlAnalysis = { ok: true; statements: SqlStatement[] } | { ok: false; error: string };

let loaded: Promise<void> | undefined;

/** Loads the WASM parser; call once before `analyzeSql`. */
export function initSqlParser(): Promise<void> {
  loaded ??= loadModule();
  return loaded;
}

/**
 * Splits and classifies SQL with the real PostgreSQL parser (libpg-query), so statement kinds
 * cannot be disguised with comments, case or whitespace the way substring rules can.
 */
export function analyzeSql(sql: string): SqlAnalysis {
  let result: { stmts?: { stmt: Record<string, unknown>; stmt_location?: number; stmt_len?: number }[] };
  try {
    result = parseSync(sql) as typeof result;
  } catch (err) {
    return { ok: false, error: err instanceof Error ? err.message : String(err) };
  }
  // Parser locations are byte offsets into the UTF-8 text.
  const bytes = Buffer.from(sql, 'utf8');
  const statements = (result.stmts ?? []).map((s) => {
    const start = s.stmt_location ?? 0;
    const end = s.stmt_len === undefined || s.stmt_len === 0 ? bytes.length : start + s.stmt_len;
    const kind = Object.keys(s.stmt)[0] ?? 'Unknown';
    return { text: bytes.subarray(start, end).toString('utf8').trim(), kind, node: s.stmt };
  });
  return { ok: true, statements };
}

/**
 * A bounded cache in front of {@link analyzeSql}: prepared statements and ORM traffic repeat the
 * same text thousands of times, and parsing is the policy's most expensive step. Least recently
 * used entries are evicted past `capacity`; texts longer than `maxTextLength` are not kept.
 */
export class SqlAnalysisCache {
  readonly #entries = new Map<string, SqlAnalysis>();

  constructor(private readonly capacity = 4096, private readonly maxTextLength = 8192) {}

  analyze(sql: string): SqlAnalysis {
    const hit = this.#entries.get(sql);
    if (hit !== undefined) {
      // Map iteration order is insertion order: re-inserting marks the entry most recent.
      this.#entries.delete(sql);
      this.#entries.set(sql, hit);
      return hit;
    }
    const analysis = analyzeSql(sql);
    if (sql.length <= this.maxTextLength) {
      this.#entries.set(sql, analysis);
      if (this.#entries.size > this.capacity) this.#entries.delete(this.#entries.keys().next().value!);
    }
    return analysis;
  }

  get size(): number {
    return this.#entries.size;
  }
}

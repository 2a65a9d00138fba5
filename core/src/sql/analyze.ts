import { loadModule, parseSync } from 'libpg-query';
import { BoundedLru } from '../bounded-lru.js';
import { sqlShape } from './shape.js';

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
  readonly #entries: BoundedLru<string, SqlAnalysis>;
  readonly #maxTextLength: number;

  constructor(capacity = 4096, maxTextLength = 8192) {
    this.#entries = new BoundedLru(capacity);
    this.#maxTextLength = maxTextLength;
  }

  analyze(sql: string): SqlAnalysis {
    return this.#entries.get(sql) ?? this.#keep(sql, analyzeSql(sql));
  }

  /**
   * For callers that read only the structure of the parse (statement kinds, relations, clauses:
   * the policy's facts): texts with the same {@link sqlShape} share one analysis, that of the
   * shape, so a statement repeated with new numbers is parsed once. Its statements' `text` and
   * numeric values are the shape's, not the caller's. A shape that does not parse is never
   * used: the caller's own text is analysed, so a syntax error names what the client sent.
   */
  analyzeShape(sql: string): SqlAnalysis {
    const shape = sqlShape(sql);
    if (shape === undefined || shape === sql) return this.analyze(sql);
    const known = this.#entries.get(shape);
    if (known !== undefined) return known.ok ? known : this.analyze(sql);
    const analysis = this.#keep(shape, analyzeSql(shape));
    return analysis.ok ? analysis : this.analyze(sql);
  }

  #keep(key: string, analysis: SqlAnalysis): SqlAnalysis {
    if (key.length <= this.#maxTextLength) this.#entries.set(key, analysis);
    return analysis;
  }

  get size(): number {
    return this.#entries.size;
  }
}

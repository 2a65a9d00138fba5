import type { SqlStatement } from '../../../core/src/sql/analyze.js';

/** What a policy rule can match on in one top-level SQL statement, nested statements included. */
export interface SqlFacts {
  /** The top-level parse-node name and every statement node nested in it (CTEs, EXPLAIN, PREPARE). */
  kinds: ReadonlySet<string>;
  /** Relations named anywhere in the statement, as `name` and, when qualified, `schema.name`. */
  tables: readonly { name: string; qualified: string | undefined }[];
  /** An UPDATE or DELETE somewhere in it has no WHERE clause. */
  unboundedWrite: boolean;
}

const facts = new WeakMap<SqlStatement, SqlFacts>();

/**
 * Facts of a parsed statement, computed once per parse tree (the analysis cache hands back the
 * same objects for a repeated text). The walk sees through wrappers an agent could use to hide a
 * write: `WITH d AS (DELETE …) SELECT`, `EXPLAIN ANALYZE DELETE …`, `PREPARE p AS DELETE …`.
 */
export function sqlFacts(statement: SqlStatement): SqlFacts {
  let f = facts.get(statement);
  if (f === undefined) {
    f = collect(statement);
    facts.set(statement, f);
  }
  return f;
}

function collect(statement: SqlStatement): SqlFacts {
  const kinds = new Set<string>([statement.kind]);
  const tables: { name: string; qualified: string | undefined }[] = [];
  let unboundedWrite = false;
  const visit = (value: unknown, depth: number): void => {
    // Parse trees of real statements are shallow; the bound keeps a hostile one from recursing deep.
    if (depth > 200 || value === null || typeof value !== 'object') return;
    if (Array.isArray(value)) {
      for (const v of value) visit(v, depth + 1);
      return;
    }
    for (const [key, child] of Object.entries(value as Record<string, unknown>)) {
      if (key.endsWith('Stmt') && child !== null && typeof child === 'object' && !Array.isArray(child)) {
        kinds.add(key);
        if ((key === 'UpdateStmt' || key === 'DeleteStmt') && (child as Record<string, unknown>).whereClause === undefined) unboundedWrite = true;
      }
      if (key === 'RangeVar' && child !== null && typeof child === 'object') {
        const rv = child as { relname?: string; schemaname?: string };
        if (rv.relname !== undefined) tables.push({ name: rv.relname, qualified: rv.schemaname === undefined ? undefined : `${rv.schemaname}.${rv.relname}` });
      }
      visit(child, depth + 1);
    }
  };
  visit(statement.node, 0);
  return { kinds, tables, unboundedWrite };
}

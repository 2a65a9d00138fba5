import type { SqlAnalysis, SqlStatement } from './analyze.js';

/** The attribute of a command that executes SQL-level prepared statements: their PREPARE texts. */
export const PREPARED_ATTRIBUTE = 'prepared_statements';

/** Separates PREPARE texts in {@link PREPARED_ATTRIBUTE}: each is a whole statement. */
export const PREPARED_SEPARATOR = ';\n';

const bodies = new WeakMap<SqlStatement, SqlStatement>();

/**
 * The statements a list of `PREPARE name AS <statement>` texts prepares, as statements of their
 * own, so `EXECUTE name` can be decided as what it runs. Undefined when the texts do not parse
 * or hold anything but PREPARE (the proxy records only PREPAREs there). The same analysis
 * object (from a cache) gives the same statement objects, so facts computed on them are kept.
 */
export function preparedBodies(analysis: SqlAnalysis): SqlStatement[] | undefined {
  if (!analysis.ok) return undefined;
  const out: SqlStatement[] = [];
  for (const s of analysis.statements) {
    const query = (s.node.PrepareStmt as { query?: Record<string, unknown> } | undefined)?.query;
    if (s.kind !== 'PrepareStmt' || query === undefined) return undefined;
    let body = bodies.get(s);
    if (body === undefined) {
      body = { text: s.text, kind: Object.keys(query)[0] ?? 'Unknown', node: query };
      bodies.set(s, body);
    }
    out.push(body);
  }
  return out;
}

import { AgateError, ErrorCode } from '../../../../core/src/errors.js';

/**
 * One node of the tree ClickHouse prints for `EXPLAIN AST`: one line per node, indented one
 * space per level, `Type [name] [(alias a)] [(children n)]`.
 *
 * The printout shows string literals escaped but identifiers raw, so an identifier holding a
 * newline could print lines that look like nodes; `quotedIdentifiers` lets the caller refuse
 * those before this parser ever sees them.
 */
export interface AstNode {
  type: string;
  /** What follows the type: a function's or table's name, a literal's value. */
  text: string;
  children: AstNode[];
}

const LINE = /^( *)([A-Za-z_][A-Za-z0-9_]*(?:::[A-Za-z_][A-Za-z0-9_]*)?)(?: (.*?))?(?: \(children \d+\))?$/;

export function parseAst(lines: readonly string[]): AstNode {
  const root: AstNode = { type: '', text: '', children: [] };
  const stack: { depth: number; node: AstNode }[] = [{ depth: -1, node: root }];
  for (const line of lines) {
    if (line.length === 0) continue;
    const m = LINE.exec(line);
    if (m === null) throw new AgateError(ErrorCode.SQL_REFUSED, 'the engine printed a query tree Agate cannot read; the query is refused');
    const depth = m[1]!.length;
    // A child is exactly one level deeper than its parent.
    while (stack.length > 0 && stack[stack.length - 1]!.depth >= depth) stack.pop();
    const parent = stack[stack.length - 1];
    if (parent === undefined || depth !== parent.depth + 1) throw new AgateError(ErrorCode.SQL_REFUSED, 'the engine printed a query tree Agate cannot read; the query is refused');
    const node: AstNode = { type: m[2]!, text: m[3] ?? '', children: [] };
    parent.node.children.push(node);
    stack.push({ depth, node });
  }
  if (root.children.length !== 1) throw new AgateError(ErrorCode.SQL_REFUSED, 'analyst SQL is one SELECT statement');
  return root.children[0]!;
}

/** A node's name without its `(alias …)`. */
export function nameOf(node: AstNode): string {
  return node.text.replace(/ \(alias .*\)$/, '');
}

/** The contents of every backquoted or double-quoted identifier in SQL text, skipping string literals. */
export function quotedIdentifiers(sql: string): string[] {
  const out: string[] = [];
  let i = 0;
  while (i < sql.length) {
    const c = sql[i]!;
    if (c === "'" || c === '`' || c === '"') {
      let j = i + 1;
      while (j < sql.length && sql[j] !== c) j += sql[j] === '\\' ? 2 : 1;
      if (c !== "'") out.push(sql.slice(i + 1, j));
      i = j + 1;
    } else {
      i++;
    }
  }
  return out;
}

/** The text with every string literal emptied, so that what a literal holds cannot declare a name. */
function blankStrings(canonical: string): string {
  return canonical.replace(/'(?:[^'\\]|\\.)*'/g, "''");
}

/**
 * Names a WINDOW clause declares (`WINDOW w AS (…), w2 AS (…)`), from the engine's canonical text.
 * They look like common table expressions to `cteNames`, and the tree prints neither, so a
 * window named like a real table would pass as a CTE (`SELECT * FROM ledger WINDOW ledger AS ()`).
 * A word `WINDOW` that is not the clause only adds names, which only refuses more.
 */
export function windowNames(canonical: string): Set<string> {
  const names = new Set<string>();
  const text = blankStrings(canonical);
  const item = /\s*(`[^`]*`|[A-Za-z_][A-Za-z0-9_]*) AS \(/y;
  for (const m of text.matchAll(/\bWINDOW\b/gi)) {
    let at = m.index + m[0].length;
    for (;;) {
      item.lastIndex = at;
      const found = item.exec(text);
      if (found === null) break;
      names.add(found[1]!.replace(/^`|`$/g, ''));
      // Past the definition's balanced parentheses, then on if a comma starts the next one.
      let depth = 0;
      let i = item.lastIndex - 1;
      for (; i < text.length; i++) {
        if (text[i] === '(') depth++;
        else if (text[i] === ')' && --depth === 0) break;
      }
      const next = /^\s*,/.exec(text.slice(i + 1));
      if (next === null) break;
      at = i + 1 + next[0].length;
    }
  }
  return names;
}

/** Names declared as common table expressions (`WITH name AS (SELECT …)`), from the engine's canonical text. */
export function cteNames(canonical: string): Set<string> {
  const names = new Set<string>();
  const blanked = blankStrings(canonical);
  for (const m of blanked.matchAll(/(?:^|[\s,(])(`[^`]*`|[A-Za-z_][A-Za-z0-9_]*) AS \(/g)) names.add(m[1]!.replace(/^`|`$/g, ''));
  return names;
}

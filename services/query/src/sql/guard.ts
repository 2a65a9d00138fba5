import { AgateError, ErrorCode } from '../../../../core/src/errors.js';
import { isAllowedFunction, isAllowedTableFunction } from './allowed-functions.js';
import { cteNames, nameOf, parseAst, quotedIdentifiers, type AstNode } from './ast.js';

/**
 * The allow-list check on the engine's own parse of an analyst query (`EXPLAIN AST` of the text
 * `formatQuerySingleLine` printed back): one SELECT (UNION / INTERSECT / EXCEPT of SELECTs), every
 * function and table function on the allow-list, every table an analyst view in `agate` or a
 * common table expression of the query, and none of SETTINGS, FORMAT, INTO OUTFILE, APPLY or
 * query parameters. Node types not known to be harmless are refused, so a construct a newer
 * engine adds is refused until someone looks at it.
 */
export interface GuardOptions {
  /** Tables analysts may read, e.g. `agate.sessions`. */
  tables: ReadonlySet<string>;
}

const PLAIN_NODES = new Set([
  'SelectWithUnionQuery', 'SelectIntersectExceptQuery', 'SelectQuery', 'ExpressionList', 'Literal', 'Identifier',
  'Asterisk', 'QualifiedAsterisk', 'ColumnsRegexpMatcher', 'ColumnsListMatcher', 'QualifiedColumnsRegexpMatcher',
  'QualifiedColumnsListMatcher', 'ColumnsTransformerList', 'ColumnsExceptTransformer', 'ColumnsReplaceTransformer',
  'ColumnsReplaceTransformer::Replacement', 'TablesInSelectQuery', 'TablesInSelectQueryElement', 'TableExpression',
  'TableJoin', 'Subquery', 'WithElement', 'OrderByElement', 'WindowDefinition', 'WindowListElement', 'ArrayJoin',
  'SampleRatio', 'InterpolateElement', 'Function', 'TableIdentifier',
]);

const NAMED_REFUSALS: Record<string, string> = {
  Set: 'a SETTINGS clause',
  ColumnsApplyTransformer: 'APPLY (the function it calls is not visible to the check)',
  QueryParameter: 'a query parameter',
};

// `x IN name` reads the table `name`.
const IN_FUNCTIONS = new Set(['in', 'notin', 'nullin', 'notnullin']);

/** Words an analyst may put in a backquoted or double-quoted identifier. */
const SAFE_QUOTED = /^[A-Za-z0-9_ $-]*$/;

export function refuse(what: string): never {
  throw new AgateError(ErrorCode.SQL_REFUSED, `${what} is not allowed in analyst SQL`);
}

/** Refuses what the text alone shows, before the tree is asked for. */
export function checkCanonicalText(canonical: string): void {
  for (const q of quotedIdentifiers(canonical)) {
    if (!SAFE_QUOTED.test(q)) refuse(`the quoted identifier \`${q.slice(0, 40).replace(/[^\x20-\x7e]/g, '?')}\` (quoted names may hold letters, digits, space, _, $ and -)`);
  }
}

export function checkAst(canonical: string, explain: readonly string[], options: GuardOptions): void {
  const root = parseAst(explain);
  if (root.type !== 'SelectWithUnionQuery') refuse(`the statement ${root.type.replace(/Query$/, '') || 'given'} (analyst SQL is one SELECT)`);
  const ctes = cteNames(canonical);
  const table = (name: string): void => {
    if (options.tables.has(name)) return;
    if (!name.includes('.') && ctes.has(name)) return;
    refuse(`the table ${name} (analyst SQL reads ${[...options.tables].sort().join(', ')})`);
  };
  visit(root, undefined, table);
}

function visit(node: AstNode, parent: AstNode | undefined, table: (name: string) => void): void {
  const named = NAMED_REFUSALS[node.type];
  if (named !== undefined) refuse(named);
  if (!PLAIN_NODES.has(node.type)) refuse(`the construct ${node.type}`);
  switch (node.type) {
    case 'SelectWithUnionQuery':
      // Children after the list of selects are INTO OUTFILE's file name and FORMAT's format.
      if (node.children.length !== 1 || node.children[0]!.type !== 'ExpressionList') refuse('INTO OUTFILE or a FORMAT clause (ask the API for json, ndjson or csv)');
      break;
    case 'TableIdentifier':
      table(nameOf(node));
      break;
    case 'Function': {
      const name = nameOf(node);
      if (parent?.type === 'TableExpression') {
        if (!isAllowedTableFunction(name)) refuse(`the table function ${name}`);
      } else if (!isAllowedFunction(name)) {
        refuse(`the function ${name}`);
      }
      if (IN_FUNCTIONS.has(name.toLowerCase())) {
        const right = node.children[0]?.children[1];
        if (right?.type === 'Identifier') table(nameOf(right));
      }
      break;
    }
  }
  for (const child of node.children) visit(child, node, table);
}

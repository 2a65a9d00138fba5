import { AgateError, ErrorCode } from '../../../../core/src/errors.js';
import { isAllowedAggregate, isAllowedFunction, isAllowedTableFunction } from './allowed-functions.js';
import { cteNames, nameOf, windowNames, parseAst, quotedIdentifiers, type AstNode } from './ast.js';

/**
 * The allow-list check on the engine's own parse of an analyst query (`EXPLAIN AST` of the text
 * `formatQuerySingleLine` printed back): one SELECT (UNION / INTERSECT / EXCEPT of SELECTs), every
 * function and table function on the allow-list, every table an analyst view in `agate` or a
 * common table expression of the query, and none of SETTINGS, FORMAT, INTO OUTFILE, APPLY or
 * query parameters. Node types not known to be harmless are refused, so a construct a newer
 * engine adds is refused until someone looks at it.
 */
interface GuardOptions {
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

/**
 * Functions whose argument at this index is a string the engine builds an aggregate function
 * from: `arrayReduce('aggThrow', …)`, and a cast to `AggregateFunction(aggThrow, …)` (which also
 * reads the value as that aggregate's state). The string must be a literal, its aggregate listed.
 */
const AGGREGATE_NAMED = new Map([['arrayreduce', 0]]);
const TYPE_NAMED = new Map([['cast', 1], ['_cast', 1], ['accuratecast', 1], ['accuratecastornull', 1], ['accuratecastordefault', 1]]);

/**
 * Functions that take a type as a string among their literal arguments: the structure of
 * `values('x UInt8', …)`, the return type of `JSONExtract(…, 'T')`. The engine builds an
 * `AggregateFunction(…)` type from it (the aggregate included) as it does from a cast's.
 */
const TYPES_IN_STRINGS = new Set(['values', 'jsonextract', 'jsonextractkeysandvalues']);

// `x IN name` reads the table `name`.
const IN_FUNCTIONS = new Set(['in', 'notin', 'nullin', 'notnullin']);

/** Words an analyst may put in a backquoted or double-quoted identifier. */
const SAFE_QUOTED = /^[A-Za-z0-9_ $-]*$/;

function refuse(what: string): never {
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
  const windows = windowNames(canonical);
  const table = (name: string): void => {
    if (options.tables.has(name)) return;
    if (windows.has(name)) refuse(`the table ${name}, named like a window of the WINDOW clause (give the window another name)`);
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
      checkNamedAggregate(node, name.toLowerCase());
      if (TYPES_IN_STRINGS.has(name.toLowerCase())) checkTypeStrings(node, name);
      if (IN_FUNCTIONS.has(name.toLowerCase())) {
        const right = node.children[0]?.children[1];
        if (right?.type === 'Identifier') table(nameOf(right));
      }
      break;
    }
  }
  for (const child of node.children) visit(child, node, table);
}

/** No string argument of a function that reads types from strings names an aggregate function's state. */
function checkTypeStrings(node: AstNode, name: string): void {
  for (const arg of node.children[0]?.children ?? []) {
    if (arg.type === 'Literal' && /aggregatefunction/i.test(arg.text)) refuse(`the type ${arg.text.slice(0, 80)} in ${name}() (an aggregate function's state, built from a string)`);
  }
}

/** The aggregate an `arrayReduce` names, and a cast's type, are checked like functions written out. */
function checkNamedAggregate(node: AstNode, name: string): void {
  const aggregateAt = AGGREGATE_NAMED.get(name);
  const typeAt = TYPE_NAMED.get(name);
  const at = aggregateAt ?? typeAt;
  if (at === undefined) return;
  const arg = node.children[0]?.children[at];
  const text = arg?.type === 'Literal' ? /^'((?:[^'\\]|\\.)*)'$/.exec(arg.text)?.[1] : undefined;
  if (text === undefined) refuse(`${name}() with its ${aggregateAt === undefined ? 'type' : 'aggregate function'} computed rather than written as a string literal`);
  // A quote or backslash is the only escape a type (an Enum's names) or an aggregate needs.
  if (/\\[^'\\]/.test(text)) refuse(`an escape in the ${aggregateAt === undefined ? 'type' : 'aggregate function'} named in ${name}()`);
  if (aggregateAt !== undefined) {
    // 'quantile(0.5)', 'sequenceMatch(\'(?1)\')': a name, then literal parameters only.
    const m = /^\s*([A-Za-z_][A-Za-z0-9_]*)\s*(?:\((?:\s*(?:-?[0-9][0-9.eE+-]*|'(?:[^'\\]|\\.)*')\s*,?)*\))?\s*$/.exec(text.replace(/\\(['\\])/g, '$1'));
    if (m === null) refuse(`the aggregate function ${text.slice(0, 60)} (arrayReduce takes a name and literal parameters)`);
    if (!isAllowedAggregate(m[1]!)) refuse(`the aggregate function ${m[1]!.slice(0, 60)} (named in arrayReduce)`);
  } else if (/aggregatefunction/i.test(text)) {
    refuse(`a cast to ${text.slice(0, 80)} (an aggregate function's state, built from a string)`);
  }
}

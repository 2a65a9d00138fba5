import { analyzeSql, type SqlAnalysis, type SqlStatement } from '../../../../../core/src/sql/analyze.js';
import { fieldCalls, sqlFacts } from '../../../../../core/src/sql/facts.js';
import type { Masker } from '../../masking/masker.js';

type Node = Record<string, unknown>;

/**
 * Whether a statement can hand back a value of a column that `masker`'s column rules mask under a
 * name those rules do not catch. Column rules match the names in a RowDescription, so only a
 * masked column returned as itself is caught by them: an alias (`api_token AS t`), an expression
 * (`upper(api_token)`, `string_agg(api_token, ',')`, `api_token::int` whose error quotes it), a
 * subquery or CTE that renames it, or a whole row (`SELECT v FROM vault v`, `row_to_json(v)`,
 * `ROW(v.*)`) carries the value under another name. Such a statement's results and errors are then
 * masked whole (fail closed: a text Agate cannot parse counts as carrying one, and so does a
 * FETCH, whose cursor's query is not in its text, and a built-in handed a table, cursor or query
 * as text, `table_to_xml('vault', …)`, or the planner's statistics, whose columns the text does not
 * name at all). For `EXECUTE name`, pass the PREPARE texts too.
 *
 * Not caught here: a value moved earlier into a column with another name (a view, CREATE TABLE
 * AS, INSERT … SELECT); what the row count of a filter on a masked column reveals.
 */
export function carriesMaskedColumn(sql: string, masker: Masker): boolean {
  if (!masker.hasColumnRules) return false;
  return analysisCarries(analyzeSql(sql), masker);
}

/** {@link carriesMaskedColumn} on a statement text already parsed (mask-readings.ts keeps the answers). */
export function analysisCarries(analysis: SqlAnalysis, masker: Masker): boolean {
  if (!masker.hasColumnRules) return false;
  if (!analysis.ok) return true;
  return analysis.statements.some((s) => statementCarries(s.node, masker) || readsUnnamedColumns(s.node));
}

/**
 * Built-ins that return the columns of a table, cursor or query they are given by name or as
 * text (`table_to_xml('vault', …)`, `ts_stat('SELECT … FROM vault')`): no column of theirs is
 * in the statement's text, so any may be masked.
 */
const COLUMN_READERS = new Set([
  'table_to_xml', 'table_to_xmlschema', 'table_to_xml_and_xmlschema', 'query_to_xml', 'query_to_xmlschema', 'query_to_xml_and_xmlschema',
  'cursor_to_xml', 'cursor_to_xmlschema', 'schema_to_xml', 'schema_to_xmlschema', 'schema_to_xml_and_xmlschema',
  'database_to_xml', 'database_to_xmlschema', 'database_to_xml_and_xmlschema', 'ts_stat', 'ts_rewrite',
  'dblink', 'dblink_fetch', 'dblink_get_result',
  // Logical decoding: every column of every changed row, as text.
  'pg_logical_slot_get_changes', 'pg_logical_slot_peek_changes', 'pg_logical_slot_get_binary_changes', 'pg_logical_slot_peek_binary_changes',
]);

/**
 * Built-ins that column notation calls on a whole row, returning its values: `v.record_out` is
 * `record_out(v)`, `(1,tok…)`, under the name `record_out` (pg_catalog's functions whose one
 * argument takes a row and whose result holds it). A qualified name ending in one is read as
 * that call.
 */
const ROW_FUNCTIONS = new Set([
  'record_out', 'record_send', 'quote_literal', 'quote_nullable', 'concat', 'row_to_json', 'to_json', 'to_jsonb',
  'json_build_array', 'jsonb_build_array', 'json_build_object', 'jsonb_build_object', 'hstore',
]);

/** `v.record_out`, `public.vault.concat`: a qualified name that may be a call of a {@link ROW_FUNCTIONS} member on the row. */
function rowFunctionRef(ref: Node): boolean {
  const fields = list(ref.fields);
  const name = ((fields.at(-1) as Node | undefined)?.String as Node | undefined)?.sval;
  return fields.length > 1 && typeof name === 'string' && ROW_FUNCTIONS.has(name);
}

/** The planner's statistics: sampled values (most common, histogram bounds) of every column. */
const STATISTICS_RELATIONS = new Set(['pg_stats', 'pg_statistic', 'pg_stats_ext', 'pg_stats_ext_exprs', 'pg_statistic_ext_data']);

/** Whether a statement reads column values its text does not name (see the two sets above). */
function readsUnnamedColumns(statement: Node): boolean {
  return forEachObject(statement, (n) => {
    if (typeof n.relname === 'string' && STATISTICS_RELATIONS.has(n.relname)) return true;
    return calledNames(n).some((name) => COLUMN_READERS.has(name));
  });
}

/**
 * The functions a node calls by name: a FuncCall's, and each field a field selection names
 * (`('SELECT …'::text).ts_stat` is `ts_stat('SELECT …')`: see facts.ts fieldCalls).
 */
function calledNames(n: Node): string[] {
  const call = n.FuncCall as Node | undefined;
  const name = call === undefined ? undefined : ((list(call.funcname).at(-1) as Node | undefined)?.String as Node | undefined)?.sval;
  if (typeof name === 'string') return [name];
  const fields = n.A_Indirection as Node | undefined;
  return fields === undefined ? [] : fieldCalls(fields).map((c) => ((c.funcname as Node[])[0]!.String as Node).sval as string);
}

/** Built-ins that keep or send a value where it is read back later under another name. */
const VALUE_STORES = new Set(['pg_notify', 'set_config']);

/**
 * Built-in functions that only compute a value from their arguments (no table, setting, message
 * or notification is written): a masked column handed to one is read, not copied. Any other
 * function may be one the agent defined to store its argument (`keep(api_token)` inserting it
 * into a table read back later), whatever its body names, so for a masked client it is a copy.
 */
const PURE_FUNCTIONS = new Set([
  'upper', 'lower', 'initcap', 'length', 'char_length', 'character_length', 'octet_length', 'bit_length', 'substr', 'substring',
  'left', 'right', 'lpad', 'rpad', 'trim', 'btrim', 'ltrim', 'rtrim', 'replace', 'translate', 'reverse', 'repeat', 'concat',
  'concat_ws', 'format', 'md5', 'sha224', 'sha256', 'sha384', 'sha512', 'encode', 'decode', 'convert_to', 'convert_from',
  'to_hex', 'position', 'strpos', 'split_part', 'regexp_replace', 'regexp_match', 'regexp_matches', 'regexp_like',
  'regexp_split_to_array', 'starts_with', 'quote_literal', 'quote_ident', 'quote_nullable', 'ascii', 'chr', 'count', 'min',
  'max', 'string_agg', 'array_agg', 'json_agg', 'jsonb_agg', 'json_build_object', 'jsonb_build_object', 'json_build_array',
  'jsonb_build_array', 'row_to_json', 'to_json', 'to_jsonb', 'array_to_string', 'to_char', 'to_date', 'to_timestamp',
  'to_number', 'text', 'lag', 'lead', 'first_value', 'last_value', 'nth_value', 'unnest', 'array_length', 'cardinality',
  'nullif', 'num_nonnulls', 'num_nulls', 'pg_column_size', 'to_tsvector', 'to_tsquery', 'plainto_tsquery',
]);

/** Built-in operators of comparison, pattern, arithmetic, text, array and JSON (each a pure function). */
const PURE_OPERATORS = new Set([
  '=', '<>', '!=', '<', '>', '<=', '>=', '||', '~~', '!~~', '~~*', '!~~*', '~', '!~', '~*', '!~*', '+', '-', '*', '/', '%', '^',
  '@@', '@>', '<@', '&&', '->', '->>', '#>', '#>>', '?', '?|', '?&', '#-',
]);

/**
 * A call of a function, or an operator (which calls one), not known to be pure: schema-qualified
 * outside pg_catalog included (`OPERATOR(app.=)`, `app.upper(…)`).
 */
function unknownCall(n: Node): boolean {
  // `(api_token).keep` calls keep(api_token) with no FuncCall (see calledNames).
  if (n.A_Indirection !== undefined) return calledNames(n).some((name) => !PURE_FUNCTIONS.has(name));
  const call = n.FuncCall as Node | undefined;
  const expr = n.A_Expr as Node | undefined;
  const [names, known] = call !== undefined ? [call.funcname, PURE_FUNCTIONS] : expr !== undefined && typeof expr.kind === 'string' && expr.kind.startsWith('AEXPR_OP') ? [expr.name, PURE_OPERATORS] : [undefined, undefined];
  if (known === undefined) return false;
  const parts = list(names).map((x) => ((x as Node).String as Node | undefined)?.sval);
  const name = parts.at(-1);
  return typeof name !== 'string' || !known.has(name) || (parts.length > 1 && parts[0] !== 'pg_catalog');
}

/** Statements whose result is the only place a value they read goes (see derived-columns rules above). */
const READS_TO_RESULT = new Set(['SelectStmt', 'ExplainStmt', 'PrepareStmt', 'ExecuteStmt', 'DeclareCursorStmt', 'FetchStmt', 'ClosePortalStmt', 'DeallocateStmt', 'TransactionStmt', 'VariableShowStmt']);

/**
 * Why a statement is refused to a client whose results a mask set masks, with the kind of the
 * statement (`CreateTableAsStmt`): it copies a masked column somewhere the mask cannot follow, or
 * it changes search_path so that a function outside pg_catalog would pass for a pure built-in
 * (then a later `upper(api_token)` may store the column).
 */
export type MaskedCopy = { kind: 'copies-column'; statement: string } | { kind: 'shadows-builtins'; statement: string } | { kind: 'takes-rows'; statement: string };

/**
 * For a client whose results a mask set masks: the first statement that copies a
 * masked column somewhere the mask cannot follow (a table, a view, another column or name, a
 * function or DO body, a COPY stream), read back later under a name no rule matches; undefined
 * when none does; also a masked column handed to `pg_notify` or `set_config`, whose value comes
 * back outside any result (a notification, a parameter report, SHOW), even from a plain SELECT,
 * or to any function not known to be a pure built-in (it may store it: see PURE_FUNCTIONS).
 * `*` and whole rows count, as they may hold one. Writing a masked column
 * (`INSERT … (api_token) VALUES`, `SET api_token = 'x'`) is not copying one. Bodies are strings:
 * any word in them a column rule matches counts (fail closed).
 */
export function copiesMaskedColumn(sql: string, masker: Masker): MaskedCopy | undefined {
  if (!masker.hasColumnRules) return undefined;
  return analysisCopies(analyzeSql(sql), masker);
}

/** {@link copiesMaskedColumn} on a statement text already parsed (mask-readings.ts keeps the answers). */
export function analysisCopies(analysis: SqlAnalysis, masker: Masker): MaskedCopy | undefined {
  if (!masker.hasColumnRules) return undefined;
  if (!analysis.ok) return undefined; // refused by policy as unparseable; never forwarded
  for (const statement of analysis.statements) {
    const { kind, node } = statement;
    // A masked column by name, or `*` / a whole row that may hold one (`CREATE VIEW v (a, b) AS SELECT * …`).
    const rows = new Set<string>();
    collectRowNames(node, rows);
    const holdsMasked = (ref: Node): boolean => {
      const fields = list(ref.fields);
      const last = fields.at(-1) as Node | undefined;
      const name = (last?.String as Node | undefined)?.sval;
      return last?.A_Star !== undefined || rowFunctionRef(ref) || (typeof name === 'string' && (masker.masksColumn(name) || (fields.length === 1 && rows.has(name))));
    };
    const copy: MaskedCopy = { kind: 'copies-column', statement: kind };
    // `SELECT pg_notify('c', api_token)`, `set_config('x.y', api_token, …)`: sent back as a
    // notification or a parameter report, or read back with SHOW, outside any result.
    if (forEachObject(node, (n) => (storesValue(n) || unknownCall(n)) && someRef(n, holdsMasked))) return copy;
    if (shadowsBuiltins(node) || codeChangesSearchPath(statement)) return { kind: 'shadows-builtins', statement: kind };
    if (takesWholeRow(node)) return { kind: 'takes-rows', statement: kind };
    const select = node.SelectStmt as Node | undefined;
    if (READS_TO_RESULT.has(kind) && select?.intoClause === undefined) continue;
    const body = kind === 'CreateFunctionStmt' || kind === 'DoStmt' ? bodyWords(node) : [];
    if (body.some((w) => masker.masksColumn(w)) || renamesMasked(node, masker) || copiesWholeTable(node, masker)) return copy;
    if (someRef(node, holdsMasked) || readsUnnamedColumns(node)) return copy;
  }
  return undefined;
}

/**
 * A search_path that names pg_catalog after another schema: a function there named like a pure
 * built-in (`other.upper` storing its argument) is then called by the built-in's name, and
 * PURE_FUNCTIONS would take it for the built-in. Left out, pg_catalog is searched first.
 */
function shadowsBuiltins(node: Node): boolean {
  return forEachObject(node, (n) => {
    const set = n.VariableSetStmt as Node | undefined;
    // A startup option arrives as one string (`-c search_path=other,pg_catalog`): split like a list.
    // The server finds a setting by its name in any case (`SET "Search_Path"`).
    if (set !== undefined && String(set.name).toLowerCase() === 'search_path' && set.kind === 'VAR_SET_VALUE') return catalogNotFirst(list(set.args).map(constantString));
    const call = n.FuncCall as Node | undefined;
    const name = call === undefined ? undefined : ((list(call.funcname).at(-1) as Node | undefined)?.String as Node | undefined)?.sval;
    if (name !== 'set_config') return false;
    const [setting, value] = list(call!.args).map(constantString);
    if (setting === undefined) return true; // which setting it changes is not in the text
    if (setting.toLowerCase() !== 'search_path') return false;
    return catalogNotFirst([value]);
  });
}

/**
 * Code the statement carries as text (a DO or function body, SQL handed to `query_to_xml`) that
 * changes search_path, or a setting named only at run time: its value is not read there, so it
 * counts as putting a schema before pg_catalog. A statement Agate cannot analyse is refused by
 * policy before it runs.
 */
function codeChangesSearchPath(statement: SqlStatement): boolean {
  const f = sqlFacts(statement);
  return f.ok && (f.facts.codeSettings.has('search_path') || f.facts.codeSettings.has('*'));
}

/** Argument types no whole row is handed as: PostgreSQL applies no cast from a row type to them. */
const SCALAR_TYPES = new Set([
  'text', 'varchar', 'bpchar', 'char', 'name', 'int2', 'int4', 'int8', 'numeric', 'float4', 'float8', 'bool', 'date', 'time',
  'timetz', 'timestamp', 'timestamptz', 'interval', 'uuid', 'bytea', 'json', 'jsonb', 'oid', 'regclass', 'inet', 'cidr',
  'macaddr', 'money', 'xml', 'bit', 'varbit', 'tsvector', 'tsquery',
]);

/**
 * `CREATE FUNCTION keep(anyelement)`, or one of a record, `"any"`, a row type (`keep(vault)`),
 * anything but a known scalar or an array, with every other input argument defaulted: column
 * notation calls it on a whole row with no call in the text (`SELECT v.keep FROM vault v` is
 * `keep(v)`, and `(v).keep` too), so the function could keep a masked column where it is read
 * back under another name, past the check on calls of functions not known to be pure.
 */
function takesWholeRow(node: Node): boolean {
  const fn = node.CreateFunctionStmt as Node | undefined;
  if (fn === undefined || fn.is_procedure === true) return false;
  const inputs = list(fn.parameters)
    .map((p) => (p as Node).FunctionParameter as Node | undefined)
    .filter((p): p is Node => p !== undefined && p.mode !== 'FUNC_PARAM_OUT' && p.mode !== 'FUNC_PARAM_TABLE');
  if (inputs.length === 0 || inputs.slice(1).some((p) => p.defexpr === undefined)) return false;
  const type = inputs[0]!.argType as Node | undefined;
  if (list(type?.arrayBounds).length > 0) return false;
  const names = list(type?.names).map((n) => ((n as Node).String as Node | undefined)?.sval);
  const last = names.at(-1);
  return !(typeof last === 'string' && SCALAR_TYPES.has(last) && (names.length === 1 || (names.length === 2 && names[0] === 'pg_catalog')));
}

/** Whether a search_path's schemas name pg_catalog after another (a value not in the text counts). */
function catalogNotFirst(values: (string | undefined)[]): boolean {
  if (values.some((v) => v === undefined)) return true;
  const schemas = values.flatMap((v) => v!.split(',')).map((p) => p.trim().replace(/^"|"$/g, '').toLowerCase());
  return schemas.indexOf('pg_catalog') > 0;
}

function constantString(v: unknown): string | undefined {
  const c = (v as Node | undefined)?.A_Const as Node | undefined;
  const sval = (c?.sval as Node | undefined)?.sval;
  return typeof sval === 'string' ? sval : undefined;
}

/** A call of one of {@link VALUE_STORES} (its arguments are what `someRef` then searches). */
function storesValue(n: Node): boolean {
  const call = n.FuncCall as Node | undefined;
  const name = call === undefined ? undefined : ((list(call.funcname).at(-1) as Node | undefined)?.String as Node | undefined)?.sval;
  return typeof name === 'string' && VALUE_STORES.has(name);
}

/** `ALTER TABLE vault RENAME COLUMN api_token TO t`: the column itself, under a name no rule matches. */
function renamesMasked(node: Node, masker: Masker): boolean {
  const rename = node.RenameStmt as Node | undefined;
  return rename?.renameType === 'OBJECT_COLUMN' && typeof rename.subname === 'string' && masker.masksColumn(rename.subname);
}

/**
 * `COPY vault TO …` without a column list, or with a masked column in it: a COPY stream reaches
 * the client with detectors only (a file or program, not at all), so column rules cannot follow.
 */
function copiesWholeTable(node: Node, masker: Masker): boolean {
  const copy = node.CopyStmt as Node | undefined;
  if (copy === undefined || copy.is_from === true || copy.relation === undefined) return false;
  const columns = list(copy.attlist).map((a) => ((a as Node).String as Node | undefined)?.sval);
  return columns.length === 0 || columns.some((c) => typeof c !== 'string' || masker.masksColumn(c));
}

/** The identifier-like words of every string constant in a statement (function and DO bodies). */
function bodyWords(node: Node): string[] {
  const words: string[] = [];
  forEachObject(node, (n) => {
    if (typeof n.sval === 'string') words.push(...(n.sval.match(/[A-Za-z_][A-Za-z0-9_$]*/g) ?? []));
    return false;
  });
  return words;
}

function statementCarries(statement: Node, masker: Masker): boolean {
  // A cursor's rows are those of a DECLARE this text does not show: assume the worst.
  if (statement.FetchStmt !== undefined) return true;
  const rows = new Set<string>();
  collectRowNames(statement, rows);
  // The output columns a statement returns as themselves: its own target list (a plain SELECT,
  // not a UNION whose later branches take the first one's names) and its RETURNING list.
  const exempt = new Set<unknown>();
  const top = Object.values(statement)[0] as Node | undefined;
  const returning = [...list(top?.returningList), ...list((top?.returningClause as Node | undefined)?.exprs)];
  const outputs = [...(top?.larg === undefined && top?.selectStmt === undefined ? list(top?.targetList) : []), ...returning];
  for (const t of outputs) {
    const target = (t as Node).ResTarget as Node | undefined;
    const ref = (target?.val as Node | undefined)?.ColumnRef as Node | undefined;
    if (ref === undefined) continue;
    const last = list(ref.fields).at(-1) as Node | undefined;
    const column = (last?.String as Node | undefined)?.sval;
    // `*` and `v.*` expand to named columns; a column named as itself (or as another masked name).
    const asItself = last?.A_Star !== undefined ? list(ref.fields).length <= 2 && target?.name === undefined : typeof column === 'string' && (target?.name === undefined || masker.masksColumn(String(target.name)));
    if (asItself && !(list(ref.fields).length === 1 && typeof column === 'string' && rows.has(column)) && !rowFunctionRef(ref)) exempt.add(ref);
  }
  // Column aliases on a FROM item or a CTE (`vault v(a, b)`, `WITH w(a, b)`) rename what `*` returns.
  if (forEachObject(statement, (n) => list((n.alias as Node | undefined)?.colnames).length > 0 || list((n.CommonTableExpr as Node | undefined)?.aliascolnames).length > 0)) return true;
  return someRef(statement, (ref) => {
    if (exempt.has(ref)) return false;
    const fields = list(ref.fields);
    const last = fields.at(-1) as Node | undefined;
    // `*` anywhere but the top-level list (a UNION branch, a subquery, `ROW(v.*)`): it may hold one.
    if (last?.A_Star !== undefined || rowFunctionRef(ref)) return true;
    const name = (last?.String as Node | undefined)?.sval;
    if (typeof name !== 'string') return false;
    return masker.masksColumn(name) || (fields.length === 1 && rows.has(name));
  });
}

/** Names a bare identifier can use for a whole row: tables, their aliases, subquery and CTE names. */
function collectRowNames(node: unknown, rows: Set<string>): void {
  forEachObject(node, (n) => {
    // A RangeVar appears wrapped (`{ RangeVar: {...} }`) or bare (a statement's `relation`).
    if (typeof n.relname === 'string') rows.add(n.relname);
    const alias = n.alias as Node | undefined;
    if (typeof alias?.aliasname === 'string') rows.add(alias.aliasname);
    const cte = n.CommonTableExpr as Node | undefined;
    if (typeof cte?.ctename === 'string') rows.add(cte.ctename);
    return false;
  });
}

function someRef(node: unknown, test: (ref: Node) => boolean): boolean {
  return forEachObject(node, (n) => n.ColumnRef !== undefined && test(n.ColumnRef as Node));
}

/** Visits every object of a parse tree (an explicit stack: hostile nesting is deep); true stops. */
function forEachObject(root: unknown, visit: (n: Node) => boolean): boolean {
  const stack: unknown[] = [root];
  while (stack.length > 0) {
    const v = stack.pop();
    if (v === null || typeof v !== 'object') continue;
    if (Array.isArray(v)) {
      stack.push(...v);
      continue;
    }
    if (visit(v as Node)) return true;
    stack.push(...Object.values(v));
  }
  return false;
}

function list(v: unknown): unknown[] {
  return Array.isArray(v) ? v : [];
}

import { analyzeSql, type SqlAnalysis } from '../../../../../core/src/sql/analyze.js';
import { MASKED_VALUE, type Masker } from '../../masking/masker.js';
import { literalEnd } from './sql-literal.js';

/**
 * What a statement itself says is secret, found on PostgreSQL's own parse tree: the literals and
 * bound parameters an INSERT, UPDATE or ON CONFLICT assigns to a column a column rule masks, the
 * value argument of `set_config(name, value, local)`, and the columns of a COPY.
 */
export interface StatementSecrets {
  /** Parameter numbers ($1 is 1) whose values are masked whole. */
  readonly params: ReadonlySet<number>;
  /** UTF-8 byte offsets in the statement text where a literal to mask starts. */
  readonly literals: readonly number[];
  /** A COPY: its column names, or null when they are unknown (no column list, `SELECT *`). */
  readonly copy?: { readonly columns: readonly string[] | null; readonly delimiter: string; readonly binary: boolean };
}

/** What the walk fills in (read-only once returned: mask-readings.ts shares it between commands). */
interface Found {
  params: Set<number>;
  literals: number[];
  copy?: StatementSecrets['copy'];
}

type Node = Record<string, unknown>;

/** A cheap test first: most statements assign nothing and copy nothing. */
const WORTH_PARSING = /\b(insert|update|set_config|copy)\b/i;

/** Whether `sql` can hold anything {@link statementSecrets} finds; false means it finds nothing. */
export function mayHoldSecrets(sql: string): boolean {
  return WORTH_PARSING.test(sql);
}

export function statementSecrets(sql: string, masker: Masker): StatementSecrets | undefined {
  if (!mayHoldSecrets(sql)) return undefined;
  return analysisSecrets(analyzeSql(sql), masker);
}

/** {@link statementSecrets} of a text already parsed (mask-readings.ts keeps the answers). */
export function analysisSecrets(analysis: SqlAnalysis, masker: Masker): StatementSecrets | undefined {
  if (!analysis.ok || analysis.statements.length !== 1) return undefined;
  const found: Found = { params: new Set(), literals: [] };
  walk(analysis.statements[0]!.node, masker, found);
  return found.params.size > 0 || found.literals.length > 0 || found.copy !== undefined ? found : undefined;
}

function walk(node: unknown, masker: Masker, found: Found): void {
  if (Array.isArray(node)) return node.forEach((n) => walk(n, masker, found));
  if (node === null || typeof node !== 'object') return;
  const n = node as Node;
  const insert = n.InsertStmt as Node | undefined;
  if (insert !== undefined) insertValues(insert, masker, found);
  const update = n.UpdateStmt as Node | undefined;
  const onConflict = insert?.onConflictClause as Node | undefined;
  for (const t of [...((update?.targetList ?? []) as Node[]), ...((onConflict?.targetList ?? []) as Node[])]) assigned(t.ResTarget as Node | undefined, masker, found);
  const call = n.FuncCall as Node | undefined;
  if (call !== undefined && lastName(call.funcname) === 'set_config') collect((call.args as unknown[] | undefined)?.[1], found);
  const copy = n.CopyStmt as Node | undefined;
  if (copy !== undefined) found.copy = copyShape(copy);
  for (const value of Object.values(n)) walk(value, masker, found);
}

/** `INSERT INTO t (a, token) VALUES (…, x)` or `… SELECT …, x`: the x under a masked column. */
function insertValues(insert: Node, masker: Masker, found: Found): void {
  const cols = ((insert.cols ?? []) as Node[]).map((c) => String((c.ResTarget as Node | undefined)?.name ?? ''));
  const masked = cols.flatMap((name, i) => (masker.masksColumn(name) ? [i] : []));
  if (masked.length === 0) return;
  const select = (insert.selectStmt as Node | undefined)?.SelectStmt as Node | undefined;
  for (const list of (select?.valuesLists ?? []) as Node[]) {
    const items = ((list.List as Node | undefined)?.items ?? []) as unknown[];
    for (const i of masked) collect(items[i], found);
  }
  const targets = (select?.targetList ?? []) as Node[];
  for (const i of masked) collect((targets[i]?.ResTarget as Node | undefined)?.val, found);
}

function assigned(target: Node | undefined, masker: Masker, found: Found): void {
  if (target !== undefined && typeof target.name === 'string' && masker.masksColumn(target.name)) collect(target.val, found);
}

/** Every literal and parameter inside an expression assigned to a masked column. */
function collect(expr: unknown, found: Found): void {
  if (Array.isArray(expr)) return expr.forEach((e) => collect(e, found));
  if (expr === null || typeof expr !== 'object') return;
  const n = expr as Node;
  const constant = n.A_Const as Node | undefined;
  if (constant !== undefined && constant.isnull !== true && typeof constant.location === 'number') found.literals.push(constant.location);
  const param = n.ParamRef as Node | undefined;
  if (param !== undefined && typeof param.number === 'number') found.params.add(param.number);
  for (const value of Object.values(n)) collect(value, found);
}

function copyShape(copy: Node): NonNullable<StatementSecrets['copy']> {
  const options = new Map(((copy.options ?? []) as Node[]).map((o) => {
    const d = o.DefElem as Node;
    return [String(d.defname), String(((d.arg as Node | undefined)?.String as Node | undefined)?.sval ?? '')];
  }));
  const format = options.get('format')?.toLowerCase() ?? 'text';
  const delimiter = options.get('delimiter') || (format === 'csv' ? ',' : '\t');
  let columns: string[] | null = null;
  if (Array.isArray(copy.attlist)) columns = (copy.attlist as Node[]).map((a) => String((a.String as Node).sval));
  else if (copy.query !== undefined) columns = selectNames(((copy.query as Node).SelectStmt as Node | undefined)?.targetList);
  return { columns, delimiter, binary: format === 'binary' };
}

/** The output names of a SELECT list, or null when one cannot be known (`*`, an expression without alias). */
function selectNames(targetList: unknown): string[] | null {
  if (!Array.isArray(targetList)) return null;
  const names: string[] = [];
  for (const t of targetList as Node[]) {
    const target = t.ResTarget as Node;
    if (typeof target.name === 'string') names.push(target.name);
    else if ((target.val as Node).ColumnRef !== undefined) {
      const last = lastName(((target.val as Node).ColumnRef as Node).fields);
      if (last === undefined) return null;
      names.push(last);
    } else if ((target.val as Node).FuncCall !== undefined) names.push(lastName(((target.val as Node).FuncCall as Node).funcname) ?? '?column?');
    else return null;
  }
  return names;
}

function lastName(names: unknown): string | undefined {
  if (!Array.isArray(names)) return undefined;
  const last = names[names.length - 1] as Node | undefined;
  const s = last?.String as Node | undefined;
  return typeof s?.sval === 'string' ? s.sval : undefined;
}

/** The statement text with each found literal replaced by '[masked]' (offsets are UTF-8 bytes). */
export function maskLiterals(sql: string, byteOffsets: readonly number[]): string {
  if (byteOffsets.length === 0) return sql;
  const ascii = Buffer.byteLength(sql) === sql.length;
  const bytes = ascii ? undefined : Buffer.from(sql, 'utf8');
  const index = (offset: number) => (bytes === undefined ? offset : bytes.subarray(0, offset).toString('utf8').length);
  let out = sql;
  for (const start of [...new Set(byteOffsets.map(index))].sort((a, b) => b - a)) {
    // Parse-tree locations: `''` there is an empty string (pg_dump's set_config('search_path', '', false)).
    const end = literalEnd(out, start, false);
    if (end !== undefined) out = `${out.slice(0, start)}'${MASKED_VALUE}'${out.slice(end)}`;
  }
  return out;
}

/**
 * One COPY line for the sample: fields of masked columns replaced, and every field when the
 * columns are unknown (fail closed). Binary COPY data is never sampled as text.
 */
export function maskCopyLine(line: string, copy: NonNullable<StatementSecrets['copy']>, masker: Masker): string {
  if (copy.binary) return MASKED_VALUE;
  const fields = line.split(copy.delimiter);
  return fields.map((f, i) => (copy.columns === null || masker.masksColumn(copy.columns[i] ?? '') ? MASKED_VALUE : f)).join(copy.delimiter);
}

/**
 * A JSON value (a `row_to_json`, `json_agg` or `to_jsonb` read): string values under a key a
 * column rule matches are masked. Undefined when the text is not a JSON object or array.
 */
export function maskJsonKeys(text: string, masker: Masker): { text: string; count: number } | undefined {
  const head = text.trimStart()[0];
  if ((head !== '{' && head !== '[') || text.length > MAX_JSON_CHARS || !masker.hasColumnRules) return undefined;
  let doc: unknown;
  try {
    doc = JSON.parse(text);
  } catch {
    return undefined;
  }
  const count = maskKeys(doc, masker);
  return count === 0 ? undefined : { text: JSON.stringify(doc), count };
}

/** Larger JSON values are left to the detectors (parsing them would cost more than the row). */
const MAX_JSON_CHARS = 1 << 20;

function maskKeys(doc: unknown, masker: Masker): number {
  if (Array.isArray(doc)) return doc.reduce((n: number, d) => n + maskKeys(d, masker), 0);
  if (doc === null || typeof doc !== 'object') return 0;
  let count = 0;
  const o = doc as Record<string, unknown>;
  for (const [k, v] of Object.entries(o)) {
    // Whole values under a masked key, numbers and nested objects too (a PIN, a card, a key pair).
    if (v !== null && masker.masksColumn(k)) {
      o[k] = MASKED_VALUE;
      count += 1;
    } else count += maskKeys(v, masker);
  }
  return count;
}

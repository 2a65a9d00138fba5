import { parsePlPgSQLSync, scanSync } from 'libpg-query';

/** One piece of SQL that PL/pgSQL code runs, as PostgreSQL's PL/pgSQL parser splits it. */
type CodePiece =
  /** A statement the code runs as written (`DELETE FROM t`, `PERFORM f()` as `SELECT f()`). */
  | { kind: 'statement'; text: string }
  /** An expression (conditions, assignments, RAISE arguments); PostgreSQL runs it as `SELECT <text>`. */
  | { kind: 'expression'; text: string }
  /** The expression whose value is the text of an `EXECUTE`, `FOR … IN EXECUTE`, `OPEN … FOR EXECUTE`. */
  | { kind: 'dynamic'; text: string }
  /**
   * A `FETCH`, `MOVE` or `CLOSE` of a cursor variable (`text` is the verb): it reaches the portal
   * its value names at run time, which may be any portal of the session, one the client bound
   * with the extended protocol included, whose statement the code does not show.
   */
  | { kind: 'portal'; text: 'FETCH' | 'MOVE' | 'CLOSE' };

/** The code cannot be read exactly: policy refuses it rather than guess. */
export class UnreadableCode extends Error {}

/** PL/pgSQL's raw-parse modes (PostgreSQL's RawParseMode) that an expression carries. */
const enum ParseMode {
  Default = 0,
  PlpgsqlExpr = 2,
  Assign1 = 3,
  Assign2 = 4,
  Assign3 = 5,
}

/** Statement types whose `query` is the text to EXECUTE; any `dynquery` field is one too. */
const DYNAMIC_STATEMENTS = new Set(['PLpgSQL_stmt_dynexecute', 'PLpgSQL_stmt_dynfors']);

/**
 * The SQL a PL/pgSQL function runs, from the text of its `CREATE FUNCTION`/`CREATE PROCEDURE`
 * statement (the parser needs the signature: return type and OUT parameters change what a body
 * may say). Every expression of the body is returned, wherever it sits (declarations, conditions,
 * loops, cursors, exception handlers), by walking the whole tree rather than a list of statement
 * types, so a PL/pgSQL construct added later is still seen.
 */
export function plpgsqlPieces(createText: string): CodePiece[] {
  let parsed: { plpgsql_funcs?: unknown[] };
  try {
    parsed = parsePlPgSQLSync(createText) as typeof parsed;
  } catch (err) {
    throw new UnreadableCode(`the PL/pgSQL body does not parse: ${err instanceof Error ? err.message : String(err)}`);
  }
  const funcs = parsed.plpgsql_funcs ?? [];
  const fn = funcs.length === 1 ? (funcs[0] as { PLpgSQL_function?: { action?: unknown } }).PLpgSQL_function : undefined;
  if (fn?.action === undefined) throw new UnreadableCode('the PL/pgSQL parser returned no body');
  const out: CodePiece[] = [];
  collect(fn, undefined, false, out, 0);
  return out;
}

/** The text of a function with the DO block's body, for the PL/pgSQL parser. */
export function doBlockFunction(body: string): string {
  // A standard string literal: the library's scanner runs with standard_conforming_strings on.
  return `CREATE FUNCTION agate_do_block() RETURNS void LANGUAGE plpgsql AS '${body.replaceAll("'", "''")}'`;
}

function collect(value: unknown, statementType: string | undefined, dynamicSlot: boolean, out: CodePiece[], depth: number): void {
  if (depth > 500) throw new UnreadableCode('the PL/pgSQL body is nested too deeply');
  if (value === null || typeof value !== 'object') return;
  if (Array.isArray(value)) {
    for (const v of value) collect(v, statementType, false, out, depth + 1);
    return;
  }
  for (const [key, child] of Object.entries(value as Record<string, unknown>)) {
    if (key === 'PLpgSQL_expr') {
      expression(child as { query?: unknown; parseMode?: unknown }, dynamicSlot, out);
      continue;
    }
    if (key === 'PLpgSQL_stmt_fetch' || key === 'PLpgSQL_stmt_close') {
      out.push({ kind: 'portal', text: key === 'PLpgSQL_stmt_close' ? 'CLOSE' : (child as { is_move?: unknown }).is_move === true ? 'MOVE' : 'FETCH' });
    }
    const type = key.startsWith('PLpgSQL_stmt_') ? key : statementType;
    const dynamic = key === 'dynquery' || (key === 'query' && statementType !== undefined && DYNAMIC_STATEMENTS.has(statementType));
    collect(child, type, dynamic, out, depth + 1);
  }
}

function expression(expr: { query?: unknown; parseMode?: unknown }, dynamic: boolean, out: CodePiece[]): void {
  const text = expr.query;
  if (typeof text !== 'string') throw new UnreadableCode('a PL/pgSQL expression has no text');
  const mode = expr.parseMode ?? ParseMode.Default;
  if (dynamic) {
    out.push({ kind: 'dynamic', text });
    return;
  }
  switch (mode) {
    case ParseMode.Default:
      out.push({ kind: 'statement', text });
      return;
    case ParseMode.PlpgsqlExpr:
      out.push({ kind: 'expression', text });
      return;
    case ParseMode.Assign1:
    case ParseMode.Assign2:
    case ParseMode.Assign3: {
      // `target[sub].field := value`: the subscripts are expressions too.
      const [target, assigned] = splitAssignment(text);
      out.push({ kind: 'expression', text: target }, { kind: 'expression', text: assigned });
      return;
    }
    default:
      throw new UnreadableCode(`a PL/pgSQL expression has parse mode ${String(mode)}, which Agate does not read`);
  }
}

/** Splits an assignment at its first `:=` or `=` outside brackets, found by PostgreSQL's scanner. */
function splitAssignment(text: string): [string, string] {
  const bytes = Buffer.from(text, 'utf8');
  let depth = 0;
  for (const token of scanSync(text).tokens) {
    if (token.text === '(' || token.text === '[') depth++;
    else if (token.text === ')' || token.text === ']') depth--;
    else if (depth === 0 && (token.text === ':=' || token.text === '=')) {
      return [bytes.subarray(0, token.start).toString('utf8'), bytes.subarray(token.end).toString('utf8')];
    }
  }
  throw new UnreadableCode('a PL/pgSQL assignment has no := or =');
}

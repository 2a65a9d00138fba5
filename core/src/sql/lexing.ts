import type { SqlAnalysis } from './analyze.js';

/**
 * The session settings that change how PostgreSQL's scanner (scan.l) splits SQL text into
 * tokens, and the values Agate can follow exactly. Agate parses SQL with
 * `standard_conforming_strings = on` and reads client text as UTF-8; the server must do the same,
 * or a text Agate reads as one string literal can hold a statement the server runs.
 *
 * - `standard_conforming_strings`: when off, a backslash escapes the next character inside a
 *   plain '…' literal, so `'a\' , '; DROP TABLE v; --'` ends somewhere else. Pinned to on.
 * - `client_encoding`: the server converts client bytes to its own encoding before scanning.
 *   SJIS, BIG5, GBK, UHC, GB18030 and JOHAB allow 0x5C (`\`) as the second byte of a character,
 *   so a byte Agate reads as a backslash escaping a quote is part of a letter to the server.
 *   Only UTF8 and SQL_ASCII are accepted: with either, the bytes Agate decodes as UTF-8 are the
 *   bytes the server reads, and every byte below 0x80 is the ASCII character it looks like.
 * - `backslash_quote` and `escape_string_warning` do not change tokens: the first only makes the
 *   server reject `\'`, the second only adds a warning. Both are left alone.
 */

/** Settings that change tokenisation, by their lower-case GUC name. */
export const LEXING_SETTINGS = ['standard_conforming_strings', 'client_encoding'] as const;
export type LexingSetting = (typeof LEXING_SETTINGS)[number];

/** The value Agate sends upstream at startup for each lexing setting (RESET returns to it). */
export const PINNED: Readonly<Record<LexingSetting, string>> = { standard_conforming_strings: 'on', client_encoding: 'UTF8' };

/** PostgreSQL's encoding name cleaning (clean_encoding_name): lower case, alphanumerics only. */
function cleanEncodingName(value: string): string {
  return value.toLowerCase().replace(/[^a-z0-9]/g, '');
}

/** Encodings Agate reads exactly, by cleaned name (aliases from PostgreSQL's pg_encname_tbl). */
const ACCEPTED_ENCODINGS = new Map([['utf8', 'UTF8'], ['unicode', 'UTF8'], ['sqlascii', 'SQL_ASCII']]);

/** The canonical name of an accepted client encoding, or undefined. */
export function acceptedEncoding(value: string): string | undefined {
  return ACCEPTED_ENCODINGS.get(cleanEncodingName(value));
}

/**
 * PostgreSQL's parse_bool for the true side: case-insensitive prefixes of `true` and `yes`,
 * `on`, `1`. No trimming, as the server does none.
 */
function isTrue(value: string): boolean {
  const v = value.toLowerCase();
  if (v === '') return false;
  return 'true'.startsWith(v) || 'yes'.startsWith(v) || v === 'on' || v === '1';
}

type SettingCheck = { ok: true } | { ok: false; reason: string };

/**
 * Whether setting `name` to `value` keeps SQL lexing as Agate reads it. Settings that do not
 * affect lexing are always fine. `undefined` value: the setting returns to its session default
 * (RESET, SET … TO DEFAULT), which is the pinned startup value.
 */
export function checkSetting(name: string, value: string | undefined): SettingCheck {
  const key = name.toLowerCase();
  if (value === undefined) return { ok: true };
  if (key === 'standard_conforming_strings') {
    return isTrue(value) ? { ok: true } : { ok: false, reason: `standard_conforming_strings = '${value}': Agate reads SQL only with standard_conforming_strings on` };
  }
  if (key === 'client_encoding') {
    return acceptedEncoding(value) !== undefined ? { ok: true } : { ok: false, reason: `client_encoding = '${value}': Agate reads client text only as UTF8 (or SQL_ASCII)` };
  }
  return { ok: true };
}

function isLexingName(name: string): boolean {
  return (LEXING_SETTINGS as readonly string[]).includes(name.toLowerCase());
}

/**
 * True when a text could be split into different tokens under other lexing settings: only a
 * backslash or a non-ASCII character can (in every encoding PostgreSQL supports, a byte below
 * 0x80 that starts a character is that ASCII character; without a backslash, standard strings on
 * or off read the same). Such a text is only forwarded once the settings are known for certain.
 */
export function isLexingSensitive(text: string): boolean {
  return /[\\\u0080-\uffff]/.test(text);
}

type Node = Record<string, unknown>;

/**
 * The first change of a lexing setting to a value Agate cannot follow anywhere in a parse tree
 * (a statement node from libpg-query), as a refusal reason; undefined when there is none.
 * Covers `SET`, `SET LOCAL`, `SET NAMES` (VariableSetStmt anywhere: also inside ALTER ROLE /
 * DATABASE / SYSTEM … SET and a function's SET clause) and `set_config(…)` in any expression
 * (a value that is not a constant for a lexing setting cannot be checked, so it is refused).
 * RESET and SET … TO DEFAULT return to the pinned startup values and are fine. What the text
 * does not name — a function body, dynamic SQL, `set_config(name, …)` with the name from a
 * query (pg_dump does that), `UPDATE pg_settings` — is followed by the server's ParameterStatus
 * report instead, which the proxy waits for before forwarding any text it could affect.
 */
export function lexingChange(node: unknown): string | undefined {
  let found: string | undefined;
  const visit = (value: unknown, depth: number): void => {
    if (found !== undefined || depth > 200 || value === null || typeof value !== 'object') return;
    if (Array.isArray(value)) {
      for (const v of value) visit(v, depth + 1);
      return;
    }
    const node = value as Node;
    // A VariableSetStmt is unwrapped where a field holds one (ALTER ROLE … SET: `setstmt`).
    if (typeof node.kind === 'string' && node.kind.startsWith('VAR_')) found ??= variableSet(node);
    for (const [key, child] of Object.entries(node)) {
      if (child !== null && typeof child === 'object' && !Array.isArray(child)) {
        const c = child as Node;
        if (key === 'FuncCall') found ??= setConfigCall(c);
      }
      visit(child, depth + 1);
    }
  };
  visit(node, 0);
  return found;
}

function variableSet(stmt: Node): string | undefined {
  const name = typeof stmt.name === 'string' ? stmt.name : '';
  if (!isLexingName(name)) return undefined;
  // VAR_SET_DEFAULT, VAR_RESET, VAR_RESET_ALL, VAR_SET_CURRENT (FROM CURRENT keeps the pinned value).
  if (stmt.kind !== 'VAR_SET_VALUE') return undefined;
  const args = Array.isArray(stmt.args) ? stmt.args : [];
  const values = args.map(constant);
  if (values.length !== 1 || values[0] === undefined) return `SET ${name} with a value Agate cannot read; Agate pins it to ${PINNED[name.toLowerCase() as LexingSetting]}`;
  const check = checkSetting(name, values[0]);
  return check.ok ? undefined : check.reason;
}

function setConfigCall(call: Node): string | undefined {
  const names = Array.isArray(call.funcname) ? call.funcname : [];
  const last = names[names.length - 1] as { String?: { sval?: string } } | undefined;
  if (last?.String?.sval?.toLowerCase() !== 'set_config') return undefined;
  const args = Array.isArray(call.args) ? call.args : [];
  const name = args[0] === undefined ? undefined : constant(args[0]);
  if (name === undefined || !isLexingName(name)) return undefined;
  const value = args[1] === undefined ? undefined : constant(args[1]);
  if (value === undefined) return `set_config('${name}', …) with a value that is not a constant: Agate cannot follow it`;
  const check = checkSetting(name, value);
  return check.ok ? undefined : check.reason;
}

/** The text of a constant (A_Const, possibly cast), as the server would read it; else undefined. */
function constant(expr: unknown): string | undefined {
  if (expr === null || typeof expr !== 'object') return undefined;
  const e = expr as Node;
  if (e.TypeCast !== undefined) return constant((e.TypeCast as Node).arg);
  const c = e.A_Const as Node | undefined;
  if (c === undefined || c.isnull === true) return undefined;
  // libpg-query's JSON leaves out zero values: `{ ival: {} }` is 0, `{ sval: {} }` is ''.
  if (c.sval !== undefined) return String((c.sval as Node).sval ?? '');
  if (c.ival !== undefined) return String((c.ival as Node).ival ?? 0);
  if (c.fval !== undefined) return String((c.fval as Node).fval ?? '0');
  if (c.boolval !== undefined) return (c.boolval as Node).boolval === true ? 'true' : 'false';
  return undefined;
}


/**
 * {@link lexingChange} over a command's statements. `shaped` may be the analysis of the text's
 * shape (numbers replaced by 0, see shape.ts); since 0 is never a safe value of a lexing setting,
 * a shape without a change means the text has none, and a shape with one is checked again on the
 * exact text (`SET standard_conforming_strings = 1` is fine).
 */
export function lexingRefusal(shaped: readonly { node: Record<string, unknown> }[], exact: () => SqlAnalysis): string | undefined {
  if (shaped.every((s) => lexingChange(s.node) === undefined)) return undefined;
  const a = exact();
  if (!a.ok) return `the statement cannot be parsed: ${a.error}`;
  for (const s of a.statements) {
    const found = lexingChange(s.node);
    if (found !== undefined) return found;
  }
  return undefined;
}

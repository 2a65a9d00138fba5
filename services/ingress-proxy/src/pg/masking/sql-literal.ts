/**
 * Where a SQL literal that starts at `start` ends (exclusive), in every spelling PostgreSQL
 * accepts: '…' with '' escapes, E'…' with backslash escapes, U&'…' with an optional UESCAPE '…',
 * $tag$…$tag$, a literal quoted inside another string (''…''), a number, and string constants
 * continued on the next line ('a'⏎'b' is one constant). Undefined when no literal starts there.
 * An unterminated literal ends at the end of the text (masked to the end: fail closed).
 * `nested: false` when `start` is known to be a literal of the statement itself (a parse-tree
 * location): there `''` is an empty string or a quote escape, never a literal quoted inside one.
 */
export function literalEnd(sql: string, start: number, nested = true): number | undefined {
  const c = sql[start];
  const next = sql[start + 1];
  if (c === undefined) return undefined;
  if (nested && c === "'" && next === "'") return nestedEnd(sql, start);
  if (c === "'") return continued(sql, quotedEnd(sql, start + 1, false));
  if ((c === 'E' || c === 'e') && next === "'") return continued(sql, quotedEnd(sql, start + 2, true));
  if ((c === 'N' || c === 'n') && next === "'") return continued(sql, quotedEnd(sql, start + 2, false));
  if ((c === 'U' || c === 'u') && next === '&' && sql[start + 2] === "'") return uescape(sql, continued(sql, quotedEnd(sql, start + 3, false)));
  if (c === '$') {
    const tag = /^\$([A-Za-z_][A-Za-z_0-9]*)?\$/.exec(sql.slice(start, start + 64));
    if (tag === null) return undefined;
    const close = sql.indexOf(tag[0], start + tag[0].length);
    return close === -1 ? sql.length : close + tag[0].length;
  }
  const number = /^[+-]?(?:\d[\d_]*(?:\.\d*)?|\.\d+)(?:[eE][+-]?\d+)?/.exec(sql.slice(start, start + 512));
  return number === null ? undefined : start + number[0].length;
}

/** After the opening quote: the index past the closing one. */
function quotedEnd(sql: string, i: number, backslashes: boolean): number {
  while (i < sql.length) {
    const ch = sql[i];
    if (backslashes && ch === '\\') i += 2;
    else if (ch === "'" && sql[i + 1] === "'") i += 2;
    else if (ch === "'") return i + 1;
    else i += 1;
  }
  return sql.length;
}

/** SQL §5.3: 'a' followed by whitespace holding a newline, then 'b', is the constant 'ab'. */
function continued(sql: string, end: number): number {
  const m = /^[ \t\f\r]*\n\s*'/.exec(sql.slice(end, end + 256));
  return m === null ? end : continued(sql, quotedEnd(sql, end + m[0].length, false));
}

function uescape(sql: string, end: number): number {
  const m = /^\s*UESCAPE\s*'(?:[^']|'')*'/i.exec(sql.slice(end, end + 64));
  return m === null ? end : end + m[0].length;
}

/** ''secret'' inside a quoted string (a statement built in a DO block or a function body). */
function nestedEnd(sql: string, start: number): number {
  let i = start + 2;
  while (i < sql.length) {
    if (sql.startsWith("''''", i)) i += 4; // an escaped quote inside the nested literal
    else if (sql.startsWith("''", i)) return i + 2;
    else i += 1;
  }
  return sql.length;
}

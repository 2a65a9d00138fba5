import type { Masker } from '../../masking/masker.js';
import { literalEnd } from './sql-literal.js';

/**
 * Credentials written into SQL itself: `PASSWORD <literal>` (CREATE/ALTER ROLE/USER, in every
 * literal spelling, also inside a DO block's string), and the `password=` of a connection
 * string (CREATE SUBSCRIPTION, dblink). The literal becomes `'[masked:password]'`, so the masked
 * text still parses as the same statement for policy.
 */
const PASSWORD_KEYWORD = /\bPASSWORD\b/gi;
/** Whitespace and comments PostgreSQL allows between the keyword and its literal. */
const GAP = /^(?:\s+|--[^\n]*(?:\n|$)|\/\*[\s\S]*?\*\/)*/;
const CONNINFO_PASSWORD = /(\bpassword\s*=\s*)('(?:[^'\\]|\\.)*'|[^\s']+)/gi;

/** Masks secrets in SQL text before it is recorded; returns the text and how many spans were masked. */
export function maskSqlText(sql: string, masker: Masker): { text: string; count: number } {
  let count = 0;
  let text = sql;
  if (/password/i.test(text)) {
    const masked = maskPasswordLiterals(text);
    text = masked.text;
    count += masked.count;
    text = text.replace(CONNINFO_PASSWORD, (m, head: string, value: string) => {
      if (value.startsWith("'[masked")) return m;
      count += 1;
      return `${head}[masked:password]`;
    });
  }
  const detected = masker.maskText(text);
  return { text: detected.text, count: count + detected.count };
}

function maskPasswordLiterals(sql: string): { text: string; count: number } {
  let out = '';
  let from = 0;
  let count = 0;
  for (const m of sql.matchAll(PASSWORD_KEYWORD)) {
    const after = m.index + m[0].length;
    if (after < from) continue;
    const start = after + GAP.exec(sql.slice(after))![0].length;
    const end = literalEnd(sql, start);
    if (end === undefined || /^null\b/i.test(sql.slice(start, start + 5))) continue;
    // Inside another string (''…'') the replacement is quoted the same way, so the text still parses.
    const quote = sql.startsWith("''", start) ? "''" : "'";
    out += `${sql.slice(from, start)}${quote}[masked:password]${quote}`;
    from = end;
    count += 1;
  }
  return { text: out + sql.slice(from), count };
}

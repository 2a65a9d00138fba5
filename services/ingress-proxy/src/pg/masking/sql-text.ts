import type { Masker } from './masker.js';

/**
 * Credentials written into SQL itself: `PASSWORD '…'` (CREATE/ALTER ROLE/USER), and the
 * `password=` of a connection string (CREATE SUBSCRIPTION, dblink). The literal keeps its quotes
 * so the masked text still parses as the same statement for policy.
 */
const PASSWORD_LITERAL = /(\bPASSWORD\s+)(E?'(?:[^']|'')*'|\$([A-Za-z_]*)\$[\s\S]*?\$\3\$)/gi;
const CONNINFO_PASSWORD = /(\bpassword\s*=\s*)('(?:[^'\\]|\\.)*'|[^\s']+)/gi;

/** Masks secrets in SQL text before it is recorded; returns the text and how many spans were masked. */
export function maskSqlText(sql: string, masker: Masker): { text: string; count: number } {
  let count = 0;
  let text = sql;
  if (/password/i.test(text)) {
    text = text.replace(PASSWORD_LITERAL, (_m, head: string) => {
      count += 1;
      return `${head}'[masked:password]'`;
    });
    text = text.replace(CONNINFO_PASSWORD, (m, head: string, value: string) => {
      if (value.startsWith("'[masked")) return m;
      count += 1;
      return `${head}[masked:password]`;
    });
  }
  const detected = masker.maskText(text);
  return { text: detected.text, count: count + detected.count };
}

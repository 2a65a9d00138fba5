import { visibleText } from '../../core/src/visible-text.js';

/**
 * Renders rows as an aligned plain-text table for people; `--json` prints JSON instead. A cell's
 * invisible and control characters are shown as labels (`⟨ESC U+001B⟩`), never written to the
 * terminal: an agent's escape sequence would erase or rewrite the line, or set the clipboard.
 */
export function table(rows: readonly Record<string, unknown>[], columns: readonly string[]): string {
  const cell = (v: unknown) => (v === null || v === undefined ? '-' : visibleText(String(v)).replace(/\s+/g, ' '));
  const widths = columns.map((c) => Math.min(60, Math.max(c.length, ...rows.map((r) => cell(r[c]).length))));
  const line = (vals: string[]) => vals.map((v, i) => (v.length > widths[i]! ? v.slice(0, widths[i]! - 1) + '…' : v.padEnd(widths[i]!))).join('  ').trimEnd();
  return [line(columns.map((c) => c.toUpperCase())), ...rows.map((r) => line(columns.map((c) => cell(r[c]))))].join('\n');
}

import { AgateError, ErrorCode } from '../../../core/src/errors.js';

/** The three ways the API can answer with rows. */
export type Format = 'json' | 'ndjson' | 'csv';

const MEDIA: Record<Format, string> = {
  json: 'application/json; charset=utf-8',
  ndjson: 'application/x-ndjson; charset=utf-8',
  csv: 'text/csv; charset=utf-8',
};

/** `?format=` wins over the Accept header; JSON when neither asks for something else. */
export function negotiate(query: URLSearchParams, accept: string | undefined): Format {
  const explicit = query.get('format');
  if (explicit !== null) {
    if (explicit === 'json' || explicit === 'ndjson' || explicit === 'csv') return explicit;
    throw new AgateError(ErrorCode.API_BAD_REQUEST, 'format must be one of json, ndjson, csv');
  }
  const a = (accept ?? '').toLowerCase();
  if (a.includes('application/x-ndjson') || a.includes('application/jsonl')) return 'ndjson';
  if (a.includes('text/csv')) return 'csv';
  return 'json';
}

export function mediaType(format: Format): string {
  return MEDIA[format];
}

/** One NDJSON line per row. */
export function toNdjson(rows: readonly object[]): string {
  return rows.map((r) => JSON.stringify(r) + '\n').join('');
}

/**
 * RFC 4180 CSV with a header line. Nested values are written as JSON; null is an empty field;
 * text a spreadsheet would run as a formula starts with `'` (see FORMULA_START).
 * `columns` fixes the header when there may be no rows to take it from.
 */
export function toCsv(rows: readonly Record<string, unknown>[], columns?: readonly string[]): string {
  const cols = columns ?? (rows[0] === undefined ? [] : Object.keys(rows[0]));
  const lines = [cols.map(csvField).join(',')];
  for (const r of rows) lines.push(cols.map((c) => csvField(r[c])).join(','));
  return lines.join('\r\n') + '\r\n';
}

function csvField(v: unknown): string {
  if (v === null || v === undefined) return '';
  let s = typeof v === 'object' ? JSON.stringify(v) : String(v);
  if (typeof v === 'string' && FORMULA_START.test(s) && !NUMBER.test(s)) s = `'${s}`;
  return /[",\r\n]/.test(s) ? `"${s.replace(/"/g, '""')}"` : s;
}

/*
 * Recorded text is written by agents (a statement starting with `-- =…`, an SSH exec line), and
 * a spreadsheet opening the CSV runs a cell starting with one of these as a formula (a link that
 * sends other cells away, a command through DDE). Such a text cell gets a leading apostrophe,
 * which spreadsheets read as "this is text". Numbers stay as they are, also when the engine
 * writes them as strings (64-bit integers).
 */
const FORMULA_START = /^[=+\-@\t\r]/;
const NUMBER = /^[-+]?(\d+\.?\d*|\.\d+)([eE][-+]?\d+)?$/;

import { AgateError, ErrorCode } from '../../../core/src/errors.js';

/**
 * Opaque keyset cursors: the sort key of the last row of a page, as base64url JSON. Clients pass
 * them back unchanged; a cursor that does not decode to the expected shape is a client error.
 */
export function encodeCursor(key: readonly (string | number)[]): string {
  return Buffer.from(JSON.stringify(key)).toString('base64url');
}

export function decodeCursor(raw: string | null, shape: readonly ('string' | 'number')[]): (string | number)[] | undefined {
  // An empty `cursor=` is the first page, as if it were absent.
  if (raw === null || raw === '') return undefined;
  let parsed: unknown;
  try {
    parsed = raw.length <= 2048 && /^[A-Za-z0-9_-]+$/.test(raw) ? JSON.parse(Buffer.from(raw, 'base64url').toString('utf8')) : undefined;
  } catch {
    parsed = undefined;
  }
  const ok =
    Array.isArray(parsed) &&
    parsed.length === shape.length &&
    parsed.every((v, i) => typeof v === shape[i] && (typeof v !== 'string' || (v.length <= 512 && !v.includes('\0'))) && (typeof v !== 'number' || (Number.isSafeInteger(v) && v >= 0)));
  if (!ok) throw badCursor();
  return parsed as (string | number)[];
}

/** A cursor of a list ordered by time then id (sessions, commands): the store time is checked before it is bound into a query. */
export function decodeTimeCursor(raw: string | null): { time: string; id: string } | undefined {
  const cursor = decodeCursor(raw, ['string', 'string']);
  if (cursor === undefined) return undefined;
  const [time, id] = cursor as [string, string];
  if (!isStoreTime(time)) throw badCursor();
  return { time, id };
}

function badCursor(): AgateError {
  return new AgateError(ErrorCode.API_BAD_REQUEST, 'cursor is not a cursor this API returned');
}

/** A DateTime64 text from the store, checked before it is bound back into a query. */
export function isStoreTime(s: string): boolean {
  return /^\d{4}-\d{2}-\d{2} \d{2}:\d{2}:\d{2}(\.\d{1,6})?$/.test(s);
}

import { AgateError, ErrorCode } from '../../../core/src/errors.js';

/*
 * Query-string readers for the API routes. Each refuses a bad value with API_BAD_REQUEST naming
 * the parameter, so a client error never turns into a store error.
 */

const bad = (message: string) => new AgateError(ErrorCode.API_BAD_REQUEST, message);
const MAX_TEXT = 1024;

export function intParam(q: URLSearchParams, name: string, fallback: number, min: number, max: number): number {
  const raw = q.get(name);
  if (raw === null) return fallback;
  const n = Number(raw);
  if (raw.trim() === '' || !Number.isInteger(n) || n < min || n > max) throw bad(`${name} must be an integer from ${min} to ${max}`);
  return n;
}

export function textParam(q: URLSearchParams, name: string): string | undefined {
  const raw = q.get(name);
  if (raw === null) return undefined;
  if (raw.length === 0 || raw.length > MAX_TEXT) throw bad(`${name} must be 1 to ${MAX_TEXT} characters`);
  if (raw.includes('\0')) throw bad(`${name} must not contain NUL characters`);
  return raw;
}

export function enumParam<T extends string>(q: URLSearchParams, name: string, allowed: readonly T[]): T | undefined {
  const raw = q.get(name);
  if (raw === null) return undefined;
  if (!(allowed as readonly string[]).includes(raw)) throw bad(`${name} must be one of ${allowed.join(', ')}`);
  return raw as T;
}

// Year 1970..2299: the range DateTime64(6) holds.
const MIN_MICROS = 0;
// Microseconds must stay exact in a JS number (2^53 µs is in the year 2255).
const MAX_MICROS = Math.min(Date.UTC(2299, 11, 31) * 1000, Number.MAX_SAFE_INTEGER);

/** An RFC 3339 / ISO 8601 timestamp, as microseconds since the epoch. */
export function timeParam(q: URLSearchParams, name: string): number | undefined {
  const raw = q.get(name);
  if (raw === null) return undefined;
  const ms = /^\d{4}-\d{2}-\d{2}([T ][\d:.]+)?(Z|[+-]\d{2}:?\d{2})?$/.test(raw) ? Date.parse(raw) : NaN;
  const micros = ms * 1000;
  if (!Number.isFinite(ms) || micros < MIN_MICROS || micros > MAX_MICROS) throw bad(`${name} must be an RFC 3339 timestamp such as 2026-01-31T12:00:00Z`);
  return micros;
}

/** `claim=NAME:VALUE`, repeatable; all must match. */
export function claimParams(q: URLSearchParams): Record<string, string> | undefined {
  const all = q.getAll('claim');
  if (all.length === 0) return undefined;
  const out: Record<string, string> = {};
  for (const c of all) {
    const i = c.indexOf(':');
    if (i <= 0 || c.length > MAX_TEXT || c.includes('\0')) throw bad('claim must be NAME:VALUE, e.g. claim=repository:acme/app');
    out[c.slice(0, i)] = c.slice(i + 1);
  }
  return out;
}

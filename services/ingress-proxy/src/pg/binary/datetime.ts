/*
 * PostgreSQL's binary send formats for dates and times (src/backend/utils/adt/date.c,
 * timestamp.c), printed as the server prints them with DateStyle ISO and IntervalStyle postgres.
 * Times are counted from 2000-01-01 00:00:00 UTC in microseconds, dates in days.
 */

const PG_EPOCH_MS = Date.UTC(2000, 0, 1);
const DAY_US = 86_400_000_000n;
const INT64_MAX = 0x7fffffffffffffffn;
const INT64_MIN = -0x8000000000000000n;
const pad = (n: number, width = 2) => String(n).padStart(width, '0');

/** `YYYY-MM-DD`, years before 1 as `… BC` like the server. */
function ymd(days: number): { text: string; bc: boolean } {
  const d = new Date(PG_EPOCH_MS + days * 86_400_000);
  const y = d.getUTCFullYear();
  const bc = y <= 0;
  return { text: `${pad(bc ? 1 - y : y, 4)}-${pad(d.getUTCMonth() + 1)}-${pad(d.getUTCDate())}`, bc };
}

/** `HH:MM:SS` with the fraction's trailing zeros dropped, as the server prints seconds. */
function clock(us: bigint): string {
  const secs = Number(us / 1_000_000n);
  const frac = Number(us % 1_000_000n);
  const fraction = frac === 0 ? '' : `.${pad(frac, 6).replace(/0+$/, '')}`;
  return `${pad(Math.floor(secs / 3600))}:${pad(Math.floor(secs / 60) % 60)}:${pad(secs % 60)}${fraction}`;
}

// date: Int32 days since 2000-01-01; INT32_MIN and INT32_MAX are -infinity and infinity
export function dateText(b: Buffer): string | undefined {
  if (b.length !== 4) return undefined;
  const days = b.readInt32BE();
  if (days === -0x80000000) return '-infinity';
  if (days === 0x7fffffff) return 'infinity';
  const { text, bc } = ymd(days);
  return bc ? `${text} BC` : text;
}

// timestamp[tz]: Int64 microseconds since 2000-01-01 00:00:00 (UTC for timestamptz)
export function timestampText(b: Buffer, zone: '' | '+00'): string | undefined {
  if (b.length !== 8) return undefined;
  const us = b.readBigInt64BE();
  if (us === INT64_MAX) return 'infinity';
  if (us === INT64_MIN) return '-infinity';
  let days = us / DAY_US;
  let rest = us % DAY_US;
  if (rest < 0n) {
    rest += DAY_US;
    days -= 1n;
  }
  const { text, bc } = ymd(Number(days));
  return `${text} ${clock(rest)}${zone}${bc ? ' BC' : ''}`;
}

// time: Int64 microseconds since midnight
export function timeText(b: Buffer): string | undefined {
  return b.length === 8 ? clock(b.readBigInt64BE()) : undefined;
}

// timetz: Int64 microseconds since midnight | Int32 zone offset in seconds west of UTC
export function timetzText(b: Buffer): string | undefined {
  if (b.length !== 12) return undefined;
  const west = b.readInt32BE(8);
  const east = Math.abs(west);
  const sign = west > 0 ? '-' : '+';
  const minutes = Math.floor(east / 60) % 60;
  const seconds = east % 60;
  const zone = `${sign}${pad(Math.floor(east / 3600))}${minutes || seconds ? `:${pad(minutes)}` : ''}${seconds ? `:${pad(seconds)}` : ''}`;
  return clock(b.readBigInt64BE()) + zone;
}

// interval: Int64 microseconds | Int32 days | Int32 months
export function intervalText(b: Buffer): string | undefined {
  if (b.length !== 16) return undefined;
  const us = b.readBigInt64BE();
  const days = b.readInt32BE(8);
  const months = b.readInt32BE(12);
  // IntervalStyle postgres: `1 year 2 mons -3 days +04:05:06.5`; a sign change after a negative part is spelled out.
  const parts: string[] = [];
  let before = false;
  const part = (value: number, unit: string) => {
    if (value === 0) return;
    parts.push(`${before && value > 0 ? '+' : ''}${value} ${unit}${value === 1 ? '' : 's'}`);
    before = value < 0;
  };
  part(Math.trunc(months / 12), 'year');
  part(months % 12, 'mon');
  part(days, 'day');
  if (parts.length === 0 || us !== 0n) {
    const sign = us < 0n ? '-' : before ? '+' : '';
    const abs = us < 0n ? -us : us;
    const hours = abs / 3_600_000_000n;
    const rest = abs % 3_600_000_000n;
    parts.push(`${sign}${hours < 10n ? '0' : ''}${hours}${clock(rest).slice(2)}`);
  }
  return parts.join(' ');
}

import type { AgateEvent } from '../../../schemas/src/events.js';

/**
 * The W3C Trace Context `traceparent` value, version 00:
 *   version "00" - trace-id (32 hex) - parent-id (16 hex) - trace-flags (2 hex)
 * lower-case hex only; an all-zero trace-id or parent-id is invalid. Agate carries it on its
 * Command, Verdict and Response events and reads it from clients (a Kubernetes request's
 * `traceparent` header), so a value it cannot vouch for is dropped here, never carried on.
 */
interface TraceParent {
  traceId: string;
  spanId: string;
  /** Bit 0: the caller sampled (recorded) its span. */
  flags: number;
}

const FORMAT = /^([0-9a-f]{2})-([0-9a-f]{32})-([0-9a-f]{16})-([0-9a-f]{2})(-.*)?$/;
const ZERO_TRACE = '0'.repeat(32);
const ZERO_SPAN = '0'.repeat(16);

/**
 * The trace context in `value`, or undefined when it is not one (absent, malformed, version ff,
 * zero ids): the caller then starts a new trace, as the W3C recommendation says. A version above
 * 00 is read by its 00 prefix (the recommendation's forward compatibility); 00 itself allows nothing after the flags.
 */
export function parseTraceParent(value: string | null | undefined): TraceParent | undefined {
  if (value === null || value === undefined || value.length > 512) return undefined;
  const m = FORMAT.exec(value.trim());
  if (m === null) return undefined;
  const [, version, traceId, spanId, flags, rest] = m as unknown as [string, string, string, string, string, string | undefined];
  if (version === 'ff' || (version === '00' && rest !== undefined)) return undefined;
  if (traceId === ZERO_TRACE || spanId === ZERO_SPAN) return undefined;
  return { traceId, spanId, flags: parseInt(flags, 16) };
}

/** The `traceparent` value (version 00) of a span. */
export function formatTraceParent(tp: TraceParent): string {
  return `00-${tp.traceId}-${tp.spanId}-${(tp.flags & 0xff).toString(16).padStart(2, '0')}`;
}

/** `value` as Agate carries it (version 00, normalised), or null when it is not a valid trace context. */
export function normaliseTraceParent(value: string | null | undefined): string | null {
  const tp = parseTraceParent(value);
  return tp === undefined ? null : formatTraceParent(tp);
}

/** The trace context an event carries (Command, Verdict, Response), or null. */
export function eventTraceParent(event: AgateEvent): string | null {
  return event.type === 'Command' || event.type === 'Verdict' || event.type === 'Response' ? event.trace_parent ?? null : null;
}

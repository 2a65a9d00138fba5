import { createHash } from 'node:crypto';
import type { OcsfEvent } from '../ocsf/map.js';

/** A text cut to fit: where it was, how long it was, and the SHA-256 of all of it (UTF-8). */
interface TruncatedField {
  field: string;
  chars: number;
  sha256: string;
}

/** Strings this short are never cut: the budget is met by cutting the long ones. */
const KEEP_CHARS = 256;

const bytesOf = (e: unknown) => Buffer.byteLength(JSON.stringify(e));

/**
 * `event` as at most `maxBytes` of JSON. The agent decides how long its text is (a 16 MB statement
 * passes the proxy), and a destination refuses a record past its limit (Kafka's `message.max.bytes`,
 * 1 MB by default; HEC's request size): one such event would stop the export for good. So the
 * longest strings are cut (a `…` at the end) until the event fits, each listed in
 * `unmapped.agate.truncated` with its length and digest; the ledger keeps the whole text, proven
 * by `metadata.uid`. An event that fits is returned as it is.
 */
export function fitEvent(event: OcsfEvent, maxBytes: number): OcsfEvent {
  if (bytesOf(event) <= maxBytes) return event;
  const copy = structuredClone(event);
  const truncated: TruncatedField[] = [];
  const agate = unmappedAgate(copy);
  agate.truncated = truncated;
  const original = new Map<string, string>();
  // A few passes: a cut is sized by the string's average bytes per character, which its tail may not have.
  for (let pass = 0; pass < 4 && bytesOf(copy) > maxBytes; pass++) {
    for (const leaf of longStrings(copy).sort((a, b) => b.value.length - a.value.length)) {
      const over = bytesOf(copy) - maxBytes;
      if (over <= 0) break;
      // JSON may escape a character to up to 6 bytes: cut by what the string costs in the JSON,
      // with room for its line in `truncated`.
      const cost = bytesOf(leaf.value) - 2;
      const keep = Math.max(KEEP_CHARS, Math.floor((leaf.value.length * Math.max(0, cost - over - 256)) / cost));
      if (keep >= leaf.value.length) continue;
      if (!original.has(leaf.path)) {
        original.set(leaf.path, leaf.value);
        truncated.push({ field: leaf.path, chars: leaf.value.length, sha256: createHash('sha256').update(leaf.value).digest('hex') });
      }
      leaf.set(`${cutAt(leaf.value, keep)}…`);
    }
  }
  return copy;
}

/**
 * `events` in runs of at most `maxBytes` of JSON each (every event first fitted to that size),
 * in order: one send per run keeps each request under the destination's limit.
 */
export function sizedRuns(events: readonly OcsfEvent[], maxBytes: number): OcsfEvent[][] {
  const runs: OcsfEvent[][] = [];
  let run: OcsfEvent[] = [];
  let size = 0;
  for (const e of events) {
    const fitted = fitEvent(e, maxBytes);
    const bytes = bytesOf(fitted);
    if (run.length > 0 && size + bytes > maxBytes) {
      runs.push(run);
      run = [];
      size = 0;
    }
    run.push(fitted);
    size += bytes;
  }
  if (run.length > 0) runs.push(run);
  return runs;
}

interface Leaf {
  path: string;
  value: string;
  set(v: string): void;
}

/** Every string longer than KEEP_CHARS, with its dotted path and a setter. */
function longStrings(root: Record<string, unknown>): Leaf[] {
  const out: Leaf[] = [];
  const walk = (node: Record<string, unknown> | unknown[], path: string) => {
    for (const [k, v] of Object.entries(node)) {
      const p = path === '' ? k : `${path}.${k}`;
      if (typeof v === 'string' && v.length > KEEP_CHARS) out.push({ path: p, value: v, set: (s) => ((node as Record<string, unknown>)[k] = s) });
      else if (v !== null && typeof v === 'object') walk(v as Record<string, unknown>, p);
    }
  };
  walk(root, '');
  return out;
}

function unmappedAgate(e: OcsfEvent): Record<string, unknown> {
  const unmapped = (e.unmapped ??= {}) as Record<string, unknown>;
  return (unmapped.agate ??= {}) as Record<string, unknown>;
}

/** The first `n` UTF-16 units, not splitting a surrogate pair. */
function cutAt(s: string, n: number): string {
  const code = s.charCodeAt(n - 1);
  return s.slice(0, code >= 0xd800 && code <= 0xdbff ? n - 1 : n);
}

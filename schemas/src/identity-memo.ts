import { BoundedLru } from '../../core/src/bounded-lru.js';
import type { Cursor, Read } from './plain-reader.js';

/**
 * One decoded identity per session, for a consumer decoding the events it reads (the ledger and
 * the policy service on Kafka). A session's Commands all carry its identity, a CI token's ~25
 * claims and most of a Command's bytes; decoded anew it cost every Command a fresh map of claims,
 * and the ledger its cached JSON (`json-body.ts` keeps it per frozen identity object).
 *
 * An entry is found by session id but used only when the bytes at the cursor are exactly the
 * bytes it was decoded from: Avro reads the same bytes the same way, so the value is the same. An
 * identity that changed within a session (the proxies never do it: another token opens another
 * session) or a session id seen from two proxies is decoded anew and replaces the entry.
 */
export class IdentityMemo {
  readonly #entries: BoundedLru<string, { bytes: Buffer; identity: object }>;

  /** `capacity`: sessions remembered, least recently seen dropped first (an entry is ~2 KiB per 25 claims). */
  constructor(capacity = 1024) {
    this.#entries = new BoundedLru(capacity);
  }

  /** The identity at the cursor, read with `read` unless `session`'s entry holds the same bytes; frozen. */
  read(c: Cursor, session: unknown, read: Read): unknown {
    const start = c.pos;
    const key = typeof session === 'string' ? session : undefined;
    const known = key === undefined ? undefined : this.#entries.get(key);
    if (known !== undefined) {
      const end = start + known.bytes.length;
      if (end <= c.buf.length && c.buf.compare(known.bytes, 0, known.bytes.length, start, end) === 0) {
        c.pos = end;
        return known.identity;
      }
    }
    const identity = read(c);
    if (identity === null || typeof identity !== 'object') return identity;
    // An identity's members are strings and its claims, a map of strings: one level down is all.
    for (const k in identity) {
      const v = (identity as Record<string, unknown>)[k];
      if (v !== null && typeof v === 'object') Object.freeze(v);
    }
    Object.freeze(identity);
    // A copy: the bytes are a slice of a whole fetched batch, which the entry must not keep alive.
    if (key !== undefined && c.pos <= c.buf.length) this.#entries.set(key, { bytes: Buffer.from(c.buf.subarray(start, c.pos)), identity });
    return identity;
  }

  get size(): number {
    return this.#entries.size;
  }
}

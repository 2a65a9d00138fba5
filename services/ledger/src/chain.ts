import { hash } from 'node:crypto';
import type { AgateEvent } from '../../../schemas/src/events.js';

/*
 * The hash chain. Each record stores the previous record's link hash and its own:
 *   link = SHA-256(0x02 || prev || seq as 8 bytes || payload || columns)
 * where payload is the encoded event (the record's RFC 9162 Merkle leaf data) and columns are
 * the queryable columns, each field written as a 4-byte length and its bytes. Integers are
 * little-endian because that is what the engine's reinterpretAsFixedString gives, which keeps
 * the SQL side (LINK_SQL) several times faster than building big-endian bytes from hex. One
 * hash per record: the Merkle leaf and node hashes are left to the engine (tree-sql.ts). The
 * 0x02 prefix keeps links apart from tree leaves (0x00) and nodes (0x01). Binding the columns
 * means an analyst never reads a column the chain does not vouch for, and binding seq makes
 * renumbering and reordering visible. Every term is recomputable in ClickHouse SQL (LINK_SQL),
 * so the store can check its own links in bulk.
 */

export const GENESIS = Buffer.alloc(32);
const LINK_PREFIX = Buffer.of(0x02);

/** The queryable columns derived from an event, in the order they are bound into the link. */
export interface RecordColumns {
  event_id: string;
  event_type: string;
  /** Microseconds since the epoch. */
  time: number;
  session_id: string;
  /** The acting identity's subject (claimed subject for a failed login), else ''. */
  subject: string;
  target: string;
  /** Command text, else ''. */
  text: string;
  /** The decoded event as JSON. */
  body: string;
}

export function recordColumns(event: AgateEvent): RecordColumns {
  const subject = 'identity' in event ? event.identity.subject : event.type === 'AuthenticationFailed' ? (event.claimed_subject ?? '') : '';
  return {
    event_id: event.event_id,
    event_type: event.type,
    time: event.time,
    session_id: event.session_id,
    subject,
    target: 'target' in event ? event.target : '',
    text: event.type === 'Command' ? event.text : '',
    body: JSON.stringify(event),
  };
}

function columnValues(c: RecordColumns): string[] {
  return [c.event_id, c.event_type, c.session_id, c.subject, c.target, c.text, c.body];
}

export function linkHash(prev: Uint8Array, seq: number, payload: Uint8Array, columns: RecordColumns): Buffer {
  const values = columnValues(columns);
  let size = 1 + 32 + 8 + 4 + payload.length + 12;
  for (const v of values) size += 4 + Buffer.byteLength(v);
  // One buffer, one hash call: per-field update() calls cost more than the hashing itself.
  const buf = Buffer.allocUnsafe(size);
  buf[0] = LINK_PREFIX[0]!;
  buf.set(prev, 1);
  buf.writeBigUInt64LE(BigInt(seq), 33);
  buf.writeUInt32LE(payload.length, 41);
  buf.set(payload, 45);
  let at = 45 + payload.length;
  // Field order as in LINK_SQL: event_id, event_type, time (8-byte micros), then the rest.
  values.forEach((v, i) => {
    const n = buf.write(v, at + 4, 'utf8');
    buf.writeUInt32LE(n, at);
    at += 4 + n;
    if (i === 1) {
      buf.writeUInt32LE(8, at);
      buf.writeBigInt64LE(BigInt(columns.time), at + 4);
      at += 12;
    }
  });
  return hash('sha256', buf, 'buffer');
}

const lengthPrefixed = (col: string) => `reinterpretAsFixedString(toUInt32(length(${col}))), ${col}`;

/** The link hash recomputed from a stored row, in ClickHouse SQL (must match linkHash). */
export const LINK_SQL = `SHA256(concat(unhex('02'), prev_hash, reinterpretAsFixedString(seq), ${[
  'payload',
  'event_id',
  'toString(event_type)',
  'reinterpretAsFixedString(toUnixTimestamp64Micro(time))',
  'session_id',
  'subject',
  'toString(target)',
  'text',
  'body',
]
  .map(lengthPrefixed)
  .join(', ')}))`;

/** The RFC 9162 leaf hash of a stored row, in ClickHouse SQL. */
export const LEAF_SQL = `SHA256(concat(unhex('00'), payload))`;

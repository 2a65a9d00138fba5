import { createHash } from 'node:crypto';
import type { AgateEvent } from '../../../schemas/src/events.js';

/*
 * The hash chain. Each record stores the previous record's link hash and its own:
 *   link = SHA-256(0x02 || prev || seq as 8 bytes big-endian || leaf hash || columns)
 * where leaf hash = SHA-256(0x00 || encoded event) is the record's RFC 9162 Merkle leaf and
 * `columns` are the queryable columns, each as a 4-byte big-endian length and its bytes. The
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
  return [c.event_id, c.event_type, String(c.time), c.session_id, c.subject, c.target, c.text, c.body];
}

export function linkHash(prev: Uint8Array, seq: number, leaf: Uint8Array, columns: RecordColumns): Buffer {
  const head = Buffer.allocUnsafe(8);
  head.writeBigUInt64BE(BigInt(seq));
  const h = createHash('sha256').update(LINK_PREFIX).update(prev).update(head).update(leaf);
  const len = Buffer.allocUnsafe(4);
  for (const v of columnValues(columns)) {
    const bytes = Buffer.from(v, 'utf8');
    len.writeUInt32BE(bytes.length);
    h.update(len).update(bytes);
  }
  return h.digest();
}

const lengthPrefixed = (col: string) => `unhex(leftPad(hex(toUInt32(length(${col}))), 8, '0')), ${col}`;

/** The link hash recomputed from a stored row, in ClickHouse SQL (must match linkHash). */
export const LINK_SQL = `SHA256(concat(unhex('02'), prev_hash, unhex(leftPad(hex(seq), 16, '0')), SHA256(concat(unhex('00'), payload)), ${[
  'event_id',
  'toString(event_type)',
  'toString(toUnixTimestamp64Micro(time))',
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

import { hash } from 'node:crypto';
import type { AgateEvent } from '../../../schemas/src/events.js';
import { RowBinaryWriter } from '../../../core/src/store/row-binary.js';

/*
 * The hash chain. Each record stores the previous record's link hash and its own:
 *   link = SHA-256(0x02 || prev || seq || event_id || event_type || time || session_id ||
 *                  subject || target || text || body || payload)
 * with every term exactly as the ledger's RowBinary insert carries it: seq and time (micros)
 * as 8-byte little-endian integers, strings as an unsigned LEB128 length and their bytes. So
 * the writer hashes the very bytes it hands the engine (writeRecord: one copy, one hash call),
 * and the engine serializes a stored row the same way again (LINK_SQL) to check links in bulk.
 * payload is the encoded event, the record's RFC 9162 Merkle leaf data; the Merkle leaf and
 * node hashes are left to the engine (tree-sql.ts). The 0x02 prefix keeps links apart from
 * tree leaves (0x00) and nodes (0x01). Binding the columns means an analyst never reads a
 * column the chain does not vouch for, and binding seq makes renumbering and reordering visible.
 */

export const GENESIS = Buffer.alloc(32);
const LINK_PREFIX = 0x02;

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

/** The ledger's insert columns, in the order writeRecord writes them (hash first: it is filled in last). */
export const RECORD_COLUMNS = ['chain_id', 'hash', 'prev_hash', 'seq', 'event_id', 'event_type', 'time', 'session_id', 'subject', 'target', 'text', 'body', 'payload'] as const;

/** RECORD_COLUMNS' types as RowBinary carries them (LowCardinality travels as its inner type). */
export const RECORD_STRUCTURE = "chain_id String, hash FixedString(32), prev_hash FixedString(32), seq UInt64, event_id String, event_type String, time DateTime64(6, 'UTC'), session_id String, subject String, target String, text String, body String, payload String";

/**
 * Writes one record as a RowBinary row (RECORD_COLUMNS) and returns its link hash, computed
 * over the bytes just written from prev_hash on.
 */
export function writeRecord(w: RowBinaryWriter, chainId: string, seq: number, prev: Uint8Array, payload: Uint8Array, c: RecordColumns): Buffer {
  const slot = writeRow(w, chainId, seq, payload, c);
  return sealRow(w.view(0), slot, w.length, prev);
}

/**
 * Writes one record's row with its hash and prev_hash left open (sealRow fills them in) and
 * returns where its hash goes: rows can be written before the link they follow is known.
 */
export function writeRow(w: RowBinaryWriter, chainId: string, seq: number, payload: Uint8Array, c: RecordColumns): number {
  w.string(chainId);
  const slot = w.skip(64); // hash, prev_hash
  w.uint64(seq).string(c.event_id).string(c.event_type).int64(c.time).string(c.session_id)
    .string(c.subject).string(c.target).string(c.text).string(c.body).bytes(payload);
  return slot;
}

/**
 * Completes the row whose hash slot is at `slot` and which ends at `end`: writes `prev` as its
 * prev_hash, hashes the link over prev_hash..end, writes it in the slot and returns it.
 */
export function sealRow(rows: Buffer, slot: number, end: number, prev: Uint8Array): Buffer {
  rows.set(prev, slot + 32);
  // The hash slot's last byte lends itself to the 0x02 prefix, so the link is one hash over
  // contiguous bytes; then the slot takes the link.
  rows[slot + 31] = LINK_PREFIX;
  const link = hash('sha256', rows.subarray(slot + 31, end), 'buffer');
  rows.set(link, slot);
  return link;
}

/**
 * The link hash recomputed from a stored row, in ClickHouse SQL (must match writeRecord). The
 * engine's own RowBinary serializer (formatRow) rebuilds the row's bytes from prev_hash on,
 * exactly as they were inserted (LowCardinality columns travel as plain strings), so no length
 * prefix is rebuilt by hand in SQL; measured 5-15 % faster per verified page than concatenating
 * the columns with SQL-built LEB128 lengths.
 */
export const LINK_SQL = `SHA256(concat(unhex('02'), formatRow('RowBinary', ${RECORD_COLUMNS.slice(2).join(', ')})))`;

/** The RFC 9162 leaf hash of a stored row, in ClickHouse SQL. */
export const LEAF_SQL = `SHA256(concat(unhex('00'), payload))`;

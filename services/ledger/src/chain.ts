import type { AgateEvent } from '../../../schemas/src/events.js';
import { RowBinaryWriter, varintSize } from '../../../core/src/store/row-binary.js';
import { writeJsonBody } from './json-body.js';
import { hashBytes, hashText, sha256Text, type HashText } from './merkle.js';

/*
 * The hash chain. Each record stores the previous record's link hash and its own:
 *   link = SHA-256(0x02 || prev || seq || event_id || event_type || time || session_id ||
 *                  subject || target || text || body || leaf)
 * with every column term exactly as the ledger's RowBinary insert carries it: seq and time
 * (micros) as 8-byte little-endian integers, strings as an unsigned LEB128 length and their
 * bytes. leaf is the record's RFC 9162 Merkle leaf hash, SHA-256(0x00 || payload), where
 * payload (the encoded event, the row's last column) is the leaf data; the Merkle node hashes
 * are left to the engine (tree-sql.ts). So the writer hashes the very bytes it hands the engine
 * (sealRow: no copy, and the payload is hashed once, for its leaf), and the engine serializes a
 * stored row the same way again (LINK_SQL) to check links in bulk. The 0x02 prefix keeps links
 * apart from tree leaves (0x00) and nodes (0x01). Binding the columns means an analyst never
 * reads a column the chain does not vouch for, and binding seq makes renumbering and
 * reordering visible.
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
  return {
    event_id: event.event_id,
    event_type: event.type,
    time: event.time,
    session_id: event.session_id,
    subject: subjectOf(event),
    target: 'target' in event ? event.target : '',
    text: event.type === 'Command' ? event.text : '',
    body: JSON.stringify(event),
  };
}

/** The acting identity's subject (the claimed one for a failed login), else ''. */
function subjectOf(event: AgateEvent): string {
  return 'identity' in event ? event.identity.subject
    : event.type === 'AuthenticationFailed' || event.type === 'ApiAuthenticationFailed' ? (event.claimed_subject ?? '')
    : event.type === 'SessionTerminationRequested' ? event.requested_by_subject : '';
}

/**
 * The ledger's insert columns, in the order writeRecord writes them (hash first: it is filled in
 * last). `source_next` is where the bus stream stood just past the event (StreamInfo.positions;
 * 0 when unknown): it is not bound into the link, since it says where the event came from, not
 * what it was, and it only serves to recognise a replay exactly (chain-writer.ts).
 */
export const RECORD_COLUMNS = ['source_next', 'chain_id', 'hash', 'prev_hash', 'seq', 'event_id', 'event_type', 'time', 'session_id', 'subject', 'target', 'text', 'body', 'payload'] as const;

/** The columns a link binds, from prev_hash to body (the payload through its leaf hash). */
const LINKED_COLUMNS = RECORD_COLUMNS.slice(RECORD_COLUMNS.indexOf('prev_hash'), -1);

/** RECORD_COLUMNS' types as RowBinary carries them (LowCardinality travels as its inner type). */
export const RECORD_STRUCTURE = "source_next UInt64, chain_id String, hash FixedString(32), prev_hash FixedString(32), seq UInt64, event_id String, event_type String, time DateTime64(6, 'UTC'), session_id String, subject String, target String, text String, body String, payload String";

/**
 * Writes one record as a RowBinary row (RECORD_COLUMNS) and returns its link hash, computed
 * over the bytes just written from prev_hash on.
 */
export function writeRecord(w: RowBinaryWriter, chainId: string, seq: number, prev: Uint8Array, payload: Uint8Array, c: RecordColumns, sourceNext = 0): Buffer {
  const slot = writeRow(w, chainId, seq, payload, c, sourceNext);
  const rows = w.view(0);
  return hashBytes(sealRow(rows, slot, w.length, payload.length, hashText(prev), payloadLeaf(rows, w.length, payload.length)));
}

/**
 * Writes one record's row with its hash and prev_hash left open (sealRow fills them in) and
 * returns where its hash goes: rows can be written before the link they follow is known.
 */
export function writeRow(w: RowBinaryWriter, chainId: string, seq: number, payload: Uint8Array, c: RecordColumns, sourceNext = 0): number {
  w.uint64(sourceNext).string(chainId);
  const slot = w.skip(64); // hash, prev_hash
  w.uint64(seq).string(c.event_id).string(c.event_type).int64(c.time).string(c.session_id)
    .string(c.subject).string(c.target).string(c.text).string(c.body).bytes(payload);
  return slot;
}

/**
 * writeRow for an event, with its columns taken straight from it (recordColumns' values): the
 * body's JSON is written into the row as it is made (json-body.ts), never built as one string.
 * The ledger's path for every event; the bytes are writeRow's with recordColumns(event).
 */
export function writeEventRow(w: RowBinaryWriter, chainId: string, seq: number, payload: Uint8Array, event: AgateEvent, sourceNext = 0): number {
  w.uint64(sourceNext).string(chainId);
  const slot = w.skip(64); // hash, prev_hash
  w.uint64(seq).string(event.event_id).string(event.type).int64(event.time).string(event.session_id)
    .string(subjectOf(event)).string('target' in event ? event.target : '').string(event.type === 'Command' ? event.text : '');
  writeJsonBody(w, event);
  w.bytes(payload);
  return slot;
}

/**
 * The RFC 9162 leaf hash of the payload that ends a row at `end`: the byte before the payload
 * (its length's last byte) briefly takes the 0x00 prefix, so no copy is made.
 */
export function payloadLeaf(rows: Buffer, end: number, payloadLength: number): HashText {
  const start = end - payloadLength;
  const before = rows[start - 1]!;
  rows[start - 1] = 0x00;
  const leaf = sha256Text(rows.subarray(start - 1, end));
  rows[start - 1] = before;
  return leaf;
}

/**
 * Completes the row whose hash slot is at `slot` and whose payload (with leaf hash `leaf`)
 * ends it at `end`: writes `prev` as its prev_hash, hashes the link, writes it in the slot and
 * returns it.
 */
export function sealRow(rows: Buffer, slot: number, end: number, payloadLength: number, prev: HashText, leaf: HashText): HashText {
  rows.write(prev, slot + 32, 'latin1');
  // The hash slot's last byte lends itself to the 0x02 prefix and the 32 bytes from the
  // payload's length on to the leaf hash, so the link is one hash over contiguous bytes; then
  // those bytes are put back and the slot takes the link.
  rows[slot + 31] = LINK_PREFIX;
  const bound = end - payloadLength - varintSize(payloadLength);
  let link: HashText;
  if (bound + 32 <= rows.length) {
    const kept = rows.toString('latin1', bound, bound + 32);
    rows.write(leaf, bound, 'latin1');
    link = sha256Text(rows.subarray(slot + 31, bound + 32));
    rows.write(kept, bound, 'latin1');
  } else {
    link = sha256Text(Buffer.concat([rows.subarray(slot + 31, bound), hashBytes(leaf)])); // a short payload at the end of the rows
  }
  rows.write(link, slot, 'latin1');
  return link;
}


/** The RFC 9162 leaf hash of a stored row, in ClickHouse SQL. */
export const LEAF_SQL = `SHA256(concat(unhex('00'), payload))`;

/**
 * The link hash recomputed from a stored row, in ClickHouse SQL (must match sealRow). The
 * engine's own RowBinary serializer (formatRow) rebuilds the row's bytes from prev_hash to
 * body exactly as they were inserted (LowCardinality columns travel as plain strings), so no
 * length prefix is rebuilt by hand in SQL; measured 5-15 % faster per verified page than
 * concatenating the columns with SQL-built LEB128 lengths. The engine computes LEAF_SQL once
 * for a query that also reads the leaves for the tree.
 */
export const LINK_SQL = `SHA256(concat(unhex('02'), formatRow('RowBinary', ${LINKED_COLUMNS.join(', ')}), ${LEAF_SQL}))`;

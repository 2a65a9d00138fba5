import { crc32c } from './crc32c.js';

/*
 * The embedded log's file format, version 1:
 *   file header (16 bytes): "agatelog" | version uint32 BE | CRC-32C of the 12 bytes before
 *   record frame:           length uint32 BE | CRC-32C uint32 BE | record (length bytes)
 * The frame's CRC covers the length bytes and the record, so a torn write, a flipped bit or a
 * frame read from the wrong offset is caught, and a length of 0 marks the end of the records
 * (the log writes zeros ahead of them; no record is empty). Logs from before version 1 (bare
 * length-prefixed records, no header) are refused by name, not guessed at.
 *
 * The log is a directory of segments, each one such file, named by its base offset (20 digits,
 * `.log`): the log-wide offset of its first record. A record at byte p of the file of the
 * segment with base B has the offset B + p - FILE_HEADER, so offsets run on from one segment to
 * the next without a gap and a consumer's committed position means the same whichever segment
 * holds it. The first segment's base is FILE_HEADER: a log from before segments (one
 * `events.log`) is that segment, its offsets unchanged. Every segment but the last is sealed: cut
 * to its records, fsynced, and described by a seal file beside it (`<base>.seal`):
 *   "agateseg" | version uint32 BE | base uint64 BE | end uint64 BE | records uint64 BE |
 *   sealed at (ms since the epoch) uint64 BE | CRC-32C of the 44 bytes before
 * A start reads the seals and checks each file's size against them; it scans only the last
 * segment, the one a crash can have torn.
 */

const LOG_MAGIC = Buffer.from('agatelog', 'latin1');
const LOG_VERSION = 1;
export const FILE_HEADER = 16;
export const FRAME_HEADER = 8;
export const MAX_RECORD = 16 * 1024 * 1024;

export function fileHeader(): Buffer {
  const h = Buffer.alloc(FILE_HEADER);
  LOG_MAGIC.copy(h, 0);
  h.writeUInt32BE(LOG_VERSION, 8);
  h.writeUInt32BE(crc32c(h.subarray(0, 12)), 12);
  return h;
}

type HeaderCheck = { kind: 'ok' } | { kind: 'empty' } | { kind: 'old-format' } | { kind: 'unknown'; why: string };

/** What the first bytes of a log file are: this format, nothing yet (all zeros or a torn header), or something else. */
export function checkFileHeader(bytes: Buffer): HeaderCheck {
  const expected = fileHeader();
  if (bytes.length >= FILE_HEADER && bytes.subarray(0, FILE_HEADER).equals(expected)) return { kind: 'ok' };
  // A header torn by a crash while the log was created: zeros, or a prefix of the header then zeros.
  if (bytes.length <= FILE_HEADER) {
    let i = 0;
    while (i < bytes.length && bytes[i] === expected[i]) i++;
    if (bytes.subarray(i).every((b) => b === 0) && (i < FILE_HEADER)) return { kind: 'empty' };
  }
  if (bytes.length >= 12 && bytes.subarray(0, 8).equals(LOG_MAGIC)) {
    const version = bytes.readUInt32BE(8);
    return { kind: 'unknown', why: version === LOG_VERSION ? 'its header fails its checksum' : `it is format version ${version}, and this Agate reads version ${LOG_VERSION}` };
  }
  return { kind: 'old-format' };
}

const SEAL_MAGIC = Buffer.from('agateseg', 'latin1');
const SEAL_SIZE = 48;

/** What a seal says about its segment: offsets are log-wide. */
export interface Seal {
  base: number;
  /** The offset just past the segment's last record: the next segment's base. */
  end: number;
  records: number;
  sealedAt: number;
}

export function encodeSeal(seal: Seal): Buffer {
  const b = Buffer.alloc(SEAL_SIZE);
  SEAL_MAGIC.copy(b, 0);
  b.writeUInt32BE(LOG_VERSION, 8);
  b.writeBigUInt64BE(BigInt(seal.base), 12);
  b.writeBigUInt64BE(BigInt(seal.end), 20);
  b.writeBigUInt64BE(BigInt(seal.records), 28);
  b.writeBigUInt64BE(BigInt(seal.sealedAt), 36);
  b.writeUInt32BE(crc32c(b.subarray(0, 44)), 44);
  return b;
}

/** The seal in `bytes`, or why it is none. */
export function decodeSeal(bytes: Buffer): Seal | { bad: string } {
  if (bytes.length !== SEAL_SIZE) return { bad: `${bytes.length} bytes, not ${SEAL_SIZE}` };
  if (!bytes.subarray(0, 8).equals(SEAL_MAGIC) || bytes.readUInt32BE(8) !== LOG_VERSION) return { bad: 'not a seal of this format version' };
  if (crc32c(bytes.subarray(0, 44)) !== bytes.readUInt32BE(44)) return { bad: 'it fails its CRC-32C' };
  const n = (at: number) => Number(bytes.readBigUInt64BE(at));
  return { base: n(12), end: n(20), records: n(28), sealedAt: n(36) };
}

/** The file name of the segment with base offset `base`, and of its seal. */
export function segmentName(base: number, kind: 'log' | 'seal'): string {
  return `${String(base).padStart(20, '0')}.${kind}`;
}

/** The base offset a segment or seal file name carries, or undefined for any other name. */
export function segmentBase(name: string, kind: 'log' | 'seal'): number | undefined {
  const m = /^([0-9]{20})\.(log|seal)$/.exec(name);
  if (m === null || m[2] !== kind) return undefined;
  const base = Number(m[1]);
  return Number.isSafeInteger(base) ? base : undefined;
}

/** The frame header for `record`. */
export function frameHeader(record: Uint8Array): Buffer {
  const h = Buffer.allocUnsafe(FRAME_HEADER);
  h.writeUInt32BE(record.length, 0);
  h.writeUInt32BE(crc32c(record, crc32c(h.subarray(0, 4))), 4);
  return h;
}

export type FrameCheck =
  | { kind: 'record'; length: number }
  /** A zero length: the zeros written ahead of the records. */
  | { kind: 'end' }
  /** The frame does not fit in the bytes given (read more, or the log ends in a torn frame). */
  | { kind: 'short'; length: number }
  | { kind: 'bad'; why: string };

/** Checks the frame at `at` in `bytes`. */
export function checkFrame(bytes: Buffer, at: number): FrameCheck {
  if (at + FRAME_HEADER > bytes.length) return { kind: 'short', length: -1 };
  const length = bytes.readUInt32BE(at);
  if (length === 0) return bytes.readUInt32BE(at + 4) === 0 ? { kind: 'end' } : { kind: 'bad', why: 'an empty record with a checksum' };
  if (length > MAX_RECORD) return { kind: 'bad', why: `a length of ${length} bytes (at most ${MAX_RECORD})` };
  if (at + FRAME_HEADER + length > bytes.length) return { kind: 'short', length };
  const crc = crc32c(bytes.subarray(at + FRAME_HEADER, at + FRAME_HEADER + length), crc32c(bytes.subarray(at, at + 4)));
  return crc === bytes.readUInt32BE(at + 4) ? { kind: 'record', length } : { kind: 'bad', why: 'a record that fails its CRC-32C' };
}

/**
 * The whole, checked records of a log file's bytes, read while it is written (tests): the file
 * header first, then records up to the end marker or the first frame not there in full yet.
 */
export function recordsIn(bytes: Buffer): Buffer[] {
  const out: Buffer[] = [];
  if (checkFileHeader(bytes).kind !== 'ok') return out;
  for (let at = FILE_HEADER; ; ) {
    const f = checkFrame(bytes, at);
    if (f.kind !== 'record') return out;
    out.push(bytes.subarray(at + FRAME_HEADER, at + FRAME_HEADER + f.length));
    at += FRAME_HEADER + f.length;
  }
}

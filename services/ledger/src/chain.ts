import { createHash } from 'node:crypto';

/** The previous hash of a chain's first record. */
export const GENESIS = Buffer.alloc(32).toString('hex');

/** RFC 9162 leaf hash: SHA-256(0x00 || encoded event). */
export function leafHash(payload: Buffer): Buffer {
  return createHash('sha256').update(Buffer.of(0x00)).update(payload).digest();
}

/**
 * A chain link: SHA-256(0x02 || previous hash || sequence as 8 bytes big-endian || leaf hash).
 * The 0x02 prefix keeps links apart from RFC 9162 leaves (0x00) and tree nodes (0x01); binding
 * the sequence makes reordering and renumbering detectable.
 */
export function linkHash(prevHex: string, seq: number, payload: Buffer): string {
  const seqBytes = Buffer.alloc(8);
  seqBytes.writeBigUInt64BE(BigInt(seq));
  return createHash('sha256').update(Buffer.of(0x02)).update(Buffer.from(prevHex, 'hex')).update(seqBytes).update(leafHash(payload)).digest('hex');
}

/** JSON with object keys sorted, so two encodings of equal data compare equal as strings. */
export function canonicalJson(value: unknown): string {
  return JSON.stringify(value, (_key, v: unknown) =>
    v !== null && typeof v === 'object' && !Array.isArray(v) ? Object.fromEntries(Object.entries(v as object).sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0))) : v,
  );
}

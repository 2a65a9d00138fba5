import { createHash } from 'node:crypto';

/**
 * Test reference only: RFC 9162 2.1.1 MTH written top-down straight from the RFC, with its own
 * hashing, so a bug shared with merkle.ts cannot hide.
 */
export function naiveMth(data: readonly Buffer[]): Buffer {
  const sha = (...parts: Buffer[]) => createHash('sha256').update(Buffer.concat(parts)).digest();
  if (data.length === 0) return sha();
  if (data.length === 1) return sha(Buffer.of(0), data[0]!);
  let k = 1;
  while (k << 1 < data.length) k <<= 1;
  return sha(Buffer.of(1), naiveMth(data.slice(0, k)), naiveMth(data.slice(k)));
}


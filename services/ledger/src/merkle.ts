import { createHash, hash } from 'node:crypto';

/*
 * RFC 9162 (Certificate Transparency v2) Merkle tree hashing, section 2.1.1:
 *   leaf:  SHA-256(0x00 || data)
 *   node:  SHA-256(0x01 || left || right)
 *   MTH of n > 1 leaves splits at k, the largest power of two smaller than n.
 * Pure functions only; proofs are in proofs.ts, the incremental tree in compact-range.ts.
 */

export const HASH_SIZE = 32;
const LEAF_PREFIX = Buffer.of(0x00);
const NODE_PREFIX = Buffer.of(0x01);

/** SHA-256 of the empty string: the root of a tree with no leaves. */
export const EMPTY_ROOT = createHash('sha256').digest();

// One-shot hashing of one buffer costs about half of a createHash() with several updates.
export function leafHash(data: Uint8Array): Buffer {
  return hash('sha256', Buffer.concat([LEAF_PREFIX, data]), 'buffer');
}

/** 0x01 || left || right for 32-byte children, reused: hashing is synchronous. */
const NODE_INPUT = Buffer.concat([NODE_PREFIX, Buffer.alloc(2 * HASH_SIZE)]);

export function nodeHash(left: Uint8Array, right: Uint8Array): Buffer {
  if (left.length !== HASH_SIZE || right.length !== HASH_SIZE) return hash('sha256', Buffer.concat([NODE_PREFIX, left, right]), 'buffer');
  NODE_INPUT.set(left, 1);
  NODE_INPUT.set(right, 1 + HASH_SIZE);
  return hash('sha256', NODE_INPUT, 'buffer');
}

/**
 * A SHA-256 hash held as a latin1 string, one character per byte. Node's hash() allocates an
 * ArrayBuffer for every Buffer it returns, and that costs more than hashing 64 bytes (measured:
 * 0.95 µs per node hash into a Buffer, 0.45 µs into a string written back into a buffer); a
 * string lives on the JS heap. The append path's per-record hashes (chain.ts sealRow,
 * compact-range.ts) are HashTexts; Buffers are made only where a hash leaves it.
 */
export type HashText = string & { readonly __sha256: unique symbol };

/** SHA-256 of `data` as a HashText. */
export const sha256Text = (data: Uint8Array): HashText => hash('sha256', data, 'binary') as HashText; // 'binary' is latin1

/** A 32-byte hash as a HashText. */
export function hashText(bytes: Uint8Array): HashText {
  if (bytes.length !== HASH_SIZE) throw new RangeError(`a hash is ${HASH_SIZE} bytes, not ${bytes.length}`);
  return Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength).toString('latin1') as HashText;
}

/** A HashText's bytes as a Buffer. */
export const hashBytes = (text: HashText): Buffer => Buffer.from(text, 'latin1');

/** nodeHash over HashTexts. */
export function nodeHashText(left: HashText, right: HashText): HashText {
  NODE_INPUT.write(left, 1, 'latin1');
  NODE_INPUT.write(right, 1 + HASH_SIZE, 'latin1');
  return sha256Text(NODE_INPUT);
}

/** The largest power of two strictly smaller than n (n > 1). */
export function splitPoint(n: number): number {
  let k = 1;
  while (k * 2 < n) k *= 2;
  return k;
}

/**
 * The root of the tree over already-hashed leaves, bottom-up: pair neighbours, carry an odd
 * last node up unchanged. That gives the same tree as RFC 9162's top-down split.
 */
export function rootFromLeafHashes(leaves: readonly Buffer[]): Buffer {
  if (leaves.length === 0) return EMPTY_ROOT;
  let level = leaves.slice();
  while (level.length > 1) {
    const next: Buffer[] = [];
    for (let i = 0; i + 1 < level.length; i += 2) next.push(nodeHash(level[i]!, level[i + 1]!));
    if (level.length % 2 === 1) next.push(level[level.length - 1]!);
    level = next;
  }
  return level[0]!;
}

import { HASH_SIZE, nodeHash, splitPoint } from './merkle.js';

/*
 * RFC 9162 inclusion and consistency proofs (sections 2.1.3 and 2.1.4). Generation is split in
 * two: the pure functions below say WHICH leaf ranges' subtree hashes a proof needs, and the
 * caller hashes those ranges from wherever the leaves live (memory, the store).
 */

/** A half-open range of leaf indices [lo, hi). */
export type LeafRange = readonly [lo: number, hi: number];

/** The ranges whose hashes form the inclusion proof of leaf `index` in a tree of `size` (PATH). */
export function inclusionRanges(index: number, size: number): LeafRange[] {
  if (!(index >= 0 && index < size)) throw new RangeError(`leaf ${index} is not in a tree of ${size}`);
  const out: LeafRange[] = [];
  const walk = (m: number, lo: number, hi: number): void => {
    if (hi - lo <= 1) return;
    const k = splitPoint(hi - lo);
    if (m < k) {
      walk(m, lo, lo + k);
      out.push([lo + k, hi]);
    } else {
      walk(m - k, lo + k, hi);
      out.push([lo, lo + k]);
    }
  };
  walk(index, 0, size);
  return out;
}

/** The ranges whose hashes form the consistency proof from `oldSize` to `newSize` (PROOF). */
export function consistencyRanges(oldSize: number, newSize: number): LeafRange[] {
  if (!(oldSize > 0 && oldSize <= newSize)) throw new RangeError(`no consistency proof from ${oldSize} to ${newSize}`);
  const out: LeafRange[] = [];
  const sub = (m: number, lo: number, hi: number, whole: boolean): void => {
    if (m === hi - lo) {
      if (!whole) out.push([lo, hi]);
      return;
    }
    const k = splitPoint(hi - lo);
    if (m <= k) {
      sub(m, lo, lo + k, whole);
      out.push([lo + k, hi]);
    } else {
      sub(m - k, lo + k, hi, false);
      out.push([lo, lo + k]);
    }
  };
  sub(oldSize, 0, newSize, true);
  return out;
}

const odd = (n: number) => n % 2 === 1;
const half = (n: number) => Math.floor(n / 2); // sizes may exceed 2^31, so no bit shifts

/** Root implied by an inclusion proof (RFC 9162 2.1.3.2), or null when the proof is malformed. */
export function rootFromInclusionProof(index: number, size: number, leaf: Buffer, proof: readonly Buffer[]): Buffer | null {
  if (!(index >= 0 && index < size) || leaf.length !== HASH_SIZE) return null;
  let fn = index;
  let sn = size - 1;
  let r = leaf;
  for (const p of proof) {
    if (sn === 0 || p.length !== HASH_SIZE) return null;
    if (odd(fn) || fn === sn) {
      r = nodeHash(p, r);
      while (!odd(fn) && fn !== 0) {
        fn = half(fn);
        sn = half(sn);
      }
    } else {
      r = nodeHash(r, p);
    }
    fn = half(fn);
    sn = half(sn);
  }
  return sn === 0 ? r : null;
}

/** True when `proof` shows leaf `leaf` at `index` in the tree of `size` with root `root`. */
export function verifyInclusion(index: number, size: number, leaf: Buffer, proof: readonly Buffer[], root: Buffer): boolean {
  const r = rootFromInclusionProof(index, size, leaf, proof);
  return r !== null && r.equals(root);
}

/** True when the tree of `newSize` with `newRoot` extends the one of `oldSize` with `oldRoot` (RFC 9162 2.1.4.2). */
export function verifyConsistency(oldSize: number, newSize: number, oldRoot: Buffer, newRoot: Buffer, proof: readonly Buffer[]): boolean {
  if (!(oldSize > 0 && oldSize <= newSize) || proof.some((p) => p.length !== HASH_SIZE)) return false;
  if (oldSize === newSize) return proof.length === 0 && oldRoot.equals(newRoot);
  // A power-of-two old tree is itself a subtree of the new one, so its root starts the walk.
  const path = isPowerOfTwo(oldSize) ? [oldRoot, ...proof] : [...proof];
  if (path.length === 0) return false;
  let fn = oldSize - 1;
  let sn = newSize - 1;
  while (odd(fn)) {
    fn = half(fn);
    sn = half(sn);
  }
  let fr = path[0]!;
  let sr = path[0]!;
  for (const c of path.slice(1)) {
    if (sn === 0) return false;
    if (odd(fn) || fn === sn) {
      fr = nodeHash(c, fr);
      sr = nodeHash(c, sr);
      while (!odd(fn) && fn !== 0) {
        fn = half(fn);
        sn = half(sn);
      }
    } else {
      sr = nodeHash(sr, c);
    }
    fn = half(fn);
    sn = half(sn);
  }
  return sn === 0 && fr.equals(oldRoot) && sr.equals(newRoot);
}

function isPowerOfTwo(n: number): boolean {
  while (n > 1 && n % 2 === 0) n /= 2;
  return n === 1;
}

import { AgateError, ErrorCode } from '../../../core/src/errors.js';
import type { Store } from '../../../core/src/store/store.js';
import { LEAF_SQL } from './chain.js';
import { CompactRange as CompactRangeImpl, type CompactRange } from './compact-range.js';
import { EMPTY_ROOT } from './merkle.js';

/**
 * The RFC 9162 root of leaves [lo, hi) of a chain, hashed by the engine (native SHA-256 on its
 * threads): whole aligned subtrees of SUBTREE leaves come back as their roots, the rest as
 * leaf hashes, and this process folds what comes back, a chunk at a time.
 */
export async function rangeRoot(store: Store, chainId: string, lo: number, hi: number): Promise<Buffer> {
  if (hi <= lo) return EMPTY_ROOT;
  const tree = new CompactRangeImpl();
  const fail = (from: number, to: number) => new AgateError(ErrorCode.LEDGER_CHAIN_BROKEN, `records ${from + 1}..${to} of chain ${chainId} are not stored exactly once; run agate verify`);
  // Whole subtrees fold in only at multiples of SUBTREE, counted from lo and from the first leaf
  // alike; a few are cheaper as leaves (the engine's query has a fixed cost of tens of ms).
  let whole = lo % SUBTREE === 0 ? hi - ((hi - lo) % SUBTREE) : lo;
  if (whole - lo < MIN_ENGINE_SUBTREES * SUBTREE) whole = lo;
  for (let from = lo; from < whole; from += CHUNK) {
    const to = Math.min(whole, from + CHUNK);
    const roots = await subtreeRoots(store, chainId, from, to);
    if (roots.length !== (to - from) / SUBTREE) throw fail(from, to);
    for (const root of roots) tree.pushSubtree(root, SUBTREE);
  }
  for (let from = whole; from < hi; from += CHUNK) {
    const to = Math.min(hi, from + CHUNK);
    const leaves = await leafHashes(store, chainId, from, to);
    if (leaves.length !== to - from) throw fail(from, to);
    for (const leaf of leaves) tree.push(leaf);
  }
  return tree.root();
}

const CHUNK = 1 << 18;
/** Leaves per subtree the engine hashes whole: 2^SUBTREE_LEVELS. */
const SUBTREE_LEVELS = 8;
export const SUBTREE = 1 << SUBTREE_LEVELS;
/** Below this many whole subtrees, hashing leaves here beats the engine's per-query cost. */
export const MIN_ENGINE_SUBTREES = 16;

/**
 * Settings for one engine pass over a page of records grouped into subtrees. The engine hands a
 * thread no less than about 240 MiB of (uncompressed) column data, which a page of 2^18 records
 * (~1 KB each) does not reach, so a page was read and hashed on one thread of two. (Two-level
 * aggregation, which would also spread the work after GROUP BY over the threads, cuts a page's
 * few thousand groups into 256 tiny blocks each and cost more than it gained: verify-scan.ts
 * splits large pages instead.)
 */
export const SCAN_SETTINGS = 'SETTINGS merge_tree_min_rows_for_concurrent_read = 1, merge_tree_min_bytes_for_concurrent_read = 1';

/**
 * The roots of the complete aligned subtrees of SUBTREE leaves covering leaves [from, to), both
 * multiples of SUBTREE, in order; [] when any of them is not stored exactly once (a gap, a
 * duplicate), which callers report. The engine puts each subtree's leaf hashes in bit-reversed
 * order of their positions and folds them (foldLevelsSql; a short group is padded so the
 * folding runs, and its root is discarded); about three times faster than folding leaves in JS.
 */
export async function subtreeRoots(store: Store, chainId: string, from: number, to: number): Promise<Buffer[]> {
  if (from % SUBTREE !== 0 || to % SUBTREE !== 0) throw new RangeError(`subtree range [${from}, ${to}) is not aligned to ${SUBTREE}`);
  if (to <= from) return [];
  // Sorted by reversed position, a whole subtree's keys are each position exactly once.
  const q = `SELECT g, n = ${SUBTREE} AND rows.1 = ${POSITIONS_SQL} AS whole, arrayResize(rows.2, ${SUBTREE}, ${ZERO_HASH_SQL}) AS l FROM (
      SELECT intDiv(seq - 1, ${SUBTREE}) AS g, count() AS n, arraySort(x -> x.1, groupArray((${REVERSED_POSITION_SQL}, ${LEAF_SQL}))) AS rows
      FROM agate.ledger WHERE chain_id = {chain:String} AND seq > {from:UInt64} AND seq <= {to:UInt64} GROUP BY g)`;
  const bytes = await store.queryRowBinary(`SELECT toUInt64(g) AS g, toUInt8(whole), l[1] AS root FROM (${foldLevelsSql(q)}) ORDER BY g ${SCAN_SETTINGS}`, { chain: chainId, from, to });
  const out: Buffer[] = [];
  const first = from / SUBTREE;
  for (let at = 0; at + 41 <= bytes.length; at += 41) {
    const g = Number(bytes.readBigUInt64LE(at));
    if (g !== first + out.length || bytes[at + 8] !== 1) return [];
    out.push(bytes.subarray(at + 9, at + 41));
  }
  return out.length === (to - from) / SUBTREE ? out : [];
}

/** An all-zero hash: the padding of a short subtree, whose root is discarded. */
export const ZERO_HASH_SQL = "toFixedString('', 32)";

/** i with its SUBTREE_LEVELS bits in reverse order. */
function reverseBits(i: number): number {
  let r = 0;
  for (let b = 0; b < SUBTREE_LEVELS; b++) r |= ((i >> b) & 1) << (SUBTREE_LEVELS - 1 - b);
  return r;
}

const positions = (f: (i: number) => number) => `[${Array.from({ length: SUBTREE }, (_, i) => f(i)).join(',')}]::Array(UInt16)`;
/** 0 .. SUBTREE-1 in order, as SQL. */
const POSITIONS_SQL = positions((i) => i);
/** Where each position of a subtree goes in bit-reversed order, as SQL (an involution). */
export const REVERSED_SQL = positions(reverseBits);
/** A record's place among its subtree's leaves in bit-reversed order, in SQL. */
const REVERSED_POSITION_SQL = `${REVERSED_SQL}[bitAnd(seq - 1, ${SUBTREE - 1}) + 1]`;

/**
 * Wraps a query whose column `l` holds a subtree's SUBTREE hashes in bit-reversed order of their
 * positions (leaf i at reverseBits(i)) with one subquery per two tree levels, so `l[1]` ends as
 * the subtree root (RFC 9162 node hashes); the other columns pass through. In that order the
 * pairs of every level are the two halves of the array (l[i], l[i + half]) and the result is
 * again in bit-reversed order, so a level is two constant slices rather than picking odd and
 * even elements (index arrays, a lambda and two filters per level: measured ~10 % more of a
 * verify scan's engine time). As aliases in one SELECT the levels would be inlined into an
 * exponentially large query tree.
 */
export function foldLevelsSql(q: string): string {
  const node = (a: string, b: string) => `SHA256(concat(unhex('01'), ${a}, ${b}))`;
  const slice = (k: number, size: number) => `arraySlice(l, ${k * size + 1}, ${size})`;
  let half = SUBTREE / 2;
  for (; half >= 2; half /= 4) {
    // Two levels at once: quarters a b c d pair as (a, c) and (b, d), then those two.
    q = `SELECT * EXCEPT (l), arrayMap((a, b, c, d) -> ${node(node('a', 'c'), node('b', 'd'))}, ${[0, 1, 2, 3].map((k) => slice(k, half / 2)).join(', ')}) AS l FROM (${q})`;
  }
  if (half === 1) q = `SELECT * EXCEPT (l), arrayMap((a, b) -> ${node('a', 'b')}, ${slice(0, 1)}, ${slice(1, 1)}) AS l FROM (${q})`;
  return q;
}

/** Leaf hashes of records (from, to] in seq order, 32 bytes each. */
export async function leafHashes(store: Store, chainId: string, from: number, to: number): Promise<Buffer[]> {
  const bytes = await store.queryRowBinary(`SELECT ${LEAF_SQL} FROM agate.ledger WHERE chain_id = {chain:String} AND seq > {from:UInt64} AND seq <= {to:UInt64} ORDER BY seq`, { chain: chainId, from, to });
  const out: Buffer[] = [];
  for (let i = 0; i + 32 <= bytes.length; i += 32) out.push(bytes.subarray(i, i + 32));
  // A record with a duplicated sequence number yields an extra leaf; callers compare counts.
  return out;
}

type RangeRoot = (store: Store, chainId: string, lo: number, hi: number) => Promise<Buffer>;

/**
 * Appends leaves [lo, hi) to the tree as complete aligned subtrees, each hashed by the store
 * from its leaves (or by `root`, e.g. from stored nodes).
 */
export async function pushRange(store: Store, chainId: string, tree: CompactRange, lo: number, hi: number, root: RangeRoot = rangeRoot): Promise<void> {
  while (lo < hi) {
    let size = 1;
    while ((lo === 0 || lo % (size * 2) === 0) && lo + size * 2 <= hi) size *= 2;
    tree.pushSubtree(await root(store, chainId, lo, lo + size), size);
    lo += size;
  }
}

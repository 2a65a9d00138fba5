import { AgateError, ErrorCode } from '../../../core/src/errors.js';
import type { Store } from '../../../core/src/store/store.js';
import { LEAF_SQL } from './chain.js';
import { CompactRange as CompactRangeImpl, type CompactRange } from './compact-range.js';
import { EMPTY_ROOT } from './merkle.js';

/**
 * The RFC 9162 root of leaves [lo, hi) of a chain. The engine computes the leaf hashes
 * (native SHA-256 over the stored events) and returns them as fixed 32-byte rows; the tree
 * over them is folded here, a chunk at a time, with one node hash per leaf. Measured on the
 * embedded engine, this is about three times faster than pairing levels with GROUP BY in SQL.
 */
export async function rangeRoot(store: Store, chainId: string, lo: number, hi: number): Promise<Buffer> {
  if (hi <= lo) return EMPTY_ROOT;
  const tree = new CompactRangeImpl();
  for (let from = lo; from < hi; from += CHUNK) {
    const leaves = await leafHashes(store, chainId, from, Math.min(hi, from + CHUNK));
    for (const leaf of leaves) tree.push(leaf);
    if (leaves.length !== Math.min(hi, from + CHUNK) - from) throw new AgateError(ErrorCode.LEDGER_CHAIN_BROKEN, `records ${from + 1}..${Math.min(hi, from + CHUNK)} of chain ${chainId} are not stored exactly once; run agate verify`);
  }
  return tree.root();
}

const CHUNK = 1 << 18;

/** Leaf hashes of records (from, to] in seq order, 32 bytes each. */
export async function leafHashes(store: Store, chainId: string, from: number, to: number): Promise<Buffer[]> {
  const bytes = await store.queryRowBinary(`SELECT ${LEAF_SQL} FROM agate.ledger WHERE chain_id = {chain:String} AND seq > {from:UInt64} AND seq <= {to:UInt64} ORDER BY seq`, { chain: chainId, from, to });
  const out: Buffer[] = [];
  for (let i = 0; i + 32 <= bytes.length; i += 32) out.push(bytes.subarray(i, i + 32));
  // A record with a duplicated sequence number yields an extra leaf; callers compare counts.
  return out;
}

export type RangeRoot = (store: Store, chainId: string, lo: number, hi: number) => Promise<Buffer>;

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

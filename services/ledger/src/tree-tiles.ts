import type { Store } from '../../../core/src/store/store.js';
import type { NodeObserver } from './compact-range.js';
import { EMPTY_ROOT, hashBytes, nodeHash, rootFromLeafHashes } from './merkle.js';
import { leafHashes, MIN_ENGINE_SUBTREES, rangeRoot, SUBTREE, subtreeRoots } from './tree-sql.js';
import { tsvBytes, tsvText } from './tsv.js';

/*
 * Stored interior nodes of each chain's Merkle tree, in the spirit of C2SP tlog-tiles: the root
 * of every complete aligned subtree of 2^8, 2^16, 2^24 and 2^32 leaves, one row each in
 * `agate.tree_nodes` (chain, level, node). Any complete subtree of 2^k leaves is then a fold of
 * at most 128 stored nodes (or of at most 255 leaves below level 8), so an inclusion or
 * consistency proof reads O(log n) rows instead of hashing every leaf.
 *
 * The ledger collects nodes as its tree grows and writes them at each checkpoint (persistTiles
 * fills in from the store what a restart left out). Nodes are used only to MAKE proofs: a proof is always checked against the signed root, so a changed
 * node gives a proof that fails, never a false one. Verification never reads them.
 */

/** Levels with stored nodes: a node at level L covers 2^L leaves. */
const TILE_LEVELS = [8, 16, 24, 32] as const;
const STEP = 8; // levels between stored levels; level 8 nodes are the engine's subtrees of SUBTREE leaves

/** One stored node: the root of the `node`-th aligned subtree of 2^level leaves. */
export interface TileNode {
  level: number;
  node: number;
  hash: Buffer;
}

const LEVEL_OF_SIZE = new Map<number, number>(TILE_LEVELS.map((l) => [2 ** l, l]));

/** An observer for CompactRange appends that keeps the nodes of the stored levels as they complete. */
export function collectTiles(into: TileNode[]): NodeObserver {
  return (size, node, hash) => {
    const level = LEVEL_OF_SIZE.get(size);
    if (level !== undefined) into.push({ level, node, hash: hashBytes(hash) });
  };
}

export async function storeTiles(store: Store, chainId: string, nodes: readonly TileNode[]): Promise<void> {
  if (nodes.length === 0) return;
  const rows = nodes.map((n) => Buffer.concat([Buffer.from(`${tsvText(chainId)}\t${n.level}\t${n.node}\t`), tsvBytes(n.hash), Buffer.from('\n')]));
  await store.insertTsv('agate.tree_nodes', ['chain_id', 'level', 'node', 'hash'], Buffer.concat(rows));
}

/** Stores the nodes of every complete subtree within the first `size` leaves not stored yet. */
export async function persistTiles(store: Store, chainId: string, size: number): Promise<void> {
  for (const level of TILE_LEVELS) {
    const end = Math.floor(size / 2 ** level); // complete nodes at this level
    let next = await storedCount(store, chainId, level);
    while (next < end) {
      // Up to 1,024 nodes per round: 262,144 leaves (or lower-level nodes) in one read.
      const upto = Math.min(end, next + 1024);
      const roots = level !== STEP ? await foldNodes(store, chainId, level - STEP, next, upto)
        : upto - next >= MIN_ENGINE_SUBTREES ? await subtreeRoots(store, chainId, next * SUBTREE, upto * SUBTREE)
        : await foldLeaves(store, chainId, next, upto);
      if (roots.length !== upto - next) return; // a gap in the chain or lower level: verification reports it
      await storeTiles(store, chainId, roots.map((hash, i) => ({ level, node: next + i, hash })));
      next = upto;
    }
  }
}

/** Nodes [from, to) of the level 8 above `below`, each folded from 256 stored nodes; [] when some are missing. */
async function foldNodes(store: Store, chainId: string, below: number, from: number, to: number): Promise<Buffer[]> {
  const per = 2 ** STEP;
  const nodes = await nodesAt(store, chainId, below, from * per, to * per);
  if (nodes.length !== (to - from) * per) return [];
  return Array.from({ length: to - from }, (_, i) => rootFromLeafHashes(nodes.slice(i * per, (i + 1) * per)));
}

/** Level 8 nodes [from, to) folded here from their leaves; [] when some are missing. */
async function foldLeaves(store: Store, chainId: string, from: number, to: number): Promise<Buffer[]> {
  const leaves = await leafHashes(store, chainId, from * SUBTREE, to * SUBTREE);
  if (leaves.length !== (to - from) * SUBTREE) return [];
  return Array.from({ length: to - from }, (_, i) => rootFromLeafHashes(leaves.slice(i * SUBTREE, (i + 1) * SUBTREE)));
}

/** How many nodes of a level are stored: they are written in order, so the highest index + 1. */
async function storedCount(store: Store, chainId: string, level: number): Promise<number> {
  const [row] = await store.query<{ n: string }>(
    'SELECT if(count() = 0, 0, max(node) + 1) AS n FROM agate.tree_nodes WHERE chain_id = {chain:String} AND level = {level:UInt8}',
    { chain: chainId, level },
  );
  return Number(row?.n ?? 0);
}

/** Stored nodes of one level with index in [from, to), in order, one per index. */
async function nodesAt(store: Store, chainId: string, level: number, from: number, to: number): Promise<Buffer[]> {
  const bytes = await store.queryRowBinary(
    `SELECT any(hash) FROM agate.tree_nodes WHERE chain_id = {chain:String} AND level = {level:UInt8} AND node >= {from:UInt64} AND node < {to:UInt64}
     GROUP BY node ORDER BY node`,
    { chain: chainId, level, from, to },
  );
  const out: Buffer[] = [];
  for (let i = 0; i + 32 <= bytes.length; i += 32) out.push(bytes.subarray(i, i + 32));
  return out;
}

/** The root of the complete aligned subtree of `size` (a power of two) leaves starting at `lo`. */
async function subtreeRoot(store: Store, chainId: string, lo: number, size: number): Promise<Buffer> {
  const level = [...TILE_LEVELS].reverse().find((l) => 2 ** l <= size);
  if (level !== undefined) {
    const from = lo / 2 ** level;
    const count = size / 2 ** level;
    const nodes = await nodesAt(store, chainId, level, from, from + count);
    if (nodes.length === count) return rootFromLeafHashes(nodes);
  }
  // Below the lowest level, or nodes not stored (yet): hash the leaves.
  return rangeRoot(store, chainId, lo, lo + size);
}

/**
 * The RFC 9162 root of leaves [lo, hi), from stored nodes where they exist. `lo` must be aligned
 * to the largest power of two not above hi - lo, as every range of a proof is (RFC 9162 2.1.3,
 * 2.1.4); other ranges are hashed from the leaves.
 */
export async function tiledRangeRoot(store: Store, chainId: string, lo: number, hi: number): Promise<Buffer> {
  if (hi <= lo) return EMPTY_ROOT;
  let top = 1;
  while (top * 2 <= hi - lo) top *= 2;
  if (lo % top !== 0) return rangeRoot(store, chainId, lo, hi);
  // The range splits into complete subtrees, largest first (the bits of its size); its root folds them from the right.
  const parts: [number, number][] = [];
  for (let at = lo, size = top; at < hi; size /= 2) if (at + size <= hi) (parts.push([at, size]), (at += size));
  const roots = await Promise.all(parts.map(([at, size]) => subtreeRoot(store, chainId, at, size)));
  let acc = roots[roots.length - 1]!;
  for (let i = roots.length - 2; i >= 0; i--) acc = nodeHash(roots[i]!, acc);
  return acc;
}

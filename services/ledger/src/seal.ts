import { payloadLeaf, sealRow } from './chain.js';
import type { HashText } from './merkle.js';
import type { CompactRange } from './compact-range.js';
import { BLOCK_SIZE } from './schema.js';
import { collectTiles, type TileNode } from './tree-tiles.js';

/** Where a chain stands: the last link hash and the tree of its records. */
export interface ChainState {
  prev: HashText;
  tree: CompactRange;
}

/**
 * Seals rows written by writeRow, in order: each one's link hash chaining it to the row before
 * (written into the row), its Merkle leaf hash, and the tree's growth. `marks` holds three
 * numbers per row: its hash slot, its end, its payload's length. Moves `state` past the rows;
 * returns the stored-level tree nodes they complete and the chain at each block boundary.
 */
export function sealRows(rows: Buffer, marks: Int32Array, firstSeq: number, state: ChainState): { tiles: TileNode[]; blocks: { size: number; head: HashText; tree: CompactRange }[] } {
  if (state.tree.size !== firstSeq - 1) throw new Error(`rows from ${firstSeq} do not follow the chain's ${state.tree.size} records`);
  const tiles: TileNode[] = [];
  const onNode = collectTiles(tiles);
  const blocks: { size: number; head: HashText; tree: CompactRange }[] = [];
  for (let i = 0, seq = firstSeq; i < marks.length; i += 3, seq++) {
    const [slot, end, payloadLength] = [marks[i]!, marks[i + 1]!, marks[i + 2]!];
    const leaf = payloadLeaf(rows, end, payloadLength);
    state.prev = sealRow(rows, slot, end, payloadLength, state.prev, leaf);
    state.tree.push(leaf, onNode);
    if (seq % BLOCK_SIZE === 0) blocks.push({ size: seq, head: state.prev, tree: state.tree.clone() });
  }
  return { tiles, blocks };
}

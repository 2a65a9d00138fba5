import { hash } from 'node:crypto';
import { parentPort } from 'node:worker_threads';
import { sealRow } from './chain.js';
import { CompactRange } from './compact-range.js';
import type { SealedRows, SealJob } from './row-sealer.js';
import { BLOCK_SIZE } from './schema.js';
import { collectTiles, type TileNode } from './tree-tiles.js';

/*
 * The ledger's hashing thread (row-sealer.ts): for each row written by writeRow, in order, the
 * link hash chaining it to the row before (written into the row), its Merkle leaf hash and the
 * tree's growth. Keeps each chain's head between jobs so the ledger can write the next rows
 * while these are sealed.
 */

const chains = new Map<string, { prev: Buffer; tree: CompactRange }>();

function seal(job: SealJob): SealedRows {
  const state = job.from === undefined ? chains.get(job.chain) : { prev: Buffer.from(job.from.prev), tree: CompactRange.fromJSON(job.from.frontier) };
  if (state === undefined) throw new Error(`no head for chain ${job.chain}: its first job must say where it starts`);
  if (state.tree.size !== job.firstSeq - 1) throw new Error(`rows from ${job.firstSeq} do not follow the chain's ${state.tree.size} records`);
  chains.delete(job.chain); // until sealed: a failed job leaves no head to continue from
  const rows = Buffer.from(job.rows, 0, job.length);
  const { marks } = job;
  const tiles: TileNode[] = [];
  const onNode = collectTiles(tiles);
  const blocks: SealedRows['blocks'] = [];
  let { prev } = state;
  const { tree } = state;
  for (let i = 0, seq = job.firstSeq; i < marks.length; i += 3, seq++) {
    const [slot, end, payloadLength] = [marks[i]!, marks[i + 1]!, marks[i + 2]!];
    prev = sealRow(rows, slot, end, prev);
    tree.push(leafHashInRow(rows, end - payloadLength, end), onNode);
    if (seq % BLOCK_SIZE === 0) blocks.push({ size: seq, head: own(prev), frontier: tree.toJSON() });
  }
  chains.set(job.chain, { prev, tree });
  return { rows: job.rows, length: job.length, head: own(prev), frontier: tree.toJSON(), tiles: tiles.map((t) => ({ ...t, hash: own(t.hash) })), blocks };
}

/** A copy with memory of its own: a view into a shared pool would carry the whole pool across threads. */
const own = (b: Uint8Array) => new Uint8Array(b);

/**
 * RFC 9162 leaf hash of rows[start, end): the byte before the payload (its length's last byte)
 * briefly takes the 0x00 prefix, so no copy is made.
 */
function leafHashInRow(rows: Buffer, start: number, end: number): Buffer {
  const before = rows[start - 1]!;
  rows[start - 1] = 0x00;
  const leaf = hash('sha256', rows.subarray(start - 1, end), 'buffer');
  rows[start - 1] = before;
  return leaf;
}

parentPort!.on('message', (job: SealJob) => {
  let sealed: SealedRows;
  try {
    sealed = seal(job);
  } catch (err) {
    parentPort!.postMessage({ error: err instanceof Error ? err.message : String(err) });
    return;
  }
  parentPort!.postMessage(sealed, [sealed.rows]);
});

import { parentPort } from 'node:worker_threads';
import { CompactRange } from './compact-range.js';
import { hashBytes, hashText, type HashText } from './merkle.js';
import type { SealedRows, SealJob } from './row-sealer.js';
import { sealRows, type ChainState } from './seal.js';

/*
 * The ledger's hashing thread (row-sealer.ts). Keeps each chain's head between jobs so the
 * ledger can write the next rows while these are sealed.
 */

const chains = new Map<string, ChainState>();

function seal(job: SealJob): SealedRows {
  const state = job.from === undefined ? chains.get(job.chain) : { prev: hashText(job.from.prev), tree: CompactRange.fromJSON(job.from.frontier) };
  if (state === undefined) throw new Error(`no head for chain ${job.chain}: its first job must say where it starts`);
  chains.delete(job.chain); // until sealed: a failed job leaves no head to continue from
  const { tiles, blocks } = sealRows(Buffer.from(job.rows, 0, job.length), job.marks, job.firstSeq, state);
  chains.set(job.chain, state);
  return {
    rows: job.rows, length: job.length, head: ownText(state.prev), frontier: state.tree.toJSON(),
    tiles: tiles.map((t) => ({ ...t, hash: own(t.hash) })),
    blocks: blocks.map((b) => ({ size: b.size, head: ownText(b.head), frontier: b.tree.toJSON() })),
  };
}

/** A copy with memory of its own: a view into a shared pool would carry the whole pool across threads. */
const own = (b: Uint8Array) => new Uint8Array(b);
const ownText = (t: HashText) => own(hashBytes(t));

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

import { parentPort } from 'node:worker_threads';
import { RowBinaryWriter } from '../../../core/src/store/row-binary.js';
import { EventCodec } from '../../../schemas/src/codec.js';
import { recordColumns, writeRow } from './chain.js';
import { CompactRange } from './compact-range.js';
import { hashBytes, hashText, type HashText } from './merkle.js';
import type { SealedRows, SealJob } from './row-sealer.js';
import { sealRows, type ChainState } from './seal.js';

/*
 * The ledger's row thread (row-sealer.ts): decodes the events it is handed, writes their rows
 * and seals them. Keeps each chain's head between jobs so the ledger can copy the next batch
 * while these are sealed.
 */

const codec = new EventCodec();
const chains = new Map<string, ChainState>();
/** Room per row a writer starts with (records average about 800 bytes); it grows when needed. */
const ROW_BYTES = 1024;

/**
 * Writes the job's rows (chain.ts writeRow), their links left open. A record's body is the
 * decoded event, as for any event the bus reads back from its log (and as a Kafka consumer
 * always has it): the same fields as the object the proxy published, in schema order.
 */
function writeRows(job: SealJob): { rows: ArrayBuffer; length: number; marks: Int32Array } {
  const count = job.ends.length;
  const w = new RowBinaryWriter(job.memory !== undefined && job.memory.byteLength > 0 ? job.memory : Math.max(count * ROW_BYTES, 1));
  const marks = new Int32Array(count * 3);
  for (let j = 0, start = 0; j < count; j++) {
    const end = job.ends[j]!;
    const payload = Buffer.from(job.payloads, start, end - start);
    start = end;
    marks[j * 3] = writeRow(w, job.chain, job.firstSeq + j, payload, recordColumns(codec.decode(payload)), job.sources[j]!);
    marks[j * 3 + 1] = w.length;
    marks[j * 3 + 2] = payload.length;
  }
  const { memory, length } = w.transfer();
  return { rows: memory, length, marks };
}

function seal(job: SealJob): SealedRows {
  const state = job.from === undefined ? chains.get(job.chain) : { prev: hashText(job.from.prev), tree: CompactRange.fromJSON(job.from.frontier) };
  if (state === undefined) throw new Error(`no head for chain ${job.chain}: its first job must say where it starts`);
  chains.delete(job.chain); // until sealed: a failed job leaves no head to continue from
  const { rows, length, marks } = writeRows(job);
  const { tiles, blocks } = sealRows(Buffer.from(rows, 0, length), marks, job.firstSeq, state);
  chains.set(job.chain, state);
  return {
    rows, length, payloads: job.payloads, head: ownText(state.prev), frontier: state.tree.toJSON(),
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
  parentPort!.postMessage(sealed, [sealed.rows, sealed.payloads]);
});

import { Worker } from 'node:worker_threads';
import { AgateError, ErrorCode } from '../../../core/src/errors.js';

/** A compact range as it crosses threads (CompactRange.toJSON). */
type Frontier = { size: number; hash: string }[];

/** Rows of one chain written by writeRow, to be sealed in order (seal-worker.ts). */
export interface SealJob {
  chain: string;
  rows: ArrayBuffer;
  length: number;
  /** Per record, three numbers: its hash slot, the end of its row, its payload's length. */
  marks: Int32Array;
  firstSeq: number;
  /** The state the first record follows; absent, the job continues from this chain's previous job. */
  from?: { prev: Uint8Array; frontier: Frontier };
}

export interface SealedRows {
  rows: ArrayBuffer;
  length: number;
  /** The last record's link hash and the tree after it. */
  head: Uint8Array;
  frontier: Frontier;
  /** Stored-level tree nodes completed by these records (tree-tiles.ts). */
  tiles: { level: number; node: number; hash: Uint8Array }[];
  /** The chain at each block boundary crossed: where the ledger signs a checkpoint. */
  blocks: { size: number; head: Uint8Array; frontier: Frontier }[];
}

type Reply = SealedRows | { error: string };

/**
 * Seals ledger rows on a worker thread: link hashes, leaf hashes and the Merkle tree, about
 * half of the ledger's work per event, leave the event loop that proxies share. Jobs are
 * answered in the order sent. The worker is started by start() or on first use, and again after a failure,
 * which fails every job it held (the ledger's append fails and the bus redelivers the batch).
 */
export class RowSealer {
  #worker: Worker | undefined;
  readonly #pending: { resolve: (s: SealedRows) => void; reject: (e: Error) => void }[] = [];

  /** Starts the thread now (the ledger does at start, so its memory is taken before traffic comes). */
  start(): void {
    this.#worker ??= this.#start();
  }

  seal(job: SealJob): Promise<SealedRows> {
    const worker = this.#worker ?? this.#start();
    return new Promise((resolve, reject) => {
      if (this.#pending.push({ resolve, reject }) === 1) worker.ref();
      worker.postMessage(job, [job.rows, job.marks.buffer as ArrayBuffer]);
    });
  }

  async close(): Promise<void> {
    const worker = this.#worker;
    this.#worker = undefined;
    this.#failAll(new AgateError(ErrorCode.LEDGER_WORKER_FAILED, 'the ledger is stopping'));
    await worker?.terminate();
  }

  #start(): Worker {
    const worker = new Worker(new URL('./seal-worker.js', import.meta.url));
    worker.on('message', (reply: Reply) => {
      const job = this.#pending.shift();
      if (this.#pending.length === 0) worker.unref();
      if ('error' in reply) job?.reject(new AgateError(ErrorCode.LEDGER_WORKER_FAILED, `sealing ledger rows failed: ${reply.error}`, { retriable: true }));
      else job?.resolve(reply);
    });
    const lost = (why: string) => {
      if (this.#worker !== worker) return;
      this.#worker = undefined;
      this.#failAll(new AgateError(ErrorCode.LEDGER_WORKER_FAILED, `the ledger's hashing thread ${why}`, { retriable: true }));
    };
    worker.on('error', (err) => lost(`failed: ${err.message}`));
    worker.on('exit', (code) => lost(`exited with code ${code}`));
    // Referenced only while jobs are out: an idle ledger must not keep the process alive.
    worker.unref();
    this.#worker = worker;
    return worker;
  }

  #failAll(err: Error): void {
    for (const job of this.#pending.splice(0)) job.reject(err);
  }
}

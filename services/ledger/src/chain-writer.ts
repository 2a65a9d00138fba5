import { randomUUID } from 'node:crypto';
import type { Bus } from '../../../core/src/bus/bus.js';
import { describeError } from '../../../core/src/errors.js';
import type { Logger } from '../../../core/src/log.js';
import type { Store } from '../../../core/src/store/store.js';
import type { EventCodec } from '../../../schemas/src/codec.js';
import { nowMicros, type AgateEvent } from '../../../schemas/src/events.js';
import { GENESIS, RECORD_COLUMNS, RECORD_STRUCTURE, recordColumns, writeRow } from './chain.js';
import { signCheckpoint } from './checkpoint.js';
import type { CheckpointSink } from './checkpoint-sink.js';
import { CompactRange } from './compact-range.js';
import type { NoteSigner } from './note.js';
import type { RowSealer, SealJob } from './row-sealer.js';
import { pushRange } from './tree-sql.js';
import { persistTiles, storeTiles, type TileNode } from './tree-tiles.js';
import { tsvBytes, tsvText } from './tsv.js';
import { RowBinaryWriter } from '../../../core/src/store/row-binary.js';

export interface ChainWriterOptions {
  bus: Bus;
  store: Store;
  codec: EventCodec;
  chainId: string;
  logger: Logger;
  signer: NoteSigner;
  /** Signed checkpoints every `everyEvents` records (and at every block boundary). */
  everyEvents?: number;
  sinks: readonly CheckpointSink[];
  /** How many of the latest event ids are remembered to drop redeliveries. */
  dedupWindow: number;
  /** Hashes rows off the event loop; shared by the chains of one ledger. */
  sealer: RowSealer;
}

export interface Head {
  seq: number;
  hash: Buffer;
}


/** The log origin of one chain: the key name (ledger.origin) and the chain id. */
export const chainOrigin = (keyName: string, chainId: string) => `${keyName}/${chainId}`;

/**
 * Appends events to one chain: the record's Merkle leaf is the encoded event and its link
 * hash chains it to the one before. The Merkle tree is a compact range kept at the head: each
 * record adds its leaf hash and about one node hash, and the stored tree nodes (tree-tiles.ts)
 * are collected as they complete, so a checkpoint costs one signature and two small inserts
 * (the engine is asked to hash only after a restart). Signs checkpoints at a configured
 * interval and at every block boundary. Idempotent by event id within the redelivery window;
 * chain and tree state are recovered from the store on start.
 */
export class ChainWriter {
  #head: Head = { seq: 0, hash: GENESIS };
  /** The tree of the records up to the head. */
  #tree = new CompactRange();
  /** Stored-level nodes completed since the last checkpoint, written with the next one. */
  #tiles: TileNode[] = [];
  /** Whether the stored nodes may lag the tree (after a restart): the next checkpoint fills them in from the store. */
  #tilesBehind = true;
  #lastCheckpoint = 0;
  readonly #recent = new Set<string>();
  readonly #recentOrder: string[] = [];
  // Appends and checkpoints run one at a time: both read and move the head.
  #serial: Promise<unknown> = Promise.resolve();
  readonly #origin: string;
  /** Row buffers back from the engine, for the next slices: fresh ones each time made the collector run constantly. */
  readonly #rowMemory: ArrayBuffer[] = [];

  constructor(private readonly options: ChainWriterOptions) {
    this.#origin = chainOrigin(options.signer.name, options.chainId);
  }

  get origin(): string {
    return this.#origin;
  }

  /** The last appended position. */
  get head(): Readonly<Head> {
    return this.#head;
  }

  /** The tree root at the head. */
  async currentRoot(): Promise<Buffer> {
    return this.#tree.root();
  }

  /** Appends events in order; `encoded[i]`, when given, is event i's codec encoding. */
  append(batch: readonly AgateEvent[], encoded?: readonly Buffer[]): Promise<void> {
    if (encoded !== undefined && encoded.length !== batch.length) throw new RangeError(`${encoded.length} encodings for ${batch.length} events`);
    return this.#exclusive(() => this.#append(batch, encoded));
  }

  /** Signs a checkpoint of the current head unless one exists for it. */
  checkpoint(): Promise<void> {
    return this.#exclusive(async () => {
      if (this.#head.seq === 0 || this.#head.seq === this.#lastCheckpoint) return;
      await this.#publish(this.#head.seq, this.#head.hash, this.#tree);
    });
  }

  #exclusive<T>(fn: () => Promise<T>): Promise<T> {
    const run = this.#serial.then(fn, fn);
    this.#serial = run.catch(() => undefined);
    return run;
  }

  async #append(batch: readonly AgateEvent[], encoded: readonly Buffer[] | undefined): Promise<void> {
    const { store, codec, chainId } = this.options;
    const seen = new Set<string>();
    const fresh: { event: AgateEvent; payload: Buffer | undefined }[] = [];
    batch.forEach((e, i) => {
      if (!this.#recent.has(e.event_id) && !seen.has(e.event_id)) fresh.push({ event: e, payload: encoded?.[i] });
      seen.add(e.event_id);
    });
    if (fresh.length < batch.length) this.options.logger.debug('skipping redelivered events already in the ledger', { count: batch.length - fresh.length });
    if (fresh.length === 0) return;
    // Three stages overlap: this thread writes the rows of a slice while the sealer's thread
    // hashes the slice before it (links, leaves, tree) and the engine inserts the one before
    // that. Inserts stay strictly in order, and the head moves past a slice only once it is
    // stored, so a failure leaves no gap: the bus redelivers the batch and the stored slices
    // are dropped as redeliveries.
    const { sealer } = this.options;
    let seq = this.#head.seq;
    let from: SealJob['from'] = { prev: this.#head.hash, frontier: this.#tree.toJSON() };
    const blocks: [number, Buffer, CompactRange][] = [];
    let inFlight: Promise<void> = Promise.resolve();
    for (let i = 0; i < fresh.length; i += INSERT_SLICE) {
      const slice = fresh.slice(i, i + INSERT_SLICE);
      const rows = new RowBinaryWriter(this.#rowMemory.pop() ?? ROWS_CAPACITY);
      const marks = new Int32Array(slice.length * 3);
      const firstSeq = seq + 1;
      for (const [j, { event, payload: given }] of slice.entries()) {
        // In the embedded mode this loop shares the event loop with every proxy session: writing
        // a 10,000-event slice in one go would hold statements for tens of milliseconds.
        if (j > 0 && j % YIELD_EVERY === 0) await new Promise((r) => setImmediate(r));
        const payload = given ?? codec.encode(event);
        seq += 1;
        marks[j * 3] = writeRow(rows, chainId, seq, payload, recordColumns(event));
        marks[j * 3 + 1] = rows.length;
        marks[j * 3 + 2] = payload.length;
      }
      const { memory, length } = rows.transfer();
      const sealed = sealer.seal({ chain: chainId, rows: memory, length, marks, firstSeq, from });
      from = undefined;
      sealed.catch(() => undefined); // observed below, after the previous insert
      await inFlight;
      const lastSeq = seq;
      inFlight = sealed.then(async (done) => {
        await store.insertRowBinary('agate.ledger', RECORD_COLUMNS, RECORD_STRUCTURE, Buffer.from(done.rows, 0, done.length));
        this.#head = { seq: lastSeq, hash: Buffer.from(done.head) };
        this.#tree = CompactRange.fromJSON(done.frontier);
        for (const t of done.tiles) this.#tiles.push({ level: t.level, node: t.node, hash: Buffer.from(t.hash) });
        for (const b of done.blocks) blocks.push([b.size, Buffer.from(b.head), CompactRange.fromJSON(b.frontier)]);
        for (const { event } of slice) this.#remember(event.event_id);
        if (this.#rowMemory.length < ROWS_KEPT) this.#rowMemory.push(done.rows);
      });
      // An unobserved rejection would crash the process before the loop reaches the await.
      inFlight.catch(() => undefined);
    }
    await inFlight;
    // A checkpoint at every block boundary: where verification starts once older blocks expire.
    for (const [size, head, atBlock] of blocks) await this.#publish(size, head, atBlock);
    const every = this.options.everyEvents;
    if (every !== undefined && seq - this.#lastCheckpoint >= every) await this.#publish(seq, this.#head.hash, this.#tree);
  }

  /** Signs and publishes the checkpoint of `tree` (records up to its size are stored, `head` is the link at that size). */
  async #publish(size: number, head: Buffer, tree: CompactRange): Promise<void> {
    const { store, chainId, signer } = this.options;
    if (tree.size !== size) throw new Error(`checkpoint at ${size} given the tree of ${tree.size}`);
    // Stored subtree nodes first: proofs read them.
    if (this.#tilesBehind) {
      await persistTiles(store, chainId, size);
      this.#tilesBehind = false;
    }
    const tiles = this.#tiles;
    this.#tiles = [];
    try {
      await storeTiles(store, chainId, tiles);
    } catch (err) {
      this.#tiles = tiles.concat(this.#tiles);
      throw err;
    }
    const cp = { size, root: tree.root(), head, frontier: JSON.stringify(tree.toJSON()) };
    const note = signCheckpoint({ origin: this.#origin, size: cp.size, root: cp.root, chainHead: cp.head }, signer);
    await store.insertTsv('agate.checkpoints', ['chain_id', 'size', 'origin', 'root', 'chain_head', 'note', 'frontier'], Buffer.concat([
      Buffer.from([tsvText(chainId), cp.size, tsvText(this.#origin)].join('\t') + '\t'), tsvBytes(cp.root), TAB, tsvBytes(cp.head), TAB,
      Buffer.from(`${tsvText(note)}\t${tsvText(cp.frontier)}\n`),
    ]));
    this.#lastCheckpoint = Math.max(this.#lastCheckpoint, cp.size);
    const published = { chainId, origin: this.#origin, size: cp.size, note };
    for (const sink of this.options.sinks) await sink.publish(published);
    await this.options.bus.publish({
      type: 'Checkpoint', event_id: randomUUID(), time: nowMicros(), session_id: '', chain_id: chainId, origin: this.#origin,
      size: cp.size, root_hash: cp.root.toString('base64'), note,
    }).catch((err: unknown) => this.options.logger.warn('could not publish the checkpoint event', { error: describeError(err), size: cp.size }));
  }

  #remember(id: string): void {
    const window = this.options.dedupWindow;
    this.#recent.add(id);
    this.#recentOrder.push(id);
    if (this.#recentOrder.length > window * 2) {
      // Trim in bulk: splicing one id per event would make appends quadratic.
      for (const old of this.#recentOrder.splice(0, this.#recentOrder.length - window)) this.#recent.delete(old);
    }
  }

  /**
   * Restores head, tree and redelivery window from the store: the tree is the latest
   * checkpoint's compact range grown by the records stored after it.
   */
  async recover(): Promise<void> {
    const { store, chainId } = this.options;
    const [last] = await store.query<{ seq: string; hash: string }>(
      'SELECT seq, hex(hash) AS hash FROM agate.ledger WHERE chain_id = {chain:String} ORDER BY seq DESC LIMIT 1',
      { chain: chainId },
    );
    this.#head = last === undefined ? { seq: 0, hash: GENESIS } : { seq: Number(last.seq), hash: Buffer.from(last.hash, 'hex') };
    const [cp] = await store.query<{ size: string; frontier: string; root: string }>(
      'SELECT size, frontier, hex(root) AS root FROM agate.checkpoints FINAL WHERE chain_id = {chain:String} AND size <= {head:UInt64} ORDER BY size DESC LIMIT 1',
      { chain: chainId, head: this.#head.seq },
    );
    let tree = new CompactRange();
    if (cp !== undefined) {
      const restored = CompactRange.fromJSON(JSON.parse(cp.frontier) as { size: number; hash: string }[]);
      if (restored.size === Number(cp.size) && restored.root().toString('hex') === cp.root.toLowerCase()) tree = restored;
      else this.options.logger.warn('the latest checkpoint frontier does not match its root; rebuilding the tree from the stored records', { size: cp.size });
    }
    // Records after the checkpoint join the tree now, hashed by the engine from their leaves.
    await pushRange(store, chainId, tree, tree.size, this.#head.seq);
    this.#tree = tree;
    this.#tiles = [];
    this.#tilesBehind = true;
    this.#lastCheckpoint = cp === undefined ? 0 : Number(cp.size);
    const window = this.options.dedupWindow;
    const ids = await store.query<{ event_id: string }>('SELECT event_id FROM agate.ledger WHERE chain_id = {chain:String} AND seq > {from:UInt64} ORDER BY seq', { chain: chainId, from: Math.max(0, this.#head.seq - window) });
    for (const r of ids) this.#remember(r.event_id);
  }
}

const TAB = Buffer.from('\t');
/** Events encoded and hashed between two turns of the event loop (about 2-5 ms of work). */
const YIELD_EVERY = 100;
/** Records per INSERT: large enough for the engine, small enough to overlap with hashing. */
const INSERT_SLICE = 10000;
/** A slice's rows fit in this (about 800 bytes a record); the writer grows past it when needed. */
const ROWS_CAPACITY = 1 << 23;
/** Slices in the pipeline at once (written, sealed, inserted), plus one. */
const ROWS_KEPT = 4;

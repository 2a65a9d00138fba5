import { randomUUID } from 'node:crypto';
import { AgateError, ErrorCode, describeError } from '../../../core/src/errors.js';
import { nowMicros, type AgateEvent } from '../../../schemas/src/events.js';
import { GENESIS, RECORD_COLUMNS, RECORD_STRUCTURE, writeEventRow } from './chain.js';
import { BLOCK_SIZE } from './schema.js';
import { openCheckpoint, signCheckpoint, type Checkpoint } from './checkpoint.js';
import type { CheckpointSink, KeptNote } from './checkpoint-sink.js';
import { CompactRange } from './compact-range.js';
import type { LedgerOptions } from './ledger.js';
import { parseVerifierKey, verifierKey } from './note.js';
import { consistencyRanges, verifyConsistency } from './proofs.js';
import type { RowSealer, SealJob } from './row-sealer.js';
import { pushRange } from './tree-sql.js';
import { persistTiles, storeTiles, tiledRangeRoot, type TileNode } from './tree-tiles.js';
import { tsvBytes, tsvText } from './tsv.js';
import { RowBinaryWriter } from '../../../core/src/store/row-binary.js';

/** A chain's writer works with the bus, store, codec, logger and signer of the ledger that runs it. */
interface ChainWriterOptions extends Pick<LedgerOptions, 'bus' | 'store' | 'codec' | 'logger' | 'signer'> {
  /** The chain this writer appends to (the ledger's `chainId` is only the chain of events naming none). */
  chainId: string;
  /** Signed checkpoints every `everyEvents` records (and at every block boundary). */
  everyEvents?: number;
  sinks: readonly CheckpointSink[];
  /** How many of the latest event ids are remembered to drop redeliveries. */
  dedupWindow: number;
  /** Hashes rows off the event loop; shared by the chains of one ledger. */
  sealer: RowSealer;
  /**
   * Whether another ledger instance may append to this chain too (a Kafka partition moving
   * between the members of the group): each insert is then a claim (ChainWriter.#claimed), made
   * after a check that the store's head is still this writer's and confirmed after it, and fails
   * with LEDGER_CHAIN_MOVED when another instance appended. Two queries per insert (up to
   * INSERT_SLICE records); the embedded ledger, the chain's only writer, skips them.
   */
  fenced?: boolean;
}

export interface Head {
  seq: number;
  hash: Buffer;
}

/** The newest signed checkpoint of a chain known to have left the ledger, and where it was found. */
interface Published {
  cp: Checkpoint;
  where: string;
}

/** Errors after which a chain appends nothing more: its store disagrees with what was signed. */
const REFUSALS: ReadonlySet<string> = new Set([ErrorCode.LEDGER_STORE_BEHIND, ErrorCode.LEDGER_STORE_DIVERGED, ErrorCode.LEDGER_CHECKPOINT_FORK, ErrorCode.LEDGER_SIGNATURE_INVALID, ErrorCode.LEDGER_SOURCE_MISMATCH]);

/** Whether `err` means the ledger must not append to a chain until an operator has looked (see ChainWriter.recover). */
export function isRefusal(err: unknown): err is AgateError {
  return err instanceof AgateError && REFUSALS.has(err.code);
}

/** The log origin of one chain: the key name (ledger.origin) and the chain id. */
const chainOrigin = (keyName: string, chainId: string) => `${keyName}/${chainId}`;

/**
 * Appends events to one chain: the record's Merkle leaf is the encoded event and its link
 * hash chains it to the one before. The Merkle tree is a compact range kept at the head: each
 * record adds its leaf hash and about one node hash, and the stored tree nodes (tree-tiles.ts)
 * are collected as they complete, so a checkpoint costs one signature and two small inserts
 * (the engine is asked to hash only after a restart). Signs checkpoints at a configured
 * interval and at every block boundary. Idempotent: an event at or before the bus position the
 * store has reached is a replay (exact, however long), and event ids are remembered within a
 * redelivery window besides (a bus that delivers one event twice under new positions); chain
 * and tree state are recovered from the store on start.
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
  /** Ids of the records stored lately (the redelivery window) and of those written and not stored yet. */
  readonly #known = new Set<string>();
  /** The stored ids in #known, oldest first, to trim the window. */
  readonly #storedOrder: string[] = [];
  /** The ids in #known not stored yet, a list per slice, in the order the slices are stored. */
  #unstored: string[][] = [];
  /** The source position past each slice in #unstored (0: unknown). */
  #unstoredSource: number[] = [];
  // Rows are written one append at a time; the inserts they need run in order on #stored,
  // which the next append may extend before they finish, so the engine stores one batch while
  // the rows of the next are written. Checkpoints run one at a time.
  #writing: Promise<unknown> = Promise.resolve();
  #checkpointing: Promise<unknown> = Promise.resolve();
  /** The inserts issued, in order; rejected from the first that fails. */
  #stored: Promise<void> = Promise.resolve();
  /** The last record written and handed on (the head or ahead of it); undefined: start over from the head. */
  #written: number | undefined;
  readonly #origin: string;
  /** Row buffers back from the engine, for the next slices: fresh ones each time made the collector run constantly. */
  readonly #rowMemory: ArrayBuffer[] = [];
  /** The newest checkpoint published (read back at start, then each one published): the next must extend it. */
  #published: Published | undefined;
  /** Set once the chain's history is found not to extend what was published: nothing more is appended or signed. */
  #refused: AgateError | undefined;
  /**
   * The source position just past the last event stored (StreamInfo.positions), and past the
   * last one written and handed on: an event delivered at or below it is a replay, dropped
   * exactly, however far back the bus started again (a lost or emptied consumer offset).
   */
  #sourceStored = 0;
  #sourceWritten = 0;

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

  /** Why this chain appends nothing more, once it found its store disagreeing with a published checkpoint. */
  get refusal(): AgateError | undefined {
    return this.#refused;
  }

  /**
   * Appends events in order; `encoded[i]`, when given, is event i's codec encoding. Resolves
   * once they are stored. The next call may come before that: its rows are written while these
   * are stored, and stored after them; if these fail, so does it (a bus redelivers both).
   */
  async append(batch: readonly AgateEvent[], encoded?: readonly Buffer[], positions?: readonly number[]): Promise<void> {
    if (encoded !== undefined && encoded.length !== batch.length) throw new RangeError(`${encoded.length} encodings for ${batch.length} events`);
    if (positions !== undefined && positions.length !== batch.length) throw new RangeError(`${positions.length} positions for ${batch.length} events`);
    if (this.#refused !== undefined) throw this.#refused;
    const { stored, blocks } = await serially(this.#writing, (p) => (this.#writing = p), () => this.#write(batch, encoded, positions));
    await stored;
    await this.#exclusiveCheckpoint(async () => {
      // A checkpoint at every block boundary: where verification starts once older blocks expire.
      for (const [size, head, atBlock] of blocks) await this.#publish(size, head, atBlock);
      const every = this.options.everyEvents;
      if (every !== undefined && this.#head.seq - this.#lastCheckpoint >= every) await this.#publish(this.#head.seq, this.#head.hash, this.#tree);
    });
  }

  /** Signs a checkpoint of the current head unless one exists for it. */
  checkpoint(): Promise<void> {
    return this.#exclusiveCheckpoint(async () => {
      if (this.#refused !== undefined || this.#head.seq === 0 || this.#head.seq === this.#lastCheckpoint) return;
      await this.#publish(this.#head.seq, this.#head.hash, this.#tree);
    });
  }

  #exclusiveCheckpoint(fn: () => Promise<void>): Promise<void> {
    return serially(this.#checkpointing, (p) => (this.#checkpointing = p), fn);
  }

  /**
   * Writes the batch's rows and issues their inserts after those already issued; returns the
   * promise that they are stored (in an object: it must not be awaited here) and the chain at
   * each block boundary they cross, filled in as they are stored.
   */
  async #write(batch: readonly AgateEvent[], encoded: readonly Buffer[] | undefined, positions: readonly number[] | undefined): Promise<{ stored: Promise<void>; blocks: [number, Buffer, CompactRange][] }> {
    const { store, codec, chainId, sealer } = this.options;
    const blocks: [number, Buffer, CompactRange][] = [];
    let from: SealJob['from'];
    if (this.#written === undefined) {
      // Start over from what is stored: after a restart, or once an insert failed (the bus then
      // delivers everything after the head again).
      await this.#stored.catch(() => undefined);
      this.#stored = Promise.resolve();
      for (const ids of this.#unstored.splice(0)) for (const id of ids) this.#known.delete(id);
      this.#unstoredSource = [];
      this.#written = this.#head.seq;
      this.#sourceWritten = this.#sourceStored;
      from = { prev: this.#head.hash, frontier: this.#tree.toJSON() };
    }
    const fresh: number[] = [];
    let replayed = -1; // the last event dropped by its position alone
    for (let i = 0; i < batch.length; i++) {
      const id = batch[i]!.event_id;
      if (this.#known.has(id)) continue;
      const at = positions?.[i];
      if (at !== undefined && at <= this.#sourceWritten) {
        replayed = i;
        continue;
      }
      this.#known.add(id);
      if (at !== undefined) this.#sourceWritten = at;
      fresh.push(i);
    }
    if (replayed >= 0) await this.#checkReplay(batch[replayed]!.event_id, positions![replayed]!);
    if (fresh.length < batch.length) this.options.logger.debug('skipping redelivered events already in the ledger', { count: batch.length - fresh.length });
    const slices: number[][] = [];
    // A slice stays within one block (one table partition): an insert spanning two is stored
    // as two parts, one after the other, and a claim (#claimed) must go in whole or not at all.
    for (let i = 0, at = this.#written; i < fresh.length;) {
      const n = Math.min(INSERT_SLICE, BLOCK_SIZE - (at % BLOCK_SIZE), fresh.length - i);
      const slice = fresh.slice(i, i + n);
      i += n;
      at += n;
      slices.push(slice);
      this.#unstoredSource.push(positions?.[slice[slice.length - 1]!] ?? 0);
      this.#unstored.push(slice.map((k) => batch[k]!.event_id));
    }
    try {
      // Three stages overlap: this thread writes the rows of a slice while the sealer's thread
      // hashes the slice before it (links, leaves, tree) and the engine inserts the one before
      // that. The head moves past a slice only once it is stored, and a failed insert fails
      // every insert after it, so a failure leaves no gap.
      let seq = this.#written;
      for (const slice of slices) {
        const rows = this.#rowsFor(slice.length);
        const marks = new Int32Array(slice.length * 3);
        const firstSeq = seq + 1;
        for (let j = 0; j < slice.length; j++) {
          // In the embedded mode this loop shares the event loop with every proxy session:
          // writing a 10,000-event slice in one go would hold statements for tens of milliseconds.
          if (j > 0 && j % YIELD_EVERY === 0) await new Promise((r) => setImmediate(r));
          const k = slice[j]!;
          const event = batch[k]!;
          const payload = encoded?.[k] ?? codec.encode(event);
          seq += 1;
          marks[j * 3] = writeEventRow(rows, chainId, seq, payload, event, positions?.[k] ?? 0);
          marks[j * 3 + 1] = rows.length;
          marks[j * 3 + 2] = payload.length;
        }
        const { memory, length } = rows.transfer();
        const sealed = sealer.seal({ chain: chainId, rows: memory, length, marks, firstSeq, from });
        from = undefined;
        this.#written = seq;
        const head = seq;
        const before = this.#stored;
        this.#stored = Promise.all([before, sealed]).then(async ([, done]) => {
          const rows = Buffer.from(done.rows, 0, done.length);
          const last = { seq: head, hash: Buffer.from(done.head) };
          if (this.options.fenced === true) await this.#claimed(firstSeq, rows, last);
          else await store.insertRowBinary('agate.ledger', RECORD_COLUMNS, RECORD_STRUCTURE, rows);
          this.#head = last;
          this.#tree = CompactRange.fromJSON(done.frontier);
          for (const t of done.tiles) this.#tiles.push({ level: t.level, node: t.node, hash: Buffer.from(t.hash) });
          for (const b of done.blocks) blocks.push([b.size, Buffer.from(b.head), CompactRange.fromJSON(b.frontier)]);
          this.#keep(this.#unstored.shift()!);
          this.#sourceStored = Math.max(this.#sourceStored, this.#unstoredSource.shift()!);
          if (this.#rowMemory.length < ROWS_KEPT) this.#rowMemory.push(done.rows);
        });
        this.#stored.catch(() => (this.#written = undefined));
        // At most two slices ahead of the engine: writing faster than it stores only takes memory.
        await before;
      }
    } catch (err) {
      this.#written = undefined; // the next append starts over from the head
      throw err;
    }
    // Nothing was sealed (every event a replay): the sealer has not been told where the chain
    // starts, so the next batch starts over too, and tells it.
    if (from !== undefined) this.#written = undefined;
    return { stored: this.#stored, blocks };
  }

  /**
   * A writer for a slice of `count` rows, on memory a finished slice handed back when it is
   * large enough: fresh buffers of megabytes per slice kept the garbage collector busy.
   */
  #rowsFor(count: number): RowBinaryWriter {
    const need = count * ROW_BYTES;
    let memory = this.#rowMemory.pop();
    while (memory !== undefined && memory.byteLength < need) memory = this.#rowMemory.pop();
    return new RowBinaryWriter(memory ?? need);
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
    if (this.options.sinks.length > 0) await this.#proveExtends(size, cp.root);
    const note = signCheckpoint({ origin: this.#origin, size: cp.size, root: cp.root, chainHead: cp.head }, signer);
    await store.insertTsv('agate.checkpoints', ['chain_id', 'size', 'origin', 'root', 'chain_head', 'note', 'frontier'], Buffer.concat([
      Buffer.from([tsvText(chainId), cp.size, tsvText(this.#origin)].join('\t') + '\t'), tsvBytes(cp.root), TAB, tsvBytes(cp.head), TAB,
      Buffer.from(`${tsvText(note)}\t${tsvText(cp.frontier)}\n`),
    ]));
    this.#lastCheckpoint = Math.max(this.#lastCheckpoint, cp.size);
    const published = { chainId, origin: this.#origin, size: cp.size, note };
    try {
      for (const sink of this.options.sinks) await sink.publish(published);
    } catch (err) {
      if (isRefusal(err)) this.#refuse(err);
      throw err;
    }
    if (cp.size > (this.#published?.cp.size ?? 0)) this.#published = { cp: { origin: this.#origin, size: cp.size, root: cp.root, chainHead: cp.head }, where: 'this run' };
    await this.options.bus.publish({
      type: 'Checkpoint', event_id: randomUUID(), time: nowMicros(), session_id: '', chain_id: chainId, origin: this.#origin,
      size: cp.size, root_hash: cp.root.toString('base64'), note,
    }).catch((err: unknown) => this.options.logger.warn('could not publish the checkpoint event', { error: describeError(err), size: cp.size }));
  }

  /**
   * Refuses to publish a checkpoint unless a consistency proof (RFC 9162 2.1.4), made from the
   * stored tree nodes and leaves, shows the tree of `size` extends the newest one published
   * (or is extended by it): a store that lost or changed records since would otherwise get a
   * second, forked history signed and sent out. Only done with sinks configured, where
   * checkpoints leave the store: O(log n) small reads per checkpoint.
   */
  async #proveExtends(size: number, root: Buffer): Promise<void> {
    const prev = this.#published;
    if (prev === undefined) return;
    let ok: boolean;
    if (prev.cp.size === size) ok = prev.cp.root.equals(root);
    else {
      const [a, b] = prev.cp.size < size ? [prev.cp, { size, root }] : [{ size, root }, prev.cp];
      const { store, chainId } = this.options;
      const proof = await Promise.all(consistencyRanges(a.size, b.size).map(([lo, hi]) => tiledRangeRoot(store, chainId, lo, hi)));
      ok = verifyConsistency(a.size, b.size, a.root, b.root, proof);
    }
    if (!ok) {
      this.#refuse(new AgateError(ErrorCode.LEDGER_STORE_DIVERGED, `the tree of ${size} records of chain ${this.options.chainId} is not consistent with the checkpoint of size ${prev.cp.size} published in ${prev.where} (its consistency proof fails): nothing more is signed or appended (run agate verify)`));
      throw this.#refused;
    }
  }

  /**
   * An event dropped as a replay must be one the store holds: the record at its position is the
   * same event, or (delivered twice under one id) the event is stored elsewhere. Otherwise the
   * bus is not the stream the ledger read (its log replaced or reset), and dropping would lose
   * events: the chain refuses instead. One lookup per batch of a replay, by the minmax index.
   */
  async #checkReplay(eventId: string, position: number): Promise<void> {
    const { store, chainId } = this.options;
    const [at] = await store.query<{ event_id: string }>('SELECT event_id FROM agate.ledger WHERE chain_id = {chain:String} AND source_next = {at:UInt64} LIMIT 1', { chain: chainId, at: position });
    if (at?.event_id === eventId) return;
    if (at === undefined) {
      const [row] = await store.query<{ n: string }>('SELECT count() AS n FROM agate.ledger WHERE chain_id = {chain:String} AND event_id = {id:String}', { chain: chainId, id: eventId });
      if (Number(row?.n ?? 0) > 0) return;
    }
    this.#refuse(new AgateError(ErrorCode.LEDGER_SOURCE_MISMATCH, `the bus delivered event ${eventId} at position ${position} of chain ${chainId} as already recorded, but the store holds ${at === undefined ? 'no such event' : `event ${at.event_id} there`}: the bus is not the stream this ledger recorded (its log replaced or reset?). Nothing more is appended, so nothing is dropped unrecorded`));
    throw this.#refused;
  }

  /**
   * Inserts the records `firstSeq..last.seq` of a chain another ledger instance may append to
   * as well (a Kafka partition's old owner, kicked out of the group mid-insert, and its new
   * owner, which re-reads what the old one had not committed), so that no record position is
   * ever stored twice:
   *
   * 1. the store's last record must be this writer's head (`firstSeq - 1`), else another
   *    instance appended meanwhile (LEDGER_CHAIN_MOVED, and the batch is retried from the
   *    store's head);
   * 2. the insert claims what it extends: its deduplication token names the chain, `firstSeq`
   *    and the link hash of record `firstSeq - 1`, so of two instances that both passed step 1
   *    at that head, the engine stores the first insert and drops the other without a word
   *    (schema.ts LEDGER_CLAIM_SETTINGS). A check and an insert are not one atomic step; the
   *    claim is, and step 1 makes every insert start at a head the store had, so two inserts
   *    that overlap at all start at the same position and claim the same token;
   * 3. the insert went in only if the store's record `last.seq` is this writer's: a dropped
   *    insert fails with LEDGER_CHAIN_MOVED, and the bus delivers the batch again, from the
   *    store's head (events the other instance stored are skipped then as replays). When the
   *    two inserts held the same records (the same events from the same partition, read from
   *    the same head: the usual case), it is, and the batch counts as stored.
   */
  async #claimed(firstSeq: number, rows: Buffer, last: Head): Promise<void> {
    const { store, chainId } = this.options;
    const moved = (why: string) => new AgateError(ErrorCode.LEDGER_CHAIN_MOVED, `chain ${chainId} was appended to by another ledger instance: ${why}; the batch is retried from the store's head`, { retriable: true });
    if (this.#head.seq !== firstSeq - 1) throw new Error(`records from ${firstSeq} written after head ${this.#head.seq}`);
    const [tip] = await store.query<{ seq: string; hash: string }>(
      'SELECT seq, hex(hash) AS hash FROM agate.ledger WHERE chain_id = {chain:String} ORDER BY seq DESC LIMIT 1',
      { chain: chainId },
    );
    const seq = tip === undefined ? 0 : Number(tip.seq);
    if (seq !== this.#head.seq || (tip !== undefined && !Buffer.from(tip.hash, 'hex').equals(this.#head.hash))) {
      throw moved(`the store's head is record ${seq}, this writer's ${this.#head.seq}`);
    }
    const dedupToken = `agate.ledger/${chainId}/${firstSeq}/${this.#head.hash.toString('hex')}`;
    await store.insertRowBinary('agate.ledger', RECORD_COLUMNS, RECORD_STRUCTURE, rows, { dedupToken });
    const stored = await store.query<{ hash: string }>(
      'SELECT hex(hash) AS hash FROM agate.ledger WHERE chain_id = {chain:String} AND seq = {seq:UInt64}',
      { chain: chainId, seq: last.seq },
    );
    if (stored.length === 0 || stored.some((r) => !Buffer.from(r.hash, 'hex').equals(last.hash))) {
      throw moved(`it stored record ${firstSeq} first, and this writer's records ${firstSeq}..${last.seq} were not stored`);
    }
  }

  #refuse(err: AgateError): void {
    if (this.#refused !== undefined) return;
    this.#refused = err;
    this.options.logger.error('the ledger stops appending to this chain', { error: describeError(err) });
  }

  /** Ids in #known of a slice just stored (or found in the store at start): they stay in the redelivery window. */
  #keep(ids: readonly string[]): void {
    const window = this.options.dedupWindow;
    for (const id of ids) this.#storedOrder.push(id);
    const excess = this.#storedOrder.length - window;
    // Trimmed in steps (splicing one id per event would make appends quadratic), and small ones:
    // in `agate start` this runs on the proxy's event loop, and forgetting a whole window of
    // 100,000 ids at once held every statement for about 10 ms (issue 21, the 1-client p99).
    if (excess >= Math.min(window, FORGET_STEP)) {
      for (const old of this.#storedOrder.splice(0, excess)) this.#known.delete(old);
    }
  }

  /**
   * The newest signed checkpoint of this chain in the store's table and in every sink that can
   * be read back. Each is opened with the ledger's own key: one that does not open is refused
   * (a planted or foreign file must be looked at, not ignored), and two that differ at one size
   * are a fork.
   */
  async #newestPublished(): Promise<Published | undefined> {
    const { store, chainId, signer, sinks } = this.options;
    const kept: KeptNote[] = [];
    const [row] = await store.query<{ note: string }>('SELECT note FROM agate.checkpoints FINAL WHERE chain_id = {chain:String} ORDER BY size DESC LIMIT 1', { chain: chainId });
    if (row !== undefined) kept.push({ note: row.note, where: 'the store (agate.checkpoints)' });
    for (const sink of sinks) {
      const note = await sink.newest?.(chainId);
      if (note !== undefined) kept.push(note);
    }
    const verifiers = [parseVerifierKey(verifierKey(signer))];
    let newest: Published | undefined;
    for (const k of kept) {
      let cp: Checkpoint;
      try {
        cp = openCheckpoint(k.note, verifiers);
      } catch (cause) {
        throw new AgateError(ErrorCode.LEDGER_SIGNATURE_INVALID, `${k.where} holds a checkpoint of chain ${chainId} that this ledger's key (${signer.name}) did not sign; nothing is appended until it is looked at`, { cause });
      }
      if (cp.origin !== this.#origin) throw new AgateError(ErrorCode.LEDGER_SIGNATURE_INVALID, `${k.where} holds a checkpoint of ${cp.origin}, not of ${this.#origin}`);
      if (newest !== undefined && cp.size === newest.cp.size && !cp.root.equals(newest.cp.root)) {
        throw new AgateError(ErrorCode.LEDGER_CHECKPOINT_FORK, `${k.where} and ${newest.where} hold different signed checkpoints of size ${cp.size}: the signed log has forked`);
      }
      if (newest === undefined || cp.size > newest.cp.size) newest = { cp, where: k.where };
    }
    return newest;
  }

  /**
   * Refuses to go on from a store that is behind the newest published checkpoint (truncated,
   * rolled back) or departs from it (records rewritten and re-linked, another history): the
   * chain head and Merkle root at its size must be the signed ones. Cheap: one record, and the
   * tree from the nearest stored frontier. Full verification of every record is agate verify's.
   */
  async #checkAgainst({ cp, where }: Published): Promise<void> {
    const { store, chainId } = this.options;
    const head = this.#head.seq;
    if (head < cp.size) {
      throw new AgateError(ErrorCode.LEDGER_STORE_BEHIND, `the store holds ${head} records of chain ${chainId}, but the checkpoint of size ${cp.size} published in ${where} covers ${cp.size}: records ${head + 1}..${cp.size} are gone (the store was truncated or rolled back). Nothing is appended, which would sign a second history; restore the store, then restart`);
    }
    const [rec] = await store.query<{ hash: string }>('SELECT hex(hash) AS hash FROM agate.ledger WHERE chain_id = {chain:String} AND seq = {seq:UInt64}', { chain: chainId, seq: cp.size });
    const diverged = (what: string) => new AgateError(ErrorCode.LEDGER_STORE_DIVERGED, `${what} at record ${cp.size} of chain ${chainId} differs from the checkpoint published in ${where}: the store's records were rewritten, re-linked or replaced by another history. Nothing is appended; run agate verify`);
    if (cp.chainHead !== undefined && (rec === undefined || !Buffer.from(rec.hash, 'hex').equals(cp.chainHead))) throw diverged('the chain head (link hash)');
    if (!(await this.#rootAt(cp.size)).equals(cp.root)) throw diverged('the Merkle root');
  }

  /** The tree root at `size` (not above the head): the nearest stored frontier grown by the leaves after it. */
  async #rootAt(size: number): Promise<Buffer> {
    if (this.#tree.size === size) return this.#tree.root();
    const { store, chainId } = this.options;
    const [row] = await store.query<{ frontier: string }>(
      'SELECT frontier FROM agate.checkpoints FINAL WHERE chain_id = {chain:String} AND size <= {size:UInt64} ORDER BY size DESC LIMIT 1',
      { chain: chainId, size },
    );
    let tree = new CompactRange();
    try {
      if (row !== undefined) tree = CompactRange.fromJSON(JSON.parse(row.frontier) as { size: number; hash: string }[]);
    } catch {
      tree = new CompactRange(); // an unreadable frontier: hash from the first leaf
    }
    await pushRange(store, chainId, tree, tree.size, size);
    return tree.root();
  }

  /**
   * Restores head, tree and redelivery window from the store: the tree is the latest
   * checkpoint's compact range grown by the records stored after it. Then checks the store
   * against the newest checkpoint published anywhere it can be read back (#checkAgainst).
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
    this.#published = await this.#newestPublished();
    if (this.#published !== undefined) await this.#checkAgainst(this.#published);
    const window = this.options.dedupWindow;
    const ids = await store.query<{ event_id: string; source_next: string }>('SELECT event_id, source_next FROM agate.ledger WHERE chain_id = {chain:String} AND seq > {from:UInt64} ORDER BY seq', { chain: chainId, from: Math.max(0, this.#head.seq - window) });
    const stored = ids.map((r) => r.event_id);
    this.#sourceStored = ids.reduce((max, r) => Math.max(max, Number(r.source_next)), 0);
    this.#sourceWritten = this.#sourceStored;
    for (const id of stored) this.#known.add(id);
    this.#keep(stored);
  }
}

const TAB = Buffer.from('\t');
/** Stored ids beyond the redelivery window forgotten together (about 0.4 ms of Set deletes). */
const FORGET_STEP = 4096;
/** Rows written between two turns of the event loop (about 0.5 ms of work; the hashing is on the sealer thread). */
const YIELD_EVERY = 100;
/**
 * Records per INSERT: large enough for the engine (each insert makes a part of some 45 files,
 * fsynced), small enough to overlap with hashing. Parts of this size stay compact (one data
 * file) by schema.ts LEDGER_MERGE_SETTINGS; measured against 10,000: about 8 % less CPU per
 * event, most of it in the kernel creating files.
 */
export const INSERT_SLICE = 20000;
/** Room per row a writer starts with (records average about 800 bytes); it grows when needed. */
const ROW_BYTES = 1024;
/** Slices in the pipeline at once (written, sealed, inserted), plus one. */
const ROWS_KEPT = 4;

/** Runs `fn` after the previous run on the same queue has settled (whatever its outcome). */
function serially<T>(tail: Promise<unknown>, setTail: (p: Promise<unknown>) => void, fn: () => Promise<T>): Promise<T> {
  const run = tail.then(fn, fn);
  setTail(run.catch(() => undefined));
  return run;
}

import type { Bus, StreamInfo, Subscription } from '../../../core/src/bus/bus.js';
import { AgateError, ErrorCode, describeError } from '../../../core/src/errors.js';
import type { Logger } from '../../../core/src/log.js';
import { eventTraceParent } from '../../../core/src/tracing/traceparent.js';
import type { TraceSpan, Tracing } from '../../../core/src/tracing/tracing.js';
import { isOutOfSpace } from '../../../core/src/disk-space.js';
import type { Store } from '../../../core/src/store/store.js';
import type { EventCodec } from '../../../schemas/src/codec.js';
import { EVENT_TYPES, type AgateEvent } from '../../../schemas/src/events.js';
import { ChainWriter, isRefusal, type Head } from './chain-writer.js';
import type { CheckpointSink } from './checkpoint-sink.js';
import { openCheckpoint } from './checkpoint.js';
import { parseVerifierKey, verifierKey, type NoteSigner } from './note.js';
import { PendingRefills, type RefillRange } from './pending-refills.js';
import { RowSealer } from './row-sealer.js';
import { expireBlocks } from './retention.js';
import { migrate } from './schema.js';

export interface LedgerOptions {
  bus: Bus;
  store: Store;
  codec: EventCodec;
  /** The chain of events whose source names none; the embedded bus has one stream. */
  chainId: string;
  logger: Logger;
  signer: NoteSigner;
  /** Signed checkpoints every `everyEvents` records or `everyMs`, whichever comes first. */
  checkpoints?: { everyEvents: number; everyMs: number; sinks: readonly CheckpointSink[] };
  /** How many of the latest event ids are remembered to drop redeliveries (default 100,000). */
  dedupWindow?: number;
  /** Blocks of records older than this are dropped whole, once a checkpoint covers them (retention.ts). */
  retentionDays?: number;
  /**
   * Derives again what the materialized views on agate.ledger derive (the session tables,
   * services/query/src/session-refill.ts), for records `fromSeq..toSeq` of a chain that an insert
   * which failed in a view stored without them. Must be idempotent.
   */
  refillDerived?: (chainId: string, fromSeq: number, toSeq: number) => Promise<void>;
  /** Where the ranges waiting for `refillDerived` are kept across restarts (pending-refills.ts); memory only without. */
  pendingRefillsFile?: string;
  /** With trace export on: a span per event that carries a trace context, around its append. */
  tracing?: Tracing;
}

/**
 * Batches the ledger takes from the bus before the first is stored: the rows of the next are
 * written while the engine stores the last slice of the one before.
 */
export const LEDGER_IN_FLIGHT = 2;

/**
 * How long the embedded bus lets the ledger's next batch gather after a small one (LocalBus
 * lingerMs). Each insert into agate.ledger costs the engine about 20-25 ms of CPU whatever its
 * size (its part, the two projections' parts, the session-stats view's GROUP BY and part, the
 * merges those parts bring), plus a few ms on the pool thread that runs the query. At 500 ms,
 * two inserts a second took 64-76 ms of engine CPU a second at 3,000 events/s; at 1,000 ms,
 * 42-45 (BENCHMARKS.md, issue 21). Only the store's view lags: the events are durable in the
 * bus log, which is the write-ahead. A batch at the bench's 11,000 events/s stays within the
 * bus's window of recent events (16,384), so the ledger does not fall back to reading the file.
 */
export const LEDGER_LINGER_MS = 1000;

/** The ledger's consumer group on the bus. */
export const LEDGER_GROUP = 'ledger';

/** How often retention looks for expired blocks. */
const RETENTION_EVERY_MS = 3_600_000;

/**
 * One reason the ledger is not recording: a chain that refused its store (it departs from what
 * the ledger published), the last batch waiting for the store to take it, or records stored
 * without their session-table rows, derived again once the store accepts them.
 */
type LedgerProblem =
  | { kind: 'chain-refused'; chain: string; message: string }
  | { kind: 'batch-waiting'; message: string }
  | { kind: 'rows-underived'; chain: string; from: number; to: number; message: string };

/**
 * The ledger service: consumes every event from the bus and appends it to the chain of its
 * stream (one chain per bus partition), each chain with its own Merkle tree and signed
 * checkpoints (chain-writer.ts). Checkpoints are also signed on a timer and at stop.
 */
export class LedgerService {
  readonly #chains = new Map<string, Promise<ChainWriter>>();
  readonly #ready = new Map<string, ChainWriter>();
  #subscription: Subscription | undefined;
  #timer: NodeJS.Timeout | undefined;
  #retention: NodeJS.Timeout | undefined;
  readonly #sealer = new RowSealer();
  /** Chains whose recovery refused the store, with why (see ChainWriter.recover). */
  readonly #refused = new Map<string, string>();
  /** The bus assignment each chain's writer was loaded under (StreamInfo.assignment), for chains whose stream can move. */
  readonly #assignments = new Map<string, number>();
  /** Why the last batch could not be appended (the bus delivers it again), until one is. */
  #waiting: string | undefined;
  /**
   * Per stream, where each batch that failed or was refused starts (StreamInfo.positions), until
   * a batch reaching that far goes in: a batch starting past the lowest is refused (#appendDelivered).
   */
  readonly #failedAt = new Map<string, Set<number>>();
  /** Per chain, records a failed insert stored without the rows of the views behind the ledger, until refilled. */
  readonly #unrefilled = new Map<string, RefillRange>();
  /** #unrefilled on disk, so a restart still derives those rows; `#unsaved` while the last write failed. */
  readonly #pendingRefills: PendingRefills;
  #unsaved = false;

  constructor(private readonly options: LedgerOptions) {
    this.#pendingRefills = new PendingRefills(options.pendingRefillsFile);
  }

  /**
   * Starts recording. When the store is behind or departs from the newest checkpoint the ledger
   * published, it records nothing (the events wait in the bus) and says why, in the log and in
   * `problem()`, which /readyz reports.
   */
  async start(): Promise<void> {
    await migrate(this.options.store, { retentionDays: this.options.retentionDays });
    await this.#checkKey();
    // Ranges a previous run noted and could not derive yet: derived now, whichever instance owns their chain today.
    for (const [chainId, range] of this.#pendingRefills.load()) {
      this.options.logger.warn('records an earlier run stored without their session rows; deriving them now', { chain: chainId, from: range.from, to: range.to });
      this.#unrefilled.set(chainId, range);
      await this.#refill(chainId);
    }
    this.#sealer.start();
    try {
      await this.chain(this.options.chainId);
    } catch (err) {
      if (!isRefusal(err)) throw err;
      return; // logged and kept by chain(); not subscribed, so the bus keeps every event
    }
    // Checkpoints are published on the bus for outside consumers; the ledger does not chain its own.
    const types = EVENT_TYPES.filter((t) => t !== 'Checkpoint');
    this.#subscription = await this.options.bus.subscribe({ group: LEDGER_GROUP, types, handler: (batch, source) => this.#appendTraced(batch, source), maxBatch: 20_000, inFlight: LEDGER_IN_FLIGHT });
    const every = this.options.checkpoints?.everyMs;
    if (every !== undefined) {
      this.#timer = setInterval(() => void this.checkpoint().catch((err: unknown) => this.options.logger.error('checkpoint failed', { error: describeError(err) })), every);
      this.#timer.unref();
    }
    const days = this.options.retentionDays;
    if (days !== undefined) {
      const expire = () => void expireBlocks(this.options.store, days, Date.now(), this.options.logger).catch((err: unknown) => this.options.logger.error('retention failed', { error: describeError(err) }));
      expire();
      this.#retention = setInterval(expire, RETENTION_EVERY_MS);
      this.#retention.unref();
    }
  }

  /**
   * One log, one key: refuses to start when the newest stored checkpoint of any chain was signed
   * by another key (another ledger instance's own key, a replaced key file), which would leave
   * the log signed by two keys, each verifying only part of it. One small query at start.
   */
  async #checkKey(): Promise<void> {
    const { store, signer } = this.options;
    const rows = await store.query<{ chain_id: string; note: string }>('SELECT chain_id, argMax(note, size) AS note FROM agate.checkpoints FINAL GROUP BY chain_id ORDER BY chain_id');
    const verifiers = [parseVerifierKey(verifierKey(signer))];
    const foreign = rows.filter((r) => {
      try {
        openCheckpoint(r.note, verifiers);
        return false;
      } catch {
        return true;
      }
    }).map((r) => r.chain_id);
    if (foreign.length > 0) {
      throw new AgateError(ErrorCode.LEDGER_KEY_INVALID, `the store's checkpoints of chain${foreign.length === 1 ? '' : 's'} ${foreign.join(', ')} were not signed by this ledger's key (${signer.name}, ${verifierKey(signer)}): every ledger instance of one log signs with the same ledger.signing_key; the ledger does not start`);
    }
  }

  async stop(): Promise<void> {
    clearInterval(this.#timer);
    clearInterval(this.#retention);
    await this.#subscription?.close();
    await this.checkpoint().catch((err: unknown) => this.options.logger.error('final checkpoint failed', { error: describeError(err) }));
    for (const chainId of [...this.#unrefilled.keys()]) await this.#refill(chainId);
    await this.#sealer.close();
  }

  /** One chain's writer, its state recovered from the store on first use; `fenced`: another instance may write the chain too (ChainWriterOptions.fenced). */
  chain(chainId: string, fenced = false): Promise<ChainWriter> {
    let writer = this.#chains.get(chainId);
    if (writer === undefined) {
      const { bus, store, codec, logger, signer, checkpoints, dedupWindow } = this.options;
      const w = new ChainWriter({ bus, store, codec, chainId, logger: logger.child({ chain: chainId }), signer, everyEvents: checkpoints?.everyEvents, sinks: checkpoints?.sinks ?? [], dedupWindow: dedupWindow ?? 100_000, sealer: this.#sealer, fenced });
      const loading = w.recover().then(() => {
        // A writer forgotten while it loaded (a new assignment) is not the chain's any more.
        if (this.#chains.get(chainId) === loading) (this.#refused.delete(chainId), this.#ready.set(chainId, w));
        return w;
      });
      writer = loading;
      writer.catch((err: unknown) => {
        if (this.#chains.get(chainId) === writer) this.#chains.delete(chainId); // a failed recovery is retried on next use
        if (isRefusal(err)) {
          if (!this.#refused.has(chainId)) logger.error('the ledger refuses to append: the store does not match what it published', { chain: chainId, error: describeError(err) });
          this.#refused.set(chainId, describeError(err));
        }
      });
      this.#chains.set(chainId, writer);
    }
    return writer;
  }

  /**
   * Appends a batch from one stream (by default the service's own chain); `encoded`, when the
   * bus delivers it, is each event's encoding as it travelled, stored as the record's payload;
   * `positions` where the stream stood past each event (StreamInfo.positions). With an
   * `assignment` (a stream another instance may have written meanwhile), a new assignment drops
   * the chain's writer, whose head may be stale, and loads it again from the store; so does a
   * batch refused because the head moved under it (LEDGER_CHAIN_MOVED), which the bus retries.
   */
  async append(batch: readonly AgateEvent[], chainId = this.options.chainId, encoded?: readonly Buffer[], positions?: readonly number[], assignment?: number): Promise<void> {
    if (assignment === undefined) return (await this.chain(chainId)).append(batch, encoded, positions);
    if (this.#assignments.get(chainId) !== assignment) this.#forget(chainId);
    this.#assignments.set(chainId, assignment);
    try {
      await (await this.chain(chainId, true)).append(batch, encoded, positions);
    } catch (err) {
      if (err instanceof AgateError && err.code === ErrorCode.LEDGER_CHAIN_MOVED) {
        this.options.logger.warn('another ledger instance appended to this chain; reloading its head from the store', { chain: chainId });
        this.#forget(chainId);
      }
      throw err;
    }
  }

  /**
   * #appendDelivered, inside a span for each event of the batch that carries a trace context (a
   * child of it), ended once the batch is stored (or failed: the redelivery gets spans of its own).
   */
  async #appendTraced(batch: readonly AgateEvent[], source: StreamInfo): Promise<void> {
    const tracing = this.options.tracing;
    if (tracing === undefined) return this.#appendDelivered(batch, source);
    const spans: TraceSpan[] = [];
    for (const event of batch) {
      const parent = eventTraceParent(event);
      if (parent === null) continue;
      spans.push(tracing.start('ledger append', parent, { kind: 'consumer', attributes: { 'agate.event_type': event.type, 'agate.event_id': event.event_id, 'agate.chain': source.stream, 'agate.batch_size': batch.length } }));
    }
    try {
      await this.#appendDelivered(batch, source);
    } catch (err) {
      for (const span of spans) span.end(err);
      throw err;
    }
    for (const span of spans) span.end();
  }

  /**
   * A batch from the bus. A failure is kept for `problem()` until a batch goes in, and makes
   * every batch that starts past the failed one fail too: the bus hands batches over before the
   * ones before them settled (`inFlight`), and appending one after a failed one would leave
   * the failed events out of the chain for good (seen on a full disk: a later batch went in,
   * then the failed one came again as "already recorded"). A batch refused so counts as failed
   * itself: once the first failed batch goes in, the bus may hand over the next one before it
   * delivers the refused one again, and that one must wait as well (seen under load: its
   * events went in ahead of the refused batch's, which then stopped the chain with
   * LEDGER_SOURCE_MISMATCH). The bus delivers the failed batch and all after it again, from
   * where it stands.
   */
  async #appendDelivered(batch: readonly AgateEvent[], source: StreamInfo): Promise<void> {
    const first = source.positions?.[0];
    // A new assignment of the stream (Kafka) resumes from its committed position, whoever moved it.
    if (source.assignment !== undefined && this.#assignments.get(source.stream) !== source.assignment) this.#failedAt.delete(source.stream);
    const failed = this.#failedAt.get(source.stream);
    const failedAt = failed === undefined ? undefined : Math.min(...failed);
    if (failedAt !== undefined && first !== undefined && first > failedAt) {
      failed!.add(first);
      throw new AgateError(ErrorCode.LEDGER_BATCH_AFTER_FAILURE, `a batch from position ${first} of ${source.stream} came after one from ${failedAt} failed; both are delivered again`, { retriable: true });
    }
    try {
      await this.append(batch, source.stream, source.encoded, source.positions, source.assignment);
    } catch (err) {
      // What a failed insert left is read back from the store, not assumed: an INSERT into
      // agate.ledger that fails in a materialized view behind it (a full disk) has stored the
      // ledger's rows all the same, and appending them again from the old head would record
      // them twice (seen: 172 records of 151 events).
      // Those rows may lack what the views behind the ledger derive from them: once the head is
      // read back, the records past the old one are derived again (#refill).
      if (!isRefusal(err)) {
        const before = this.#ready.get(source.stream)?.head.seq;
        const reloaded = this.#forget(source.stream, { fenced: source.assignment !== undefined });
        if (before !== undefined) void reloaded?.then((w) => this.#storedWithoutViews(source.stream, before, w.head.seq), () => undefined);
      }
      // Read again: a new assignment may have cleared the stream's marks meanwhile.
      if (first !== undefined) this.#failedAt.set(source.stream, (this.#failedAt.get(source.stream) ?? new Set()).add(first));
      this.#waiting = isOutOfSpace(err)
        ? `the disk holding the store is full (${describeError(err).slice(0, 200)}); the events wait in the bus and are recorded once space is freed`
        : `the store refused the last batch (${describeError(err).slice(0, 200)}); it is delivered again until it goes in`;
      throw err;
    }
    this.#passed(source.stream, source.positions?.[source.positions.length - 1]);
    this.#waiting = undefined;
    if (this.#unrefilled.has(source.stream)) await this.#refill(source.stream);
  }

  /** A batch of a stream up to position `last` went in: the failed batches it reaches are in too (without positions: all). */
  #passed(stream: string, last: number | undefined): void {
    const failed = this.#failedAt.get(stream);
    if (failed === undefined) return;
    if (last !== undefined) for (const at of failed) if (at <= last) failed.delete(at);
    if (last === undefined || failed.size === 0) this.#failedAt.delete(stream);
  }

  /** Notes that records `before + 1..head` of a chain were stored by an insert that failed, and derives their view rows. */
  async #storedWithoutViews(chainId: string, before: number, head: number): Promise<void> {
    if (head <= before || this.options.refillDerived === undefined) return;
    const known = this.#unrefilled.get(chainId);
    this.#unrefilled.set(chainId, { from: Math.min(known?.from ?? before + 1, before + 1), to: Math.max(known?.to ?? head, head) });
    this.options.logger.warn('a failed insert stored records without the rows the materialized views derive from them; deriving them again', { chain: chainId, from: before + 1, to: head });
    await this.#savePending();
    await this.#refill(chainId);
  }

  /** Derives the view rows of a chain's unrefilled records; on failure (the disk still full) they stay pending, tried again after the next batch. */
  async #refill(chainId: string): Promise<void> {
    const range = this.#unrefilled.get(chainId);
    if (range === undefined || this.options.refillDerived === undefined) return;
    if (this.#unsaved) await this.#savePending();
    try {
      await this.options.refillDerived(chainId, range.from, range.to);
      // A range widened meanwhile stays for the next attempt.
      if (this.#unrefilled.get(chainId) === range) {
        this.#unrefilled.delete(chainId);
        await this.#savePending();
      }
    } catch (err) {
      this.options.logger.warn('deriving the view rows of records a failed insert stored failed; tried again after the next batch', { chain: chainId, from: range.from, to: range.to, error: describeError(err) });
    }
  }

  /** Writes #unrefilled to its file; a failed write (the disk full too) is logged and tried again at the next refill. */
  async #savePending(): Promise<void> {
    try {
      await this.#pendingRefills.save(this.#unrefilled);
      this.#unsaved = false;
    } catch (err) {
      this.#unsaved = true;
      this.options.logger.error('cannot keep the records waiting for their session rows on disk; a restart before they are derived would forget them (agate verify names them, --repair-sessions derives them)', { error: describeError(err) });
    }
  }

  /** Drops a chain's writer: the next batch loads it from the store again (with `reload`: under the same assignment, loaded at once). */
  #forget(chainId: string, reload?: { fenced: boolean }): Promise<ChainWriter> | undefined {
    this.#chains.delete(chainId);
    if (reload !== undefined) {
      // Reloaded now, not when the bus delivers again; the old writer answers `head` meanwhile.
      const reloaded = this.chain(chainId, reload.fenced);
      reloaded.catch(() => undefined);
      return reloaded;
    }
    this.#ready.delete(chainId);
    this.#assignments.delete(chainId);
    return undefined;
  }

  /** Signs a checkpoint of every chain with records since its last one. */
  async checkpoint(): Promise<void> {
    for (const writer of this.#chains.values()) await (await writer).checkpoint();
  }

  /** Everything that keeps the ledger from recording now (several may hold at once); empty when it records. */
  problems(): LedgerProblem[] {
    const out: LedgerProblem[] = [...this.#refused.entries()].map(([chain, message]) => ({ kind: 'chain-refused', chain, message }));
    if (this.#waiting !== undefined) out.push({ kind: 'batch-waiting', message: this.#waiting });
    for (const [chain, r] of this.#unrefilled) {
      out.push({ kind: 'rows-underived', chain, from: r.from, to: r.to, message: `records ${r.from}..${r.to} were stored without their rows in the session tables (an insert failed in a materialized view); they are derived again once the store accepts it` });
    }
    for (const [chain, w] of this.#ready) if (w.refusal !== undefined) out.push({ kind: 'chain-refused', chain, message: describeError(w.refusal) });
    return out;
  }

  /** {@link problems} as the one reason /readyz gives for the ledger, or undefined when it records. */
  problem(): string | undefined {
    const problems = this.problems().map((p) => (p.kind === 'batch-waiting' ? p.message : `chain ${p.chain}: ${p.message}`));
    return problems.length === 0 ? undefined : `the ledger is not recording: ${problems.join('; ')}`;
  }

  /** The default chain's last appended position. */
  get head(): Readonly<Head> {
    return this.#defaultChain().head;
  }

  /** The default chain's tree root at its head. */
  currentRoot(): Promise<Buffer> {
    return this.#defaultChain().currentRoot();
  }

  #defaultChain(): ChainWriter {
    const w = this.#ready.get(this.options.chainId);
    if (w === undefined) throw new Error('the ledger has not started');
    return w;
  }
}

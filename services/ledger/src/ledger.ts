import type { Bus, Subscription } from '../../../core/src/bus/bus.js';
import { AgateError, ErrorCode, describeError } from '../../../core/src/errors.js';
import type { Logger } from '../../../core/src/log.js';
import type { Store } from '../../../core/src/store/store.js';
import type { EventCodec } from '../../../schemas/src/codec.js';
import { EVENT_TYPES, type AgateEvent } from '../../../schemas/src/events.js';
import { ChainWriter, isRefusal, type Head } from './chain-writer.js';
import type { CheckpointSink } from './checkpoint-sink.js';
import { openCheckpoint } from './checkpoint.js';
import { parseVerifierKey, verifierKey, type NoteSigner } from './note.js';
import { RowSealer } from './row-sealer.js';
import { expireBlocks } from './retention.js';
import { migrate } from './schema.js';

export { chainOrigin, type Head } from './chain-writer.js';

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
}

/**
 * Batches the ledger takes from the bus before the first is stored: the rows of the next are
 * written while the engine stores the last slice of the one before.
 */
export const LEDGER_IN_FLIGHT = 2;

/** How often retention looks for expired blocks. */
const RETENTION_EVERY_MS = 3_600_000;

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

  constructor(private readonly options: LedgerOptions) {}

  /**
   * Starts recording. When the store is behind or departs from the newest checkpoint the ledger
   * published, it records nothing (the events wait in the bus) and says why, in the log and in
   * `problem()`, which /readyz reports.
   */
  async start(): Promise<void> {
    await migrate(this.options.store, { retentionDays: this.options.retentionDays });
    await this.#checkKey();
    this.#sealer.start();
    try {
      await this.chain(this.options.chainId);
    } catch (err) {
      if (!isRefusal(err)) throw err;
      return; // logged and kept by chain(); not subscribed, so the bus keeps every event
    }
    // Checkpoints are published on the bus for outside consumers; the ledger does not chain its own.
    const types = EVENT_TYPES.filter((t) => t !== 'Checkpoint');
    this.#subscription = await this.options.bus.subscribe({ group: 'ledger', types, handler: (batch, source) => this.append(batch, source.stream, source.encoded, source.positions, source.assignment), maxBatch: 20_000, inFlight: LEDGER_IN_FLIGHT });
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

  /** Drops a chain's writer: the next batch loads it from the store again. */
  #forget(chainId: string): void {
    this.#chains.delete(chainId);
    this.#ready.delete(chainId);
    this.#assignments.delete(chainId);
  }

  /** Signs a checkpoint of every chain with records since its last one. */
  async checkpoint(): Promise<void> {
    for (const writer of this.#chains.values()) await (await writer).checkpoint();
  }

  /** Why the ledger is not recording (a chain refused its store), or undefined when it is. */
  problem(): string | undefined {
    const problems = [...this.#refused.entries()].map(([chain, why]) => `chain ${chain}: ${why}`);
    for (const [chain, w] of this.#ready) if (w.refusal !== undefined) problems.push(`chain ${chain}: ${describeError(w.refusal)}`);
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

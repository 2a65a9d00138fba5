import type { Bus, StreamInfo, Subscription } from '../../../core/src/bus/bus.js';
import type { Logger } from '../../../core/src/log.js';
import type { Store } from '../../../core/src/store/store.js';
import type { EventCodec } from '../../../schemas/src/codec.js';
import { EVENT_TYPES, type AgateEvent } from '../../../schemas/src/events.js';
import { GENESIS, linkHash } from './chain.js';
import { microsToDateTime64, migrate } from './schema.js';

export interface LedgerOptions {
  bus: Bus;
  store: Store;
  codec: EventCodec;
  logger: Logger;
}

interface Head {
  seq: number;
  hash: string;
}

/**
 * Appends every event to a hash chain in the store, one chain per bus stream (a Kafka partition,
 * or the embedded log), so chains never need cross-partition ordering. Idempotent by event id:
 * redelivered events (after a crash, a rebalance, a retry) are recognised and stored once.
 */
export class LedgerService {
  readonly #heads = new Map<string, Head>();
  #subscription: Subscription | undefined;

  constructor(private readonly options: LedgerOptions) {}

  async start(): Promise<void> {
    await migrate(this.options.store);
    this.#subscription = await this.options.bus.subscribe({ group: 'ledger', types: EVENT_TYPES, handler: (batch, source) => this.append(batch, source) });
  }

  async stop(): Promise<void> {
    await this.#subscription?.close();
  }

  /** A chain's last appended position; chain state is recovered from the store on first use. */
  async head(chainId: string): Promise<Readonly<Head>> {
    let head = this.#heads.get(chainId);
    if (head === undefined) {
      head = await this.#recoverHead(chainId);
      this.#heads.set(chainId, head);
    }
    return head;
  }

  async append(batch: readonly AgateEvent[], source: StreamInfo): Promise<void> {
    const { store, codec } = this.options;
    const chainId = source.stream;
    const fresh = await this.#withoutRecorded(batch);
    if (fresh.length === 0) return;
    let { seq, hash } = await this.head(chainId);
    const rows = fresh.map((event) => {
      const payload = codec.encode(event);
      const prev = hash;
      seq += 1;
      hash = linkHash(prev, seq, payload);
      return {
        chain_id: chainId,
        seq,
        event_id: event.event_id,
        event_type: event.type,
        session_id: event.session_id,
        time: microsToDateTime64(event.time),
        payload: payload.toString('base64'),
        body: JSON.stringify(event),
        prev_hash: prev,
        hash,
      };
    });
    // The head moves only after the insert succeeded; a failed batch is retried from the same head.
    await store.insert('agate.ledger', rows);
    this.#heads.set(chainId, { seq, hash });
  }

  async #withoutRecorded(batch: readonly AgateEvent[]): Promise<AgateEvent[]> {
    const seen = new Set<string>();
    const unique = batch.filter((e) => !seen.has(e.event_id) && seen.add(e.event_id));
    const recorded = await this.options.store.query<{ event_id: string }>(
      'SELECT event_id FROM agate.ledger WHERE event_id IN {ids:Array(String)}',
      { ids: unique.map((e) => e.event_id) },
    );
    if (recorded.length === 0) return unique;
    const known = new Set(recorded.map((r) => r.event_id));
    this.options.logger.info('skipping redelivered events already in the ledger', { count: known.size });
    return unique.filter((e) => !known.has(e.event_id));
  }

  async #recoverHead(chainId: string): Promise<Head> {
    const [last] = await this.options.store.query<{ seq: string; hash: string }>(
      'SELECT seq, hash FROM agate.ledger WHERE chain_id = {chain:String} ORDER BY seq DESC LIMIT 1',
      { chain: chainId },
    );
    return last === undefined ? { seq: 0, hash: GENESIS } : { seq: Number(last.seq), hash: last.hash };
  }
}

import type { Bus } from '../../../../core/src/bus/bus.js';
import type { Logger } from '../../../../core/src/log.js';
import { describeError } from '../../../../core/src/errors.js';
import type { Store } from '../../../../core/src/store/store.js';
import { nowMicros, type ApprovalRequested } from '../../../../schemas/src/events.js';
import { FreshHolds } from './fresh-holds.js';
import { InboxReader } from './inbox.js';

/** How often the inbox is read while someone watches it; a hold shows within about this plus the ledger's delay. */
const POLL_MS = 200;

type Listener = (inboxJson: string) => void;

/**
 * One reader of the inbox shared by every open console: it polls the store only while at least
 * one browser listens, and hands each listener the inbox whenever it changed. Polling the store
 * (not the bus) keeps it right in the distributed mode, where holds come from other processes.
 */
export class ApprovalsFeed {
  readonly #listeners = new Set<Listener>();
  #last: string | undefined;
  #timer: NodeJS.Timeout | undefined;
  #running = false;
  /** Bumped by stop(), so a read still in flight from before cannot start a second polling loop. */
  #generation = 0;
  #reading = false;
  /** A wake-up came during a read: read again as soon as it ends. */
  #again = false;

  readonly #reader: InboxReader;

  readonly #fresh: FreshHolds | undefined;

  readonly #logger: Logger;

  constructor(store: Store, logger: Logger, bus?: Bus) {
    this.#logger = logger;
    this.#fresh = bus === undefined ? undefined : new FreshHolds(bus, () => this.#wake());
    this.#reader = new InboxReader(store, this.#fresh);
  }

  /** Starts watching the bus for new holds (without a bus the store alone feeds the inbox). */
  async start(): Promise<void> {
    await this.#fresh?.start();
  }

  async close(): Promise<void> {
    this.stop();
    await this.#fresh?.close();
  }

  /** A hold seen on the bus and not yet read back from the store. */
  unstoredRequest(approvalId: string): ApprovalRequested | undefined {
    return this.#fresh?.request(approvalId);
  }

  /** A hold arrived on the bus: show it now from what is known, then read the store at once. */
  #wake(): void {
    if (!this.#running) return;
    this.#publish(JSON.stringify(this.#reader.readCached(nowMicros())));
    if (this.#reading) return void (this.#again = true);
    if (this.#timer !== undefined) clearTimeout(this.#timer);
    this.#timer = undefined;
    void this.#tick(this.#generation);
  }

  #publish(json: string): void {
    if (json === this.#last) return;
    this.#last = json;
    for (const l of this.#listeners) l(json);
  }

  /** Calls `listener` with the current inbox at once (when known) and on every change; returns the unsubscribe. */
  subscribe(listener: Listener): () => void {
    this.#listeners.add(listener);
    if (this.#last !== undefined) listener(this.#last);
    if (!this.#running) {
      this.#running = true;
      void this.#tick(this.#generation);
    }
    return () => {
      this.#listeners.delete(listener);
      if (this.#listeners.size === 0) this.stop();
    };
  }

  stop(): void {
    this.#running = false;
    this.#generation++;
    this.#last = undefined;
    if (this.#timer !== undefined) clearTimeout(this.#timer);
    this.#timer = undefined;
  }

  async #tick(generation: number): Promise<void> {
    this.#reading = true;
    this.#again = false;
    try {
      const json = JSON.stringify(await this.#reader.read(nowMicros()));
      if (generation !== this.#generation) return;
      this.#publish(json);
    } catch (err) {
      this.#logger.warn('console inbox read failed', { error: describeError(err) });
    } finally {
      this.#reading = false;
    }
    if (generation === this.#generation) this.#timer = setTimeout(() => void this.#tick(generation), this.#again ? 0 : POLL_MS);
  }
}

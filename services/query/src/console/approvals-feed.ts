import type { Logger } from '../../../../core/src/log.js';
import { describeError } from '../../../../core/src/errors.js';
import type { Store } from '../../../../core/src/store/store.js';
import { nowMicros } from '../../../../schemas/src/events.js';
import { readInbox } from './inbox.js';

/** How often the inbox is read while someone watches it; a hold shows within about this plus the ledger's delay. */
const POLL_MS = 250;

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

  constructor(private readonly store: Store, private readonly logger: Logger) {}

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
    try {
      const json = JSON.stringify(await readInbox(this.store, nowMicros()));
      if (generation !== this.#generation) return;
      if (json !== this.#last) {
        this.#last = json;
        for (const l of this.#listeners) l(json);
      }
    } catch (err) {
      this.logger.warn('console inbox read failed', { error: describeError(err) });
    }
    if (generation === this.#generation) this.#timer = setTimeout(() => void this.#tick(generation), POLL_MS);
  }
}

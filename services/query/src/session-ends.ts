import type { Bus, Subscription } from '../../../core/src/bus/bus.js';
import type { SessionClosed } from '../../../schemas/src/events.js';

/**
 * Tells a waiter when a session's SessionClosed is on the bus (so durable: the bus delivers only
 * what it acknowledged). The query API waits on it after asking, over the bus, for a session held
 * by a proxy in another process to end. One consumer group per query process (deleted when it
 * stops), read from the newest event on: it is only ever asked about sessions it saw closing from now.
 */
export class SessionEnds {
  readonly #waiters = new Map<string, Set<(closed: SessionClosed | undefined) => void>>();
  #subscription: Subscription | undefined;

  constructor(private readonly bus: Bus) {}

  async start(): Promise<void> {
    this.#subscription = await this.bus.subscribe({
      group: 'session-ends', perProcess: true, types: ['SessionClosed'], from: 'latest',
      handler: async (batch) => {
        for (const e of batch) {
          if (e.type !== 'SessionClosed') continue;
          for (const resolve of this.#waiters.get(e.session_id) ?? []) resolve(e);
        }
      },
    });
  }

  /** Resolves with the session's SessionClosed, or `undefined` after `timeoutMs`. Register before asking. */
  wait(sessionId: string, timeoutMs: number): { ended: Promise<SessionClosed | undefined>; cancel: () => void } {
    let set = this.#waiters.get(sessionId);
    if (set === undefined) this.#waiters.set(sessionId, (set = new Set()));
    const waiters = set;
    let done!: (closed: SessionClosed | undefined) => void;
    const ended = new Promise<SessionClosed | undefined>((resolve) => (done = resolve));
    const timer = setTimeout(() => finish(undefined), timeoutMs);
    const finish = (closed: SessionClosed | undefined) => {
      clearTimeout(timer);
      waiters.delete(finish);
      if (waiters.size === 0) this.#waiters.delete(sessionId);
      done(closed);
    };
    waiters.add(finish);
    return { ended, cancel: () => finish(undefined) };
  }

  async close(): Promise<void> {
    await this.#subscription?.close();
    for (const set of this.#waiters.values()) for (const finish of [...set]) finish(undefined);
  }
}

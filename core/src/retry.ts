import { setTimeout as sleep } from 'node:timers/promises';

/**
 * The one way Agate waits between attempts (a bus that is not up yet, a handler that failed, a
 * receiver that answered 5xx): exponential steps from `firstMs`, doubling to at most `maxMs`,
 * each wait drawn at random from the upper half of its step. Never less than half keeps a retry
 * loop's pace predictable; the random half keeps many clients that failed together (every proxy
 * when a broker restarts) from retrying in step.
 *
 * @example
 * const backoff = new Backoff({ firstMs: 100, maxMs: 5_000 });
 * for (;;) {
 *   try { return await publish(); } catch { await pause(backoff.next(), signal); }
 * }
 */
interface BackoffPolicy {
  /** The first step; the first wait is between half of it and all of it. */
  firstMs: number;
  /** The largest step. */
  maxMs: number;
}

export class Backoff {
  readonly #random: () => number;
  #step: number;

  constructor(readonly policy: BackoffPolicy, random: () => number = Math.random) {
    this.#random = random;
    this.#step = Math.min(policy.firstMs, policy.maxMs);
  }

  /** The next wait in milliseconds; the step after it is twice as long, up to `maxMs`. */
  next(): number {
    const wait = Math.round(this.#step * (0.5 + this.#random() / 2));
    this.#step = Math.min(this.#step * 2, this.policy.maxMs);
    return wait;
  }

  /** After a success: the next failure starts from the first step again. */
  reset(): void {
    this.#step = Math.min(this.policy.firstMs, this.policy.maxMs);
  }
}

/** Waits `ms`; resolves early, without throwing, when `signal` aborts (the caller checks it). */
export function pause(ms: number, signal?: AbortSignal): Promise<void> {
  return sleep(ms, undefined, signal === undefined ? undefined : { signal }).catch(() => undefined);
}

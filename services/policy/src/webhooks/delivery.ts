import type { Logger } from '../../../../core/src/log.js';
import { Backoff, pause } from '../../../../core/src/retry.js';
import { SIGNATURE_HEADER, signWebhook } from '../../../../core/src/webhooks/signature.js';
import type { Notification } from './payload.js';

interface WebhookDeliveryOptions {
  url: string;
  secret: string;
  logger: Logger;
  maxAttempts: number;
  queueSize: number;
  timeoutMs: number;
  /** The first backoff step (core/src/retry.ts), doubled per attempt up to 30 s. Default 500 ms. */
  retryBaseMs?: number;
}

/**
 * Delivers notifications to one receiver, one at a time, in order, retrying a network error, a
 * 5xx or a 429 with exponential backoff. The queue is bounded: a receiver that stays down loses
 * its oldest notifications (logged), never the policy service's memory. `enqueue` never waits,
 * so no verdict waits on a receiver. Logs name the receiver by origin and path only: a URL may
 * carry a token in its query, and the secret and signature are never logged.
 */
export class WebhookDelivery {
  readonly #queue: Notification[] = [];
  readonly #stop = new AbortController();
  readonly #where: string;
  #wake: (() => void) | undefined;
  readonly #done: Promise<void>;

  readonly #options: WebhookDeliveryOptions;

  constructor(options: WebhookDeliveryOptions) {
    this.#options = options;
    const u = new URL(options.url);
    this.#where = `${u.origin}${u.pathname}`;
    this.#done = this.#loop();
  }

  enqueue(n: Notification): void {
    if (this.#stop.signal.aborted) return;
    if (this.#queue.length >= this.#options.queueSize) {
      const dropped = this.#queue.shift()!;
      this.#options.logger.warn('webhook queue full; oldest notification dropped', { receiver: this.#where, notification: dropped.id, type: dropped.type });
    }
    this.#queue.push(n);
    this.#wake?.();
  }

  /** Stops at once; what is still queued is logged as undelivered. */
  async stop(): Promise<void> {
    this.#stop.abort();
    this.#wake?.();
    await this.#done;
    if (this.#queue.length > 0) this.#options.logger.warn('webhook notifications undelivered at shutdown', { receiver: this.#where, count: this.#queue.length });
  }

  async #loop(): Promise<void> {
    const signal = this.#stop.signal;
    while (!signal.aborted) {
      const next = this.#queue[0];
      if (next === undefined) {
        await new Promise<void>((resolve) => (this.#wake = resolve));
        this.#wake = undefined;
        continue;
      }
      await this.#deliver(next, signal);
      if (!signal.aborted) this.#queue.shift();
    }
  }

  async #deliver(n: Notification, signal: AbortSignal): Promise<void> {
    const { url, secret, logger, maxAttempts, timeoutMs } = this.#options;
    const backoff = new Backoff({ firstMs: this.#options.retryBaseMs ?? 500, maxMs: 30_000 });
    for (let attempt = 1; attempt <= maxAttempts && !signal.aborted; attempt++) {
      let outcome: string;
      try {
        // Signed at each attempt: a retry minutes later still falls inside the receiver's tolerance.
        const res = await fetch(url, {
          method: 'POST',
          headers: {
            'content-type': 'application/json',
            [SIGNATURE_HEADER]: signWebhook(secret, n.body, Math.floor(Date.now() / 1000)),
            'agate-event': n.type,
            'agate-delivery': n.id,
            'user-agent': 'agate-webhooks/1',
          },
          body: n.body,
          signal: AbortSignal.any([signal, AbortSignal.timeout(timeoutMs)]),
        });
        await res.arrayBuffer();
        if (res.ok) return;
        outcome = `HTTP ${res.status}`;
        if (res.status < 500 && res.status !== 429 && res.status !== 408) {
          logger.warn('webhook receiver refused the notification; not retried', { receiver: this.#where, notification: n.id, type: n.type, status: res.status });
          return;
        }
      } catch (err) {
        if (signal.aborted) return;
        outcome = (err as Error).name === 'TimeoutError' ? 'timed out' : `unreachable (${(err as { cause?: { code?: string } }).cause?.code ?? (err as Error).name})`;
      }
      if (attempt === maxAttempts) {
        logger.error('webhook notification given up', { receiver: this.#where, notification: n.id, type: n.type, attempts: attempt, last: outcome });
        return;
      }
      const delay = backoff.next();
      logger.warn('webhook delivery failed; will retry', { receiver: this.#where, notification: n.id, type: n.type, attempt, last: outcome, retry_in_ms: delay });
      await pause(delay, signal);
    }
  }
}

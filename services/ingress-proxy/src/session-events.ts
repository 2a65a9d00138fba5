import type { Bus } from '../../../core/src/bus/bus.js';
import { describeError } from '../../../core/src/errors.js';
import type { Logger } from '../../../core/src/log.js';
import type { AgateEvent } from '../../../schemas/src/events.js';

/**
 * One session's events, published in session order whatever the protocol: each publish starts
 * after the previous one is durable, so a response can never be recorded before its command.
 */
export class SessionEvents {
  #chain: Promise<void> = Promise.resolve();

  constructor(private readonly bus: Bus, private readonly log: Logger) {}

  /** Resolves when the event is durable; rejects when it could not be recorded. */
  emit(event: AgateEvent): Promise<void> {
    const next = this.#chain.then(() => this.bus.publish(event));
    this.#chain = next.catch(() => undefined);
    return next;
  }

  /** For events whose loss the caller cannot act on: a failure is logged, never thrown. */
  async emitLogged(event: AgateEvent): Promise<void> {
    try {
      await this.emit(event);
    } catch (err) {
      this.log.error('cannot record an event', { event_type: event.type, event_id: event.event_id, error: describeError(err) });
    }
  }

  /** Settles once everything emitted so far has been published or has failed. */
  drained(): Promise<void> {
    return this.#chain;
  }
}

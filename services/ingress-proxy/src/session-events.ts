import type { Bus } from '../../../core/src/bus/bus.js';
import { AgateError, describeError } from '../../../core/src/errors.js';
import type { Logger } from '../../../core/src/log.js';
import { Backoff, pause } from '../../../core/src/retry.js';
import { randomUUID } from 'node:crypto';
import { nowMicros, type AgateEvent, type Command, type Verdict } from '../../../schemas/src/events.js';

interface RetryPolicy {
  /** The first backoff step (core/src/retry.ts); doubled after each retry, up to maxDelayMs. */
  firstDelayMs: number;
  maxDelayMs: number;
  /** After this long the event is given up on (logged as lost). */
  giveUpAfterMs: number;
}

/**
 * A broker restart takes seconds and an outage can take minutes. Meanwhile the session runs no
 * new statement (its commands cannot be recorded, so they are refused), so only events already
 * in hand wait: the responses of statements that ran and the session's close.
 */
const DEFAULT_RETRY: RetryPolicy = { firstDelayMs: 100, maxDelayMs: 5_000, giveUpAfterMs: 15 * 60_000 };

/**
 * How far past the verdict deadline a refused command is queued again: policy compares the
 * command's time with its own clock, which may run a little behind the proxy's.
 */
const STALE_MARGIN_MS = 250;

/** The rule id of the verdict recorded for a command the bus could not take in time. */
export const UNRECORDABLE_RULE = 'agate.audit-unavailable';

/**
 * One session's events, published in session order whatever the protocol: each publish starts
 * after the previous one is durable, so a response can never be recorded before its command.
 */
export class SessionEvents {
  #chain: Promise<void> = Promise.resolve();

  readonly #bus: Bus;
  readonly #log: Logger;
  readonly #retry: RetryPolicy;

  constructor(bus: Bus, log: Logger, retry: RetryPolicy = DEFAULT_RETRY) {
    this.#bus = bus;
    this.#log = log;
    this.#retry = retry;
  }

  /** Resolves when the event is durable; rejects when it could not be recorded. */
  emit(event: AgateEvent): Promise<void> {
    return this.#enqueue(() => this.#bus.publish(event));
  }

  /**
   * For events nobody waits on to go on (a statement's response, the session's close): a bus
   * that refuses them for a retriable reason (a broker away) is tried again, in place, so the
   * session's later events stay behind them, until it takes them or `giveUpAfterMs` passes. A
   * failure is logged, never thrown.
   */
  async emitLogged(event: AgateEvent): Promise<void> {
    try {
      await this.#enqueue(() => this.#publishRetrying(event));
    } catch (err) {
      this.#log.error('cannot record an event', { event_type: event.type, event_id: event.event_id, error: describeError(err) });
    }
  }

  /**
   * A command the bus refused to take (the backbone is away) is refused to the client and never
   * runs. The attempt is still part of the record: the command and a verdict saying why it was
   * refused are queued, like a response, until the bus takes them. Publishing the same event id
   * again is harmless if the first attempt did land (consumers are idempotent by event id). The
   * command is queued no earlier than `staleAfterMs` after its time (see `recordRefusal`).
   */
  recordUnrecordable(command: Command, staleAfterMs: number): void {
    this.#queueRefusal(command, Promise.resolve(false), staleAfterMs, {
      type: 'Verdict', event_id: randomUUID(), time: nowMicros(), session_id: command.session_id, command_id: command.event_id,
      decision: 'deny', rule_id: UNRECORDABLE_RULE, reason: 'the audit log was unavailable, so the command could not be recorded before running; refused (fail closed)',
      source: 'deadline', policy_revision: '', mask_set: null, approval_id: null, hold_expires_at: null,
    });
  }

  /**
   * Records a command the proxy refused without policy's answer, then `verdict`, the refusal
   * (none for a question that went unanswered). `published` is the command's own publish: if it
   * fails, even after the deadline passed (a broker that went away with the command in flight),
   * the command is queued here until the bus takes it, so the attempt stays in the record ahead
   * of its refusal. It is queued no earlier than `staleAfterMs` after the command's time: policy
   * skips commands that old, so it never decides one the client has already been refused.
   */
  recordRefusal(command: Command, published: Promise<void>, staleAfterMs: number, verdict?: Verdict): void {
    // Handled now, not when the queue reaches it: a rejection left unhandled meanwhile kills the process.
    this.#queueRefusal(command, published.then(() => true, () => false), staleAfterMs, verdict);
  }

  #queueRefusal(command: Command, landed: Promise<boolean>, staleAfterMs: number, verdict: Verdict | undefined): void {
    void this.#enqueue(async () => {
      if (await landed) return;
      const stale = command.time / 1000 + staleAfterMs + STALE_MARGIN_MS - Date.now();
      if (stale > 0) await new Promise((r) => setTimeout(r, stale));
      await this.#publishRetrying(command);
    }).catch((err: unknown) => this.#log.error('cannot record an event', { event_type: command.type, event_id: command.event_id, error: describeError(err) }));
    if (verdict !== undefined) void this.emitLogged(verdict);
  }

  /** Settles once everything emitted so far has been published or has failed. */
  drained(): Promise<void> {
    return this.#chain;
  }

  #enqueue(publish: () => Promise<void>): Promise<void> {
    const next = this.#chain.then(publish);
    this.#chain = next.catch(() => undefined);
    return next;
  }

  async #publishRetrying(event: AgateEvent): Promise<void> {
    const started = Date.now();
    const backoff = new Backoff({ firstMs: this.#retry.firstDelayMs, maxMs: this.#retry.maxDelayMs });
    for (let attempt = 1; ; attempt++) {
      try {
        await this.#bus.publish(event);
        if (attempt > 1) this.#log.info('recorded an event after the bus came back', { event_type: event.type, event_id: event.event_id, attempts: attempt });
        return;
      } catch (err) {
        const retriable = err instanceof AgateError && err.retriable;
        const delay = backoff.next();
        if (!retriable || Date.now() - started + delay > this.#retry.giveUpAfterMs) throw err;
        if (attempt === 1) this.#log.warn('the bus refused an event; retrying until it takes it', { event_type: event.type, event_id: event.event_id, error: describeError(err) });
        await pause(delay);
      }
    }
  }
}

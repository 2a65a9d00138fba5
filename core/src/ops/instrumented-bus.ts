import type { Bus, InlineDecider, SubscribeOptions, Subscription, VerdictOutcome, VerdictRequestOptions } from '../bus/bus.js';
import type { AgateEvent, Command, Protocol } from '../../../schemas/src/events.js';
import { checkpointPublished, metrics } from './metrics.js';
import { READY, notReady, type Readiness } from './readiness.js';

/** A failed write keeps the bus "not ready" this long even if the broker answers pings again. */
const WRITE_FAILURE_HOLD_MS = 5_000;

/**
 * Wraps a bus so that everything the services already send through it feeds metrics and
 * readiness, without a hook in each protocol: commands and verdicts (decisions, latency, holds),
 * sessions opening and closing, failed logins, checkpoints, publish latency, and each consumer
 * group's progress. Events themselves pass through untouched.
 */
export class InstrumentedBus implements Bus {
  /** Open sessions' protocols: SessionClosed does not carry one. */
  readonly #sessions = new Map<string, Protocol>();
  #lastWriteFailure: { at: number; reason: string } | undefined;

  /** Present when the inner bus has it (the embedded bus). */
  readonly decideInline?: (decider: InlineDecider | undefined) => void;

  constructor(readonly inner: Bus, private readonly readiness: Readiness, private readonly ping?: () => Promise<void>) {
    readiness.probe('bus', () => this.#probe());
    if (inner.decideInline !== undefined) this.decideInline = (decider) => inner.decideInline!(decider);
  }

  get lease(): string | undefined {
    return this.inner.lease;
  }

  async publish(event: AgateEvent): Promise<void> {
    const started = performance.now();
    try {
      await this.inner.publish(event);
    } catch (err) {
      this.#writeFailed(err);
      metrics.publishLatency.observe({ type: event.type, outcome: 'error' }, (performance.now() - started) / 1000);
      throw err;
    }
    metrics.publishLatency.observe({ type: event.type, outcome: 'ok' }, (performance.now() - started) / 1000);
    this.#lastWriteFailure = undefined;
    this.#published(event);
  }

  async requestVerdict(command: Command, deadlineMs: number, options: VerdictRequestOptions = {}): Promise<VerdictOutcome> {
    const started = performance.now();
    const protocol = command.protocol;
    let held = false;
    const onHold = options.onHold;
    let outcome: VerdictOutcome;
    try {
      outcome = await this.inner.requestVerdict(command, deadlineMs, onHold === undefined ? options : {
        onHold: (v) => {
          if (!held) {
            held = true;
            metrics.verdictLatency.observe({ protocol, decision: 'hold' }, (performance.now() - started) / 1000);
            metrics.holdsPending.inc({ protocol });
          }
          onHold(v);
        },
      });
    } catch (err) {
      this.#writeFailed(err);
      if (held) metrics.holdsPending.dec({ protocol });
      throw err;
    }
    if (held) metrics.holdsPending.dec({ protocol });
    this.#lastWriteFailure = undefined;
    const decision = outcome.kind === 'verdict' ? outcome.verdict.decision : 'timeout';
    // The latency to the first verdict: a hold's was observed when it came.
    if (!held) metrics.verdictLatency.observe({ protocol, decision }, (performance.now() - started) / 1000);
    metrics.commands.inc({ protocol, decision, rule: outcome.kind === 'verdict' ? outcome.verdict.rule_id ?? 'none' : 'none' });
    return outcome;
  }

  async subscribe(options: SubscribeOptions): Promise<Subscription> {
    const { group } = options;
    const component = `consumer.${group}`;
    const subscription = await this.inner.subscribe({
      ...options,
      handler: async (batch, source) => {
        try {
          await options.handler(batch, source);
        } catch (err) {
          metrics.consumerFailures.inc({ group });
          this.readiness.set(component, notReady(err, 'handler failing: '));
          throw err;
        }
        this.readiness.set(component, READY);
        metrics.consumed.inc({ group }, batch.length);
        const newest = batch.reduce((t, e) => Math.max(t, e.time), 0);
        if (newest > 0) metrics.consumerLag.set({ group }, Math.max(0, Date.now() / 1000 - newest / 1e6));
      },
    });
    this.readiness.set(component, READY);
    return {
      close: async () => {
        await subscription.close();
        this.readiness.remove(component);
      },
    };
  }

  async close(): Promise<void> {
    this.readiness.remove('bus');
    await this.inner.close();
  }

  #published(event: AgateEvent): void {
    switch (event.type) {
      case 'SessionOpened':
        this.#sessions.set(event.session_id, event.protocol);
        metrics.sessionsOpen.inc({ protocol: event.protocol });
        return;
      case 'SessionClosed': {
        const protocol = this.#sessions.get(event.session_id);
        if (protocol === undefined) return;
        this.#sessions.delete(event.session_id);
        metrics.sessionsOpen.dec({ protocol });
        return;
      }
      case 'AuthenticationFailed':
        metrics.authFailures.inc({ protocol: event.protocol, reason: event.reason_code });
        return;
      case 'Checkpoint':
        checkpointPublished(event.chain_id, event.time);
        return;
    }
  }

  #writeFailed(err: unknown): void {
    const state = notReady(err, 'last write failed: ');
    if (!state.ready) this.#lastWriteFailure = { at: Date.now(), reason: state.reason };
  }

  /**
   * Why the last publish failed, while that is recent (a publish since succeeded, or
   * WRITE_FAILURE_HOLD_MS passed: undefined). Commands are refused meanwhile (fail closed).
   */
  writeProblem(): string | undefined {
    const failure = this.#lastWriteFailure;
    return failure !== undefined && Date.now() - failure.at < WRITE_FAILURE_HOLD_MS ? `commands are refused: ${failure.reason}` : undefined;
  }

  async #probe() {
    const failure = this.#lastWriteFailure;
    if (failure !== undefined && Date.now() - failure.at < WRITE_FAILURE_HOLD_MS) return { ready: false as const, reason: failure.reason };
    if (this.ping !== undefined) await this.ping();
    return READY;
  }
}

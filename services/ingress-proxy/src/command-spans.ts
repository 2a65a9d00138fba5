import type { Bus, InlineDecider, SubscribeOptions, Subscription, VerdictOutcome, VerdictRequestOptions } from '../../../core/src/bus/bus.js';
import type { TraceSpan, Tracing } from '../../../core/src/tracing/tracing.js';
import type { AgateEvent, Command } from '../../../schemas/src/events.js';

/** Spans of commands still waiting for their Response; past this, the oldest is ended as is. */
const MAX_OPEN_SPANS = 10_000;

/**
 * The proxies' side of tracing, in one place for every protocol: wraps the bus so that each
 * command asked a verdict for gets a span (a child of the trace context the session put on the
 * command, the client's, or a new trace) and is written carrying that span's context; the events
 * the proxy then writes about the same command (its Response, a refusal's Verdict, the command
 * itself queued again) carry it too, and the span ends with the command's Response.
 * Used only when trace export is on; everything else passes through untouched.
 */
export class CommandSpans implements Bus {
  /** By command id, oldest first (Map order), bounded by MAX_OPEN_SPANS. */
  readonly #open = new Map<string, TraceSpan>();

  readonly decideInline?: (decider: InlineDecider | undefined) => void;

  constructor(readonly inner: Bus, private readonly tracing: Tracing, private readonly maxOpen = MAX_OPEN_SPANS) {
    if (inner.decideInline !== undefined) this.decideInline = (decider) => inner.decideInline!(decider);
  }

  get lease(): string | undefined {
    return this.inner.lease;
  }

  problem(): string | undefined {
    return this.inner.problem?.();
  }

  async requestVerdict(command: Command, deadlineMs: number, options?: VerdictRequestOptions): Promise<VerdictOutcome> {
    const span = this.tracing.start(`${command.protocol} command`, command.trace_parent, {
      kind: 'server',
      attributes: { 'agate.protocol': command.protocol, 'agate.target': command.target, 'agate.session_id': command.session_id, 'agate.command_id': command.event_id },
    });
    this.#remember(command.event_id, span);
    let outcome: VerdictOutcome;
    try {
      outcome = await this.inner.requestVerdict({ ...command, trace_parent: span.traceParent }, deadlineMs, options);
    } catch (err) {
      span.set({ 'agate.decision': 'unrecorded' });
      // The session records the command later (SessionEvents): its events still carry the span.
      throw err;
    }
    span.set({ 'agate.decision': outcome.kind === 'verdict' ? outcome.verdict.decision : 'timeout' });
    return outcome;
  }

  async publish(event: AgateEvent): Promise<void> {
    const commandId = event.type === 'Command' ? event.event_id : event.type === 'Verdict' || event.type === 'Response' ? event.command_id : undefined;
    const span = commandId === undefined ? undefined : this.#open.get(commandId);
    if (span === undefined || (event.type !== 'Command' && event.type !== 'Verdict' && event.type !== 'Response')) return this.inner.publish(event);
    const traced = event.trace_parent === undefined || event.trace_parent === null ? { ...event, trace_parent: span.traceParent } : event;
    if (event.type !== 'Response') return this.inner.publish(traced);
    this.#open.delete(commandId!);
    try {
      await this.inner.publish(traced);
    } catch (err) {
      span.end(err);
      throw err;
    }
    span.set({ 'agate.status': event.status, 'agate.rows': event.rows });
    span.end(event.status === 'error' ? new Error(event.error_code ?? 'the target answered with an error') : undefined);
  }

  subscribe(options: SubscribeOptions): Promise<Subscription> {
    return this.inner.subscribe(options);
  }

  async close(): Promise<void> {
    for (const span of this.#open.values()) span.end();
    this.#open.clear();
    await this.inner.close();
  }

  #remember(commandId: string, span: TraceSpan): void {
    this.#open.set(commandId, span);
    if (this.#open.size <= this.maxOpen) return;
    // A command whose Response never came (its session died first): ended as it stands.
    const [oldestId, oldest] = this.#open.entries().next().value!;
    this.#open.delete(oldestId);
    oldest.set({ 'agate.response': 'none' });
    oldest.end();
  }
}

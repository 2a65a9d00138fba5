import type { Bus, Subscription } from '../../../core/src/bus/bus.js';
import type { Logger } from '../../../core/src/log.js';
import type { Tracing } from '../../../core/src/tracing/tracing.js';
import { describeError } from '../../../core/src/errors.js';
import { randomUUID } from 'node:crypto';
import { approverRefusal } from '../../../core/src/approvals.js';
import { nowMicros, proxyDecidedRule, SETTLED_ATTRIBUTE, type AgateEvent, type ApprovalDecision, type ApprovalRequested, type Command, type Verdict } from '../../../schemas/src/events.js';
import { eventId } from '../../../schemas/src/event-id.js';
import type { ApprovalHistory, RecordedApproval } from './approval-history.js';
import type { CompiledPolicy } from './engine.js';

interface PolicyServiceOptions {
  bus: Bus;
  policy: CompiledPolicy;
  logger: Logger;
  /** Commands older than this were already refused by their proxy's deadline: skip them on replay. */
  staleAfterMs: number;
  /**
   * The ledger's record of approvals: on start, the ones still open are taken up again (timers
   * re-armed, answers given so far counted), and an answer for an approval this instance does
   * not hold is looked up there (another instance, or this one before a restart, held it).
   */
  history?: ApprovalHistory;
  /**
   * True when every proxy that can be waiting on this service's verdicts started with it (the
   * embedded mode: one process, one local bus). Holds made before this start then have no client
   * left to release; they are refused, so the ledger shows a refusal rather than an approval of a
   * statement that never ran.
   */
  holdsDieWithProcess?: boolean;
  /** With trace export on: a span per decision, continuing the command's trace (its `trace_parent`). */
  tracing?: Tracing;
}

/** A held command this instance decided, waiting for approvers or its expiry. */
interface PendingApproval {
  request: ApprovalRequested;
  revision: string;
  /** `issuer subject` of each distinct approver so far. */
  approvedBy: Set<string>;
  timer: NodeJS.Timeout;
  /** The hold verdict's trace context: the final verdict carries it too. */
  traceParent?: string | null;
}

/**
 * Consumes command events and publishes a verdict for each, except a command its proxy decided
 * itself by a built-in rule (PROXY_DECIDED_ATTRIBUTE), whose only verdict is the proxy's. A
 * command a `hold` rule matches gets a `hold` verdict and an `ApprovalRequested` event; the
 * approval stays pending here until
 * `ApprovalDecision` events (published by the query service) approve it, one denies it, or it
 * expires; then the final verdict goes out for the same command.
 */
export class PolicyService {
  #subscription: Subscription | undefined;
  #policy: CompiledPolicy;
  readonly #pending = new Map<string, PendingApproval>();
  /** Ledger look-ups in flight, so two answers in one batch adopt an approval once. */
  readonly #lookups = new Map<string, Promise<PendingApproval | undefined>>();
  readonly #startedAt = nowMicros();

  readonly #options: PolicyServiceOptions;

  constructor(options: PolicyServiceOptions) {
    this.#options = options;
    this.#policy = options.policy;
  }

  get policy(): CompiledPolicy {
    return this.#policy;
  }

  /** Replaces the policy for commands decided from now on; pending approvals keep their rule. */
  setPolicy(policy: CompiledPolicy): void {
    this.#policy = policy;
  }

  async start(): Promise<void> {
    await this.#recover();
    const { bus } = this.#options;
    // In one process with the proxies (the embedded bus), commands are decided as they are
    // written, in the same durable write as their verdict; policy then consumes only answers.
    const inline = bus.decideInline !== undefined;
    bus.decideInline?.({ decide: (command) => this.#decideNow(command), written: (events) => this.#track(events) });
    this.#subscription = await bus.subscribe({
      group: 'policy',
      types: inline ? ['ApprovalDecision'] : ['Command', 'ApprovalDecision'],
      handler: async (batch) => {
        // Published together: one group commit for the batch instead of one per verdict.
        const work: Promise<void>[] = [];
        for (const event of batch) {
          if (event.type === 'Command') work.push(this.#decide(event));
          else if (event.type === 'ApprovalDecision') work.push(this.#answer(event));
        }
        await Promise.all(work);
      },
    });
  }

  async stop(): Promise<void> {
    this.#options.bus.decideInline?.(undefined);
    await this.#subscription?.close();
    for (const p of this.#pending.values()) clearTimeout(p.timer);
    this.#pending.clear();
  }

  /** A command read from the bus: its verdict (after the approval request, for a hold) is published. */
  async #decide(command: Command): Promise<void> {
    const events = this.#decideNow(command);
    for (const event of events) await this.#options.bus.publish(event);
    this.#track(events);
  }

  /**
   * The events that decide `command`, in the order they must be recorded: its verdict, or, for
   * a hold, the approval request (recorded before the proxy hears of the hold, so an approver who
   * acts at once finds it) and then the hold verdict. Never throws: a policy that fails on a
   * command refuses it. A hold's approval is held here only once these events are written (#track).
   */
  #decideNow(command: Command): AgateEvent[] {
    // Its proxy decided it by a built-in rule and records that verdict: a second one from
    // policy (a deny, say, for a discovery request that ran) would contradict the record.
    if (proxyDecidedRule(command) !== undefined) return [];
    const tracing = this.#options.tracing;
    if (tracing === undefined) return this.#evaluate(command);
    const span = tracing.start('policy decide', command.trace_parent, { kind: 'consumer', attributes: { 'agate.command_id': command.event_id, 'agate.session_id': command.session_id } });
    const events = this.#evaluate(command);
    const verdict = events.find((e): e is Verdict => e.type === 'Verdict');
    span.set({ 'agate.decision': verdict?.decision ?? 'none', 'agate.rule_id': verdict?.rule_id ?? '', 'agate.policy_revision': verdict?.policy_revision ?? '' });
    span.end();
    return events.map((e) => (e.type === 'Verdict' ? { ...e, trace_parent: span.traceParent } : e));
  }

  /** #decideNow's events, untraced. */
  #evaluate(command: Command): AgateEvent[] {
    const { logger, staleAfterMs } = this.#options;
    if (nowMicros() - command.time > staleAfterMs * 1000) {
      logger.debug('skipping a command past its verdict deadline', { command_id: command.event_id });
      return [];
    }
    const policy = this.#policy;
    const ids = { session_id: command.session_id, command_id: command.event_id };
    let d: ReturnType<CompiledPolicy['evaluate']>;
    try {
      d = policy.evaluate(command);
    } catch (err) {
      logger.error('policy failed on a command; refusing it', { command_id: command.event_id, error: describeError(err) });
      return [this.#verdict(ids, policy.revision, { decision: 'deny', rule_id: null, reason: 'policy could not evaluate the command; refused (fail closed)', mask_set: null })];
    }
    const verdict = this.#verdict(ids, policy.revision, { decision: d.decision, rule_id: d.rule_id, reason: d.reason, mask_set: d.mask_set });
    // A question (`kubectl auth can-i`, attributes.access_review) is answered, never held for
    // anyone; nor is a command recorded after it did not run (attributes.settled).
    if (d.decision !== 'hold' || command.attributes.access_review !== undefined || command.attributes[SETTLED_ATTRIBUTE] !== undefined) return [verdict];

    const approval = d.approval!;
    const now = nowMicros();
    const request: ApprovalRequested = {
      type: 'ApprovalRequested', event_id: randomUUID(), time: now, session_id: command.session_id, approval_id: randomUUID(),
      command_id: command.event_id, rule_id: d.rule_id!, target: command.target, requester_issuer: command.identity.issuer,
      requester_subject: command.identity.subject, text: command.text, required: approval.required,
      approvers: JSON.stringify(approval.approvers.claims), allow_self_approval: approval.allow_self_approval,
      expires_at: now + Math.round(approval.timeout_s * 1e6),
    };
    return [request, { ...verdict, approval_id: request.approval_id, hold_expires_at: request.expires_at }];
  }

  /**
   * Holds the approval of a hold decided by #decideNow once its request and verdict are written:
   * its expiry (a deny) armed, answers counted. A decision whose write failed is never tracked, so
   * no verdict is ever recorded for a hold, or a command, the log lacks.
   */
  #track(events: readonly AgateEvent[]): void {
    const request = events.find((e): e is ApprovalRequested => e.type === 'ApprovalRequested');
    const verdict = events.find((e): e is Verdict => e.type === 'Verdict');
    if (request === undefined || verdict === undefined || this.#pending.has(request.approval_id)) return;
    const timer = this.#armExpiry(request);
    this.#pending.set(request.approval_id, { request, revision: verdict.policy_revision, approvedBy: new Set(), timer, traceParent: verdict.trace_parent });
  }

  async #answer(answer: ApprovalDecision): Promise<void> {
    const { logger } = this.#options;
    if (answer.refused_reason !== null) return; // refused by the query service; recorded, counts for nothing
    const pending = this.#pending.get(answer.approval_id) ?? (await this.#lookUp(answer.approval_id));
    if (pending === undefined) {
      logger.debug('an approval decision for no approval pending here', { approval_id: answer.approval_id });
      return;
    }
    await this.#apply(pending, answer, nowMicros());
  }

  /** Counts one approver's answer given at `atMicros`; publishes the final verdict when it settles. */
  async #apply(pending: PendingApproval, answer: ApprovalDecision, atMicros: number): Promise<void> {
    const { logger } = this.#options;
    if (!this.#pending.has(pending.request.approval_id)) return; // settled meanwhile
    const refusal = approverRefusal(pending.request, answer, atMicros);
    if (refusal !== undefined) {
      logger.warn('approval decision refused', { approval_id: answer.approval_id, approver: answer.approver_subject, reason: refusal });
      return;
    }
    const who = `${answer.approver_issuer} ${answer.approver_subject}`;
    if (answer.decision === 'deny') {
      return this.#finish(pending, 'deny', `denied by approver ${answer.approver_subject}`);
    }
    pending.approvedBy.add(who);
    const { required } = pending.request;
    if (pending.approvedBy.size >= required) {
      await this.#finish(pending, 'allow', `approved by ${[...pending.approvedBy].map((w) => w.split(' ').pop()).join(', ')} (${required} required)`);
    }
  }

  /** Takes up the approvals the ledger shows open: held before a restart, still within their time. */
  async #recover(): Promise<void> {
    const { history, logger } = this.#options;
    if (history === undefined) return;
    let open: RecordedApproval[];
    try {
      open = await history.pending(nowMicros());
    } catch (err) {
      // Not fatal: an answer still finds its approval through #lookUp, and proxies time out holds.
      logger.warn('cannot read open approvals from the ledger', { error: String(err) });
      return;
    }
    for (const recorded of open) await this.#adopt(recorded);
    if (open.length > 0) logger.info('open approvals taken up from the ledger', { count: open.length });
  }

  async #lookUp(approvalId: string): Promise<PendingApproval | undefined> {
    const { history, logger } = this.#options;
    if (history === undefined) return undefined;
    let lookup = this.#lookups.get(approvalId);
    if (lookup === undefined) {
      lookup = history
        .find(approvalId, nowMicros())
        .then((recorded) => (recorded === undefined ? undefined : this.#adopt(recorded)))
        .catch((err: unknown) => {
          logger.warn('cannot look an approval up in the ledger', { approval_id: approvalId, error: String(err) });
          return undefined;
        })
        .finally(() => this.#lookups.delete(approvalId));
      this.#lookups.set(approvalId, lookup);
    }
    return lookup;
  }

  /** Holds a recorded approval here again: its expiry re-armed, its recorded answers counted. */
  async #adopt({ request, answers }: RecordedApproval): Promise<PendingApproval | undefined> {
    const existing = this.#pending.get(request.approval_id);
    if (existing !== undefined) return existing;
    const timer = this.#armExpiry(request);
    // The revision that held it is in the hold verdict; the final verdict names the one in force now.
    const pending: PendingApproval = { request, revision: this.#policy.revision, approvedBy: new Set(), timer };
    this.#pending.set(request.approval_id, pending);
    if (this.#options.holdsDieWithProcess === true && request.time < this.#startedAt) {
      await this.#finish(pending, 'deny', 'refused: Agate restarted while the command was held, and its client was disconnected; the command did not run');
      return undefined;
    }
    for (const answer of answers) if (answer.refused_reason === null) await this.#apply(pending, answer, answer.time);
    return this.#pending.get(request.approval_id);
  }

  /**
   * Node timers count from the event loop's cached clock and may fire a few milliseconds early;
   * the expiry re-arms until the clock has passed it, so a timeout verdict is never stamped
   * before the hold's expires_at (the query views call a deny at or after it a timeout).
   */
  #armExpiry(request: ApprovalRequested): NodeJS.Timeout {
    return setTimeout(() => void this.#expire(request.approval_id), Math.max(0, Math.ceil((request.expires_at - nowMicros()) / 1000)));
  }

  async #expire(approvalId: string): Promise<void> {
    const pending = this.#pending.get(approvalId);
    if (pending === undefined) return;
    const { request } = pending;
    if (nowMicros() < request.expires_at) {
      pending.timer = this.#armExpiry(request);
      return;
    }
    const seconds = Math.round((request.expires_at - request.time) / 1e6);
    await this.#finish(pending, 'deny', `no approval within ${seconds} s (${pending.approvedBy.size} of ${request.required}); refused`).catch((err: unknown) =>
      this.#options.logger.error('cannot publish the verdict of an expired approval', { approval_id: approvalId, error: String(err) }),
    );
  }

  async #finish(pending: PendingApproval, decision: 'allow' | 'deny', reason: string): Promise<void> {
    clearTimeout(pending.timer);
    this.#pending.delete(pending.request.approval_id);
    const v = this.#verdict(pending.request, pending.revision, { decision, rule_id: pending.request.rule_id, reason, mask_set: null });
    await this.#options.bus.publish({ ...v, approval_id: pending.request.approval_id, trace_parent: pending.traceParent ?? null });
  }

  #verdict(command: { session_id: string; command_id: string }, revision: string, d: Pick<Verdict, 'decision' | 'rule_id' | 'reason' | 'mask_set'>): Verdict {
    return {
      type: 'Verdict', event_id: eventId(), time: nowMicros(), session_id: command.session_id, command_id: command.command_id,
      ...d, source: 'policy', policy_revision: revision, approval_id: null, hold_expires_at: null,
    };
  }
}

import { randomUUID } from 'node:crypto';
import type { Bus } from '../../../core/src/bus/bus.js';
import { describeError } from '../../../core/src/errors.js';
import type { Logger } from '../../../core/src/log.js';
import { nowMicros, PROXY_DECIDED_ATTRIBUTE, type Command, type Verdict } from '../../../schemas/src/events.js';
import type { SessionEvents } from './session-events.js';

/** The rule id of the deny recorded when no verdict came in time. */
export const DEADLINE_RULE = 'agate.verdict-deadline';

/**
 * What the proxy does with one command, whatever the protocol: run it (allow or mask; the mask
 * set the verdict names, or the one a hold named), or refuse it because the command could not
 * be recorded, because no verdict came within the deadline, or because policy (or an approver,
 * or an expired hold) said no. Each protocol maps a refusal to its own error form.
 */
export type Decided =
  | { kind: 'run'; verdict: Verdict; maskSet: string | null }
  | { kind: 'unrecorded' }
  | { kind: 'deadline'; reason: string }
  | { kind: 'denied'; verdict: Verdict };

interface DecideDeps {
  bus: Bus;
  verdictTimeoutMs: number;
  /** The session's events: the deadline's Verdict and an unrecordable command are queued there. */
  events: SessionEvents;
  log: Logger;
}

/**
 * Publishes the command (write-ahead) and waits for its verdict; fails closed. A bus that will
 * not take the command refuses it and records it once the bus is back; a deadline passed
 * records the deny it amounts to. `onHold` hears of each hold while the wait goes on.
 *
 * @example
 * const d = await decide(command, { bus, verdictTimeoutMs, events, log }, { onHold: (v) => notify(v) });
 * if (d.kind !== 'run') return refuse(refusalText(d, 'statement'));
 */
export async function decide(command: Command, deps: DecideDeps, options: { onHold?: (verdict: Verdict) => void } = {}): Promise<Decided> {
  const { bus, verdictTimeoutMs, events, log } = deps;
  let heldMask: string | null = null;
  const onHold = options.onHold;
  let outcome;
  try {
    outcome = await bus.requestVerdict(command, verdictTimeoutMs, {
      // A hold names the set its result is masked with once released; the approval's verdict does not repeat it.
      onHold: onHold === undefined ? undefined : (v) => ((heldMask = v.mask_set), onHold(v)),
    });
  } catch (err) {
    log.error('cannot record a command; refusing it', { command_id: command.event_id, error: describeError(err) });
    events.recordUnrecordable(command, verdictTimeoutMs);
    return { kind: 'unrecorded' };
  }
  if (outcome.kind === 'timeout') {
    const reason = `no verdict within ${verdictTimeoutMs} ms; refused (fail closed)`;
    // The command's publish may still be in flight (a broker away): recorded either way.
    events.recordRefusal(command, outcome.published, verdictTimeoutMs, {
      type: 'Verdict', event_id: randomUUID(), time: nowMicros(), session_id: command.session_id, command_id: command.event_id,
      decision: 'deny', rule_id: DEADLINE_RULE, reason, source: 'deadline', policy_revision: '', mask_set: null, approval_id: null, hold_expires_at: null,
    });
    return { kind: 'deadline', reason };
  }
  const v = outcome.verdict;
  if (v.decision === 'allow') return { kind: 'run', verdict: v, maskSet: heldMask };
  if (v.decision === 'mask') return { kind: 'run', verdict: v, maskSet: v.mask_set };
  return { kind: 'denied', verdict: v }; // deny, or a hold that is final because no one is told of it
}

/**
 * The built-in rule of a deny a proxy records for a command it refused before asking policy (a
 * body it cannot record, a request it cannot audit): the reason says which.
 */
export const UNASKED_RULE = 'agate.refused-unasked';

/** The policy revision a verdict given by a built-in rule names. */
const BUILTIN_REVISION = 'builtin';

/**
 * Decides `command` here, by the built-in rule `rule`, without asking policy: marks the command
 * (PROXY_DECIDED_ATTRIBUTE, so the policy service gives it no verdict of its own) and returns
 * the verdict to record right after it, its only one. Call it before the command is published:
 * the mark must be in the recorded command. The only writer of that attribute.
 */
export function decideHere(command: Command, decision: 'allow' | 'deny', rule: `agate.${string}`, reason: string): Verdict {
  command.attributes[PROXY_DECIDED_ATTRIBUTE] = rule;
  return {
    type: 'Verdict', event_id: randomUUID(), time: nowMicros(), session_id: command.session_id, command_id: command.event_id, decision,
    rule_id: rule, reason, source: 'policy', policy_revision: BUILTIN_REVISION, mask_set: null, approval_id: null, hold_expires_at: null,
  };
}

/** The refusal's text for the client, naming what was refused (`statement`, `command`, `request`). */
export function refusalText(d: Exclude<Decided, { kind: 'run' }>, what: string): string {
  switch (d.kind) {
    case 'unrecorded':
      return `Agate refused the ${what}: the audit log is unavailable, so it cannot be recorded`;
    case 'deadline':
      return `Agate refused the ${what}: ${d.reason}`;
    case 'denied':
      return `Agate refused the ${what} by ${d.verdict.rule_id === null ? 'the policy default' : `rule "${d.verdict.rule_id}"`}: ${d.verdict.reason}`;
  }
}

/**
 * The mask set for what the client receives when the command runs: the verdict's (or the hold's)
 * if it names one, else the target's default. One not configured is `missing`: the caller refuses
 * rather than deliver unmasked.
 */
export function clientMasker<M>(d: Extract<Decided, { kind: 'run' }>, maskers: ReadonlyMap<string, M>, targetDefault: string | null | undefined): { ok: true; masker: M | undefined } | { ok: false; missing: string } {
  const name = d.maskSet ?? targetDefault ?? null;
  if (name === null) return { ok: true, masker: undefined };
  const masker = maskers.get(name);
  return masker === undefined ? { ok: false, missing: name } : { ok: true, masker };
}

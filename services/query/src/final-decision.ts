import { approverRefusal } from '../../../core/src/approvals.js';
import type { ApprovalDecision, ApprovalRefused, ApprovalRequested, Verdict } from '../../../schemas/src/events.js';

/*
 * The record's final decision on one command, worked out from its recorded verdicts, the hold's
 * request and the approvers' answers. Every interface (the command and session API, the CLI
 * through it, the OCSF export) reports this, so they cannot disagree: a held statement an
 * approver denied is a deny by that approver everywhere, never the hold's provisional "allow".
 */

/** Who settled a command. */
export type DecidedBy =
  | 'policy' // a rule or the policy default, without a hold
  | 'approver' // approvers released it (allow) or one refused it (deny)
  | 'timeout' // nobody approved before the hold's deadline
  | 'deadline' // no verdict reached the proxy in time; it refused (fail closed)
  | 'agate' // Agate refused a hold itself (its client was gone after a restart)
  | 'pending'; // still held, no final verdict yet

/** One approver's answer that policy counted. */
interface CountedAnswer {
  decision: 'approve' | 'deny';
  approver_issuer: string;
  approver_subject: string;
  comment: string | null;
  /** Microseconds since the epoch. */
  time: number;
}

/** An attempt to answer that was refused (no role, self-approval, wrong claims, too late): recorded, never an answer. */
interface RefusedAttempt {
  decision: 'approve' | 'deny';
  approver_issuer: string;
  approver_subject: string;
  refused_reason: string;
  time: number;
}

interface HoldRecord {
  approval_id: string;
  rule_id: string | null;
  /** When the hold verdict was given, and when it would time out (microseconds). */
  held_at: number;
  expires_at: number | null;
  /** Approvals needed; null when the request is not in the record. */
  required: number | null;
  /** Answers that counted, in order: these are the approvers' decisions. */
  answers: CountedAnswer[];
  refusals: RefusedAttempt[];
}

export interface FinalDecision {
  /** What was enforced: `hold` only while the command still waits. */
  decision: Verdict['decision'];
  decided_by: DecidedBy;
  rule_id: string | null;
  reason: string;
  /** The deciding verdict's event id and time (microseconds); the hold verdict's while pending. */
  verdict_id: string;
  time: number;
  /** Who settled it: the approvers whose answers decided (an approval, or the one deny). */
  approvers: CountedAnswer[];
  hold: HoldRecord | null;
}

/** Verdicts, requests and answers of one command as recorded (ledger order within each list). */
interface CommandDecisionEvents {
  verdicts: readonly Verdict[];
  requests?: readonly ApprovalRequested[];
  answers?: readonly ApprovalDecision[];
  /** Refused attempts to answer (ApprovalRefused): listed as refusals, never counted. */
  refused?: readonly ApprovalRefused[];
}

const byTime = <T extends { time: number }>(a: T, b: T) => a.time - b.time;

/**
 * The final decision, or undefined when no verdict was recorded. The last verdict that is not a
 * hold settles the command (a hold's release or refusal comes after it); with none, a hold is
 * still pending. An answer counts when it was accepted when given (no refused_reason), passes the
 * approver rules again (the policy service re-checks them) and came before the final verdict.
 */
/**
 * How far before a hold's expiry its timeout verdict may be stamped: versions before the policy
 * service re-armed early timers stamped up to a few ms early. The agate.decisions view uses it too.
 */
export const EXPIRY_SLACK_US = 5_000;

export function finalDecision(events: CommandDecisionEvents): FinalDecision | undefined {
  const { verdicts } = events;
  if (verdicts.length === 0) return undefined;
  const holdVerdict = verdicts.find((v) => v.decision === 'hold');
  const settled = [...verdicts].reverse().find((v) => v.decision !== 'hold');
  const deciding = settled ?? holdVerdict!;
  const base = { decision: deciding.decision, rule_id: deciding.rule_id, reason: deciding.reason, verdict_id: deciding.event_id, time: deciding.time };
  if (holdVerdict === undefined) {
    return { ...base, decided_by: deciding.source === 'deadline' ? 'deadline' : 'policy', approvers: [], hold: null };
  }

  const approvalId = holdVerdict.approval_id ?? '';
  const request = events.requests?.find((r) => r.approval_id === approvalId);
  const settledAt = settled?.time ?? Number.POSITIVE_INFINITY;
  const answers: CountedAnswer[] = [];
  const refusals: RefusedAttempt[] = [];
  for (const a of [...(events.answers ?? [])].filter((x) => x.approval_id === approvalId).sort(byTime)) {
    const who = { decision: a.decision, approver_issuer: a.approver_issuer, approver_subject: a.approver_subject, time: a.time };
    const refused = a.refused_reason ?? (request === undefined ? undefined : approverRefusal(request, a, a.time));
    if (refused !== undefined) refusals.push({ ...who, refused_reason: refused });
    else if (a.time > settledAt) refusals.push({ ...who, refused_reason: 'given after the command was decided' });
    else answers.push({ ...who, comment: a.comment });
  }
  for (const r of events.refused ?? []) {
    if (r.approval_id !== approvalId) continue;
    refusals.push({ decision: r.decision, approver_issuer: r.approver_issuer, approver_subject: r.approver_subject, time: r.time, refused_reason: r.refused_reason });
  }
  refusals.sort(byTime);
  const hold: HoldRecord = {
    approval_id: approvalId, rule_id: holdVerdict.rule_id, held_at: holdVerdict.time,
    expires_at: holdVerdict.hold_expires_at ?? request?.expires_at ?? null, required: request?.required ?? null, answers, refusals,
  };
  if (settled === undefined) return { ...base, decided_by: 'pending', approvers: [], hold };
  if (settled.source === 'deadline') return { ...base, decided_by: 'deadline', approvers: [], hold };
  if (settled.decision !== 'deny') return { ...base, decided_by: 'approver', approvers: distinctApprovers(answers.filter((a) => a.decision === 'approve')), hold };
  const denier = answers.find((a) => a.decision === 'deny');
  if (denier !== undefined) return { ...base, decided_by: 'approver', approvers: [denier], hold };
  // Node timers may fire up to a millisecond before the microsecond expiry they were set from.
  const timedOut = hold.expires_at !== null && settled.time >= hold.expires_at - EXPIRY_SLACK_US;
  return { ...base, decided_by: timedOut ? 'timeout' : 'agate', approvers: [], hold };
}

/** The first answer of each approver: a second approval by the same person does not count twice. */
function distinctApprovers(answers: CountedAnswer[]): CountedAnswer[] {
  const seen = new Set<string>();
  return answers.filter((a) => {
    const key = `${a.approver_issuer} ${a.approver_subject}`;
    return seen.has(key) ? false : (seen.add(key), true);
  });
}

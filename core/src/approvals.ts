import { anyGlob } from './glob.js';
import type { ApprovalDecision, ApprovalRequested } from '../../schemas/src/events.js';

/** The parts of an approver's answer the rules look at. */
type Approver = Pick<ApprovalDecision, 'approver_issuer' | 'approver_subject' | 'approver_claims'>;

/**
 * Why `approver` may not answer `request`, or undefined when they may. Both the query service
 * (to answer the approver at once) and the policy service (which decides) apply it.
 */
export function approverRefusal(request: ApprovalRequested, approver: Approver, nowMicros: number): string | undefined {
  if (nowMicros >= request.expires_at) return 'the approval has expired';
  const self = approver.approver_issuer === request.requester_issuer && approver.approver_subject === request.requester_subject;
  if (self && !request.allow_self_approval) return 'self-approval is not allowed: the approver is the identity that ran the command';
  let wanted: Record<string, string | string[]>;
  try {
    wanted = JSON.parse(request.approvers) as Record<string, string | string[]>;
  } catch {
    return 'the approval names no readable approver claims';
  }
  for (const [name, globs] of Object.entries(wanted)) {
    const value = name === 'sub' ? approver.approver_subject : name === 'iss' ? approver.approver_issuer : approver.approver_claims[name];
    if (value === undefined || !claimMatches(value, globs)) return `the approver lacks claim ${name} matching ${JSON.stringify(globs)}`;
  }
  return undefined;
}

// A list claim (JSON-encoded, e.g. groups) matches when any of its entries does.
function claimMatches(value: string, globs: string | string[]): boolean {
  const test = anyGlob(globs);
  if (test(value)) return true;
  if (!value.startsWith('[')) return false;
  try {
    const list: unknown = JSON.parse(value);
    return Array.isArray(list) && list.some((v) => typeof v === 'string' && test(v));
  } catch {
    return false;
  }
}

import { suite } from '../../../test/harness/suite.js';
import * as assert from 'uvu/assert';
import type { ApprovalDecision, ApprovalRefused, ApprovalRequested, Verdict } from '../../../schemas/src/events.js';
import { finalDecision } from './final-decision.js';

const T0 = 1_700_000_000_000_000;
const s = (seconds: number) => T0 + seconds * 1e6;
let n = 0;
const verdict = (decision: Verdict['decision'], at: number, extra: Partial<Verdict> = {}): Verdict => ({
  type: 'Verdict', event_id: `v${++n}`, time: s(at), session_id: 's', command_id: 'c', decision, rule_id: 'r', reason: `${decision} reason`,
  source: 'policy', policy_revision: 'x', mask_set: null, approval_id: 'a', hold_expires_at: decision === 'hold' ? s(60) : null, ...extra,
});
const request: ApprovalRequested = {
  type: 'ApprovalRequested', event_id: 'q', time: s(0), session_id: 's', approval_id: 'a', command_id: 'c', rule_id: 'r', target: 'db',
  requester_issuer: 'iss', requester_subject: 'agent', text: 'DROP TABLE t', required: 2, approvers: '{"team":"dba"}', allow_self_approval: false, expires_at: s(60),
};
const answer = (subject: string, decision: 'approve' | 'deny', at: number, refused: string | null = null, team = 'dba'): ApprovalDecision => ({
  type: 'ApprovalDecision', event_id: `d${++n}`, time: s(at), session_id: 's', approval_id: 'a', command_id: 'c', decision,
  approver_issuer: 'iss', approver_subject: subject, approver_claims: { team }, comment: null, refused_reason: refused,
});
const refusedCall = (subject: string, decision: 'approve' | 'deny', at: number, reason: string): ApprovalRefused => ({
  type: 'ApprovalRefused', event_id: `r${++n}`, time: s(at), session_id: 's', approval_id: 'a', command_id: 'c', decision,
  approver_issuer: 'iss', approver_subject: subject, approver_claims: { team: 'dba' }, comment: null, refused_reason: reason,
});
const who = (list: { approver_subject: string }[] | undefined) => (list ?? []).map((a) => a.approver_subject);

const fd = suite('finalDecision: one answer for every interface');

fd('no verdict: nothing to report; a plain verdict: policy decided', () => {
  assert.is(finalDecision({ verdicts: [] }), undefined);
  const d = finalDecision({ verdicts: [verdict('deny', 0, { approval_id: null })] })!;
  assert.equal([d.decision, d.decided_by, d.hold], ['deny', 'policy', null]);
  assert.is(finalDecision({ verdicts: [verdict('deny', 0, { source: 'deadline', approval_id: null })] })!.decided_by, 'deadline');
});

fd('ApprovalRefused events (schema v7) are refusals, never answers: a refused deny does not decide, a refused approve does not count', () => {
  const d = finalDecision({
    verdicts: [verdict('hold', 0), verdict('allow', 10)], requests: [{ ...request, required: 1 }],
    answers: [answer('alice', 'approve', 5)],
    refused: [refusedCall('agent', 'approve', 1, 'self-approval is not allowed'), refusedCall('bob', 'deny', 2, 'identity bob does not hold the approver role'), { ...refusedCall('x', 'deny', 3, 'other hold'), approval_id: 'other' }],
  })!;
  assert.equal([d.decision, d.decided_by, who(d.approvers)], ['allow', 'approver', ['alice']]);
  assert.equal(who(d.hold?.answers), ['alice']);
  assert.equal(d.hold?.refusals.map((r) => [r.approver_subject, r.decision, r.refused_reason]), [['agent', 'approve', 'self-approval is not allowed'], ['bob', 'deny', 'identity bob does not hold the approver role']]);
  // Denied by the policy service's timeout while only refused denies were recorded: not an approver's deny.
  const t = finalDecision({ verdicts: [verdict('hold', 0), verdict('deny', 60, { source: 'policy' })], requests: [request], refused: [refusedCall('bob', 'deny', 2, 'no role')] })!;
  assert.equal([t.decided_by, who(t.approvers)], ['timeout', []]);
});

fd('approved by two distinct approvers: refused attempts, repeats and late answers do not count', () => {
  const d = finalDecision({
    verdicts: [verdict('hold', 0), verdict('allow', 10)], requests: [request],
    answers: [
      answer('bob', 'approve', 1, 'identity bob does not hold the approver role'),
      answer('agent', 'approve', 2), // self-approval: refused by the approver rules even though the query service took it
      answer('carol', 'approve', 3, null, 'web'), // lacks the claim
      answer('alice', 'approve', 4), answer('alice', 'approve', 5), answer('dave', 'approve', 9),
      answer('erin', 'deny', 11), // after the decision
    ],
  })!;
  assert.equal([d.decision, d.decided_by], ['allow', 'approver']);
  assert.equal(who(d.approvers), ['alice', 'dave']);
  assert.equal(who(d.hold?.answers), ['alice', 'alice', 'dave']);
  assert.equal(who(d.hold?.refusals), ['bob', 'agent', 'carol', 'erin']);
  assert.ok(d.hold!.refusals.every((r) => r.refused_reason.length > 0));
  assert.equal([d.hold?.required, d.hold?.expires_at, d.verdict_id], [2, s(60), d.verdict_id]);
});

fd('denied by an approver, timed out, refused by Agate, still pending', () => {
  const denied = finalDecision({ verdicts: [verdict('hold', 0), verdict('deny', 5)], requests: [request], answers: [answer('alice', 'approve', 2), answer('bob', 'deny', 4)] })!;
  assert.equal([denied.decision, denied.decided_by, who(denied.approvers)], ['deny', 'approver', ['bob']]);
  const timedOut = finalDecision({ verdicts: [verdict('hold', 0), verdict('deny', 60)], requests: [request], answers: [answer('alice', 'approve', 2)] })!;
  assert.equal([timedOut.decision, timedOut.decided_by, who(timedOut.approvers), who(timedOut.hold?.answers)], ['deny', 'timeout', [], ['alice']]);
  const restart = finalDecision({ verdicts: [verdict('hold', 0), verdict('deny', 20)], requests: [request] })!;
  assert.is(restart.decided_by, 'agate');
  const pending = finalDecision({ verdicts: [verdict('hold', 0)], requests: [request], answers: [answer('alice', 'approve', 2)] })!;
  assert.equal([pending.decision, pending.decided_by, who(pending.hold?.answers)], ['hold', 'pending', ['alice']]);
});

fd.run();

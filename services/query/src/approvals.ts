import type { Store } from '../../../core/src/store/store.js';
import type { ApprovalRequested } from '../../../schemas/src/events.js';

export type ApprovalStatus = 'pending' | 'approved' | 'denied' | 'expired';

export interface ApprovalRow {
  approval_id: string;
  command_id: string;
  session_id: string;
  requested_at: string;
  rule_id: string;
  target: string;
  requester_issuer: string;
  requester_subject: string;
  text: string;
  required: number;
  expires_at: string;
  status: ApprovalStatus;
  /** Accepted approvals so far. */
  approvals: number;
  final_reason: string | null;
}

interface Raw {
  approval_id: string; command_id: string; session_id: string; requested_at: string; rule_id: string; target: string;
  requester_issuer: string; requester_subject: string; text: string; required: string | number; expires_at_us: string | number;
  final_decision: string; final_reason: string; approvals: string | number;
}

/** The held command `id`, as its `ApprovalRequested` event recorded it. */
export async function approvalRequest(store: Store, id: string): Promise<ApprovalRequested | undefined> {
  const rows = await store.query<{ body: string }>(
    `SELECT body FROM agate.ledger WHERE event_type = 'ApprovalRequested' AND JSONExtractString(body, 'approval_id') = {id:String} LIMIT 1`, { id });
  return rows[0] === undefined ? undefined : (JSON.parse(rows[0].body) as ApprovalRequested);
}

/**
 * Held commands, newest first, with their state derived from the ledger: a final verdict naming
 * the approval settles it; without one it is pending until its expiry passes.
 */
export async function listApprovals(store: Store, filter: { status?: ApprovalStatus; id?: string; limit: number; nowMicros: number }): Promise<ApprovalRow[]> {
  const raw = await store.query<Raw>(
    `SELECT r.approval_id AS approval_id, r.command_id AS command_id, r.session_id AS session_id, toString(r.time) AS requested_at,
       r.rule_id AS rule_id, r.target AS target, r.requester_issuer AS requester_issuer, r.requester_subject AS requester_subject,
       r.text AS text, r.required AS required, r.expires_at_us AS expires_at_us,
       v.decision AS final_decision, v.reason AS final_reason, a.approvals AS approvals
     FROM agate.approval_requests AS r
     LEFT JOIN (
       SELECT JSONExtractString(body, 'approval_id') AS approval_id, any(JSONExtractString(body, 'decision')) AS decision,
         any(JSONExtractString(body, 'reason')) AS reason
       FROM agate.ledger
       WHERE event_type = 'Verdict' AND JSONExtractString(body, 'approval_id') != '' AND JSONExtractString(body, 'decision') != 'hold'
       GROUP BY approval_id) AS v ON v.approval_id = r.approval_id
     LEFT JOIN (
       SELECT approval_id, uniqExact(approver_issuer, approver_subject) AS approvals FROM agate.approvals
       WHERE decision = 'approve' AND refused_reason IS NULL GROUP BY approval_id) AS a ON a.approval_id = r.approval_id
     WHERE ({id:String} = '' OR r.approval_id = {id:String})
     ORDER BY r.time DESC LIMIT {scan:UInt32}`,
    { id: filter.id ?? '', scan: filter.status === undefined ? filter.limit : 10_000 },
  );
  const rows = raw.map((r) => toRow(r, filter.nowMicros));
  return (filter.status === undefined ? rows : rows.filter((r) => r.status === filter.status)).slice(0, filter.limit);
}

function toRow(r: Raw, now: number): ApprovalRow {
  const expires = Number(r.expires_at_us);
  let status: ApprovalStatus;
  if (r.final_decision === 'allow') status = 'approved';
  else if (r.final_decision === 'deny') status = r.final_reason.startsWith('no approval within') ? 'expired' : 'denied';
  else status = expires <= now ? 'expired' : 'pending';
  return {
    approval_id: r.approval_id, command_id: r.command_id, session_id: r.session_id, requested_at: r.requested_at, rule_id: r.rule_id,
    target: r.target, requester_issuer: r.requester_issuer, requester_subject: r.requester_subject, text: r.text,
    required: Number(r.required), expires_at: new Date(expires / 1000).toISOString(), status, approvals: Number(r.approvals ?? 0),
    final_reason: r.final_decision === '' || r.final_decision == null ? null : r.final_reason,
  };
}

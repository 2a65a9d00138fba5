import type { Store } from '../../../../core/src/store/store.js';
import { listApprovals, type ApprovalRow } from '../approvals.js';

/** The claims of the requester's session an approver is shown (GitHub Actions and GitLab CI names). */
export const SHOWN_CLAIMS = ['repository', 'workflow', 'ref', 'actor', 'run_id', 'project_path', 'pipeline_source', 'environment'] as const;

/** One held command as the inbox shows it: the approval row plus who asked and why it was held. */
export interface InboxItem extends ApprovalRow {
  /** The hold verdict's reason: the rule's message, or "held for approval by rule R". */
  message: string | null;
  claims: Record<string, string>;
}

const RECENT = 50;

/**
 * The newest held commands, pending and settled, each with the requester's session claims and
 * the hold's message, all read from the ledger's views like `/v1/approvals`.
 */
export async function readInbox(store: Store, nowMicros: number): Promise<InboxItem[]> {
  const rows = await listApprovals(store, { limit: RECENT, nowMicros });
  if (rows.length === 0) return [];
  const sessionIds = [...new Set(rows.map((r) => r.session_id))];
  const commandIds = rows.map((r) => r.command_id);
  const claimColumns = SHOWN_CLAIMS.map((c, i) => `claims[{c${i}:String}] AS c${i}`).join(', ');
  const claimParams = Object.fromEntries(SHOWN_CLAIMS.map((c, i) => [`c${i}`, c]));
  const [sessions, holds] = await Promise.all([
    store.query<Record<string, string>>(`SELECT session_id, ${claimColumns} FROM agate.q_sessions WHERE session_id IN {ids:Array(String)} LIMIT 1 BY session_id`, { ids: sessionIds, ...claimParams }),
    store.query<{ command_id: string; reason: string }>(`SELECT command_id, any(reason) AS reason FROM agate.verdicts WHERE command_id IN {ids:Array(String)} AND decision = 'hold' GROUP BY command_id`, { ids: commandIds }),
  ]);
  const claimsOf = new Map(sessions.map((s) => [s.session_id, Object.fromEntries(SHOWN_CLAIMS.map((c, i) => [c, s[`c${i}`] ?? '']).filter(([, v]) => v !== ''))]));
  const messageOf = new Map(holds.map((h) => [h.command_id, h.reason]));
  return rows.map((r) => ({ ...r, message: messageOf.get(r.command_id) ?? null, claims: claimsOf.get(r.session_id) ?? {} }));
}

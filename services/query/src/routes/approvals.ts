import { randomUUID } from 'node:crypto';
import { approverRefusal } from '../../../../core/src/approvals.js';
import type { Bus } from '../../../../core/src/bus/bus.js';
import { AgateError, ErrorCode } from '../../../../core/src/errors.js';
import type { Store } from '../../../../core/src/store/store.js';
import { nowMicros, type ApprovalChoice, type ApprovalDecision, type ApprovalRefused, type ApprovalRequested } from '../../../../schemas/src/events.js';
import { approvalRequest, listApprovals, type ApprovalStatus } from '../approvals.js';
import { enumParam, intParam } from '../params.js';
import type { Route, RouteContext } from '../router.js';

const STATUSES: readonly ApprovalStatus[] = ['pending', 'approved', 'denied', 'expired'];
const MAX_BODY = 16 * 1024;
const COLUMNS = ['approval_id', 'command_id', 'session_id', 'requested_at', 'rule_id', 'target', 'requester_issuer', 'requester_subject', 'text', 'required', 'expires_at', 'status', 'approvals', 'final_reason'];

/**
 * Held commands and the approvers' answers. An answer is published as an `ApprovalDecision`
 * event; the policy service, which keeps the pending approval, counts it and issues the final
 * verdict. A refused attempt is published as an `ApprovalRefused` event instead: recorded in the
 * ledger with its reason, and never a decision.
 * `unstored` finds a hold seen on the bus and not yet in the store (the console's fast path).
 */
export function approvalRoutes(store: Store, bus: Bus | undefined, unstored: (id: string) => ApprovalRequested | undefined = () => undefined): Route[] {
  const answer = (decision: ApprovalChoice): Route => ({
    method: 'POST', path: `/v1/approvals/:id/${decision}`, permission: 'answer',
    async handler(ctx) {
      if (bus === undefined) throw new AgateError(ErrorCode.API_UNAVAILABLE, 'this query service has no bus to publish approvals on');
      const comment = await commentOf(ctx);
      const id = ctx.params.id!;
      // A hold the console saw on the bus may be answered before the ledger has stored it.
      const request = (await approvalRequest(store, id)) ?? unstored(id);
      if (request === undefined) throw new AgateError(ErrorCode.API_NOT_FOUND, `no approval ${id}`);
      const [state] = await listApprovals(store, { id, limit: 1, nowMicros: nowMicros() });
      const event: ApprovalDecision = {
        type: 'ApprovalDecision', event_id: randomUUID(), time: nowMicros(), session_id: request.session_id, approval_id: id,
        command_id: request.command_id, decision, approver_issuer: ctx.identity.issuer, approver_subject: ctx.identity.subject,
        approver_claims: ctx.identity.claims, comment, refused_reason: null,
      };
      let refusal: { code: ErrorCode; reason: string } | undefined;
      if (!ctx.roles.has('approver')) refusal = { code: ErrorCode.API_FORBIDDEN, reason: `identity ${ctx.identity.subject} does not hold the approver role` };
      else if (state !== undefined && state.status !== 'pending') refusal = { code: ErrorCode.API_CONFLICT, reason: `the approval is no longer pending (${state.status})` };
      else {
        const why = approverRefusal(request, event, event.time);
        if (why !== undefined) refusal = { code: why.includes('expired') ? ErrorCode.API_CONFLICT : ErrorCode.API_FORBIDDEN, reason: why };
      }
      if (refusal !== undefined) {
        const refused: ApprovalRefused = { ...event, type: 'ApprovalRefused', refused_reason: refusal.reason };
        await bus.publish(refused);
        throw new AgateError(refusal.code, `approval ${id} refused: ${refusal.reason}`);
      }
      await bus.publish(event);
      return { kind: 'json', body: { approval_id: id, decision_id: event.event_id, decision, recorded: true } };
    },
  });
  return [
    {
      method: 'GET', path: '/v1/approvals', permission: 'approvals',
      async handler({ query: q }) {
        const rows = await listApprovals(store, { status: enumParam(q, 'status', STATUSES), limit: intParam(q, 'limit', 100, 1, 1000), nowMicros: nowMicros() });
        return { kind: 'rows', key: 'approvals', rows: rows as unknown as Record<string, unknown>[], next_cursor: null, columns: COLUMNS };
      },
    },
    {
      method: 'GET', path: '/v1/approvals/:id', permission: 'approvals',
      async handler({ params }) {
        const [approval] = await listApprovals(store, { id: params.id!, limit: 1, nowMicros: nowMicros() });
        if (approval === undefined) throw new AgateError(ErrorCode.API_NOT_FOUND, `no approval ${params.id}`);
        // Answers are what the approvers decided; refused attempts (403/409) are recorded but never answers.
        const columns = 'decision_id, decision, approver_issuer, approver_subject, comment, toString(time) AS time';
        const [decisions, refusals] = await Promise.all([
          store.query(`SELECT ${columns} FROM agate.approvals WHERE approval_id = {id:String} ORDER BY seq`, { id: params.id! }),
          store.query(`SELECT ${columns}, refused_reason FROM agate.approval_refusals WHERE approval_id = {id:String} ORDER BY seq`, { id: params.id! }),
        ]);
        return { kind: 'json', body: { approval, decisions, refusals } };
      },
    },
    answer('approve'),
    answer('deny'),
  ];
}

/** An optional JSON body `{"comment": "..."}`. */
async function commentOf(ctx: RouteContext): Promise<string | null> {
  const raw = (await ctx.body(MAX_BODY)).toString('utf8').trim();
  if (raw === '') return null;
  let parsed: unknown;
  try {
    parsed = JSON.parse(raw);
  } catch {
    throw new AgateError(ErrorCode.API_BAD_REQUEST, 'the body must be JSON: {"comment": "..."}');
  }
  if (parsed === null || typeof parsed !== 'object' || Array.isArray(parsed)) throw new AgateError(ErrorCode.API_BAD_REQUEST, 'the body must be a JSON object');
  const c = (parsed as { comment?: unknown }).comment;
  if (c === undefined || c === null) return null;
  if (typeof c !== 'string' || c.length > 2000) throw new AgateError(ErrorCode.API_BAD_REQUEST, 'comment must be a string of at most 2000 characters');
  return c;
}

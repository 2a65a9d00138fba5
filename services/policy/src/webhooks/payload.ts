import type { APPROVAL_WEBHOOK_EVENTS } from '../../../../core/src/config.js';
import { revealSummary, visibleText } from '../../../../core/src/visible-text.js';
import type { AgateEvent } from '../../../../schemas/src/events.js';

type NotificationType = (typeof APPROVAL_WEBHOOK_EVENTS)[number];

/** One notification: its stable id (the event's, for receivers to drop duplicates) and JSON body. */
export interface Notification {
  id: string;
  type: NotificationType;
  body: string;
}

const iso = (micros: number) => new Date(Math.floor(micros / 1000)).toISOString();

/**
 * The notification an event makes, if any: a hold (ApprovalRequested), an approver's answer
 * (ApprovalDecision), a refused attempt to answer (ApprovalRefused, which decides nothing), the
 * final verdict on a held command (a Verdict carrying an approval id and no longer `hold`).
 */
export function notificationOf(event: AgateEvent): Notification | undefined {
  let type: NotificationType;
  let data: Record<string, unknown>;
  if (event.type === 'ApprovalRequested') {
    type = 'approval.requested';
    data = {
      approval_id: event.approval_id, command_id: event.command_id, session_id: event.session_id, rule_id: event.rule_id, target: event.target,
      requester: { issuer: event.requester_issuer, subject: event.requester_subject }, text: event.text,
      // For a receiver that shows the hold to a person (chat, a pager): what would not show as
      // itself labelled (a bidi override, an escape sequence, a look-alike letter), and which.
      text_shown: visibleText(event.text), text_hidden: revealSummary(event.text), required: event.required,
      approvers: JSON.parse(event.approvers) as unknown, allow_self_approval: event.allow_self_approval, expires_at: iso(event.expires_at),
    };
  } else if (event.type === 'ApprovalDecision') {
    type = 'approval.decision';
    data = {
      approval_id: event.approval_id, command_id: event.command_id, decision: event.decision,
      approver: { issuer: event.approver_issuer, subject: event.approver_subject }, comment: event.comment, refused_reason: event.refused_reason,
    };
  } else if (event.type === 'ApprovalRefused') {
    type = 'approval.refused';
    data = {
      approval_id: event.approval_id, command_id: event.command_id, decision: event.decision,
      approver: { issuer: event.approver_issuer, subject: event.approver_subject }, comment: event.comment, refused_reason: event.refused_reason,
    };
  } else if (event.type === 'Verdict' && event.approval_id !== null && event.decision !== 'hold') {
    type = 'approval.resolved';
    data = { approval_id: event.approval_id, command_id: event.command_id, decision: event.decision, rule_id: event.rule_id, reason: event.reason };
  } else {
    return undefined;
  }
  return { id: event.event_id, type, body: JSON.stringify({ id: event.event_id, type, time: iso(event.time), data }) };
}

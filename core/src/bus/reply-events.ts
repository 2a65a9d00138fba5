import type { AgateEvent, EventType } from '../../../schemas/src/events.js';

/**
 * The events every proxy process must hear quickly (distributed mode): a Verdict, which wakes the
 * command waiting on it, and a SessionTerminationRequested, which the proxy holding the session
 * acts on. On Kafka each is written to the events topic (the record the ledger keeps) and, once
 * that copy is acknowledged, to the verdicts topic, the small topic each proxy process reads with
 * its one verdict consumer. So a proxy never fetches the whole events topic (every Command and
 * Response) to find these. The embedded bus has one log and no such copy.
 */
const REPLY_EVENT_TYPES = ['Verdict', 'SessionTerminationRequested'] as const satisfies readonly EventType[];

type ReplyEventType = (typeof REPLY_EVENT_TYPES)[number];

export function isReplyEventType(type: string): type is ReplyEventType {
  return (REPLY_EVENT_TYPES as readonly string[]).includes(type);
}

/**
 * The key of an event's verdicts-topic copy: a Verdict's command (a proxy matches it to its
 * waiter by key before decoding), a termination request's session. Undefined: the event has no copy.
 */
export function replyKey(event: AgateEvent): string | undefined {
  switch (event.type) {
    case 'Verdict': return event.command_id;
    case 'SessionTerminationRequested': return event.session_id;
    default: return undefined;
  }
}

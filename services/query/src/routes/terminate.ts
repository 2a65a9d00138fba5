import { randomUUID } from 'node:crypto';
import type { Bus } from '../../../../core/src/bus/bus.js';
import { AgateError, ErrorCode } from '../../../../core/src/errors.js';
import type { Logger } from '../../../../core/src/log.js';
import type { Store } from '../../../../core/src/store/store.js';
import { nowMicros } from '../../../../schemas/src/events.js';
import { terminationReason, type LiveSessions } from '../../../ingress-proxy/src/live-sessions.js';
import { getSession } from '../queries.js';
import type { Route } from '../router.js';
import type { SessionEnds } from '../session-ends.js';

const MAX_BODY = 16 * 1024;
const MAX_REASON = 500;
const TERMINATE_TIMEOUT_MS = 10_000;

/** How to reach proxies in other processes (distributed mode): the bus, and a watch for SessionClosed. */
interface RemoteTermination {
  bus: Bus;
  ends: SessionEnds;
  store: Store;
  timeoutMs?: number;
}

/**
 * POST /v1/sessions/:id/terminate `{"reason": "…"}` (admins): the proxy holding the live session
 * closes the client's connection with the protocol's own error and records SessionClosed whose
 * reason names the administrator and the reason given; the answer comes once that is durable.
 * A proxy of this process is asked directly; otherwise (distributed mode) a
 * SessionTerminationRequested goes on the bus for every proxy to read, and the answer waits for
 * the session's SessionClosed: a 504 if none comes in time (the request itself stays recorded).
 */
export function terminateRoutes(live: LiveSessions | undefined, remote: RemoteTermination | undefined, logger: Logger): Route[] {
  return [
    {
      method: 'POST', path: '/v1/sessions/:id/terminate', permission: 'terminate',
      async handler({ params, identity, body }) {
        const reason = reasonOf(await body(MAX_BODY));
        const sessionId = params.id!;
        const recorded = terminationReason(identity, reason);
        const log = { session_id: sessionId, issuer: identity.issuer, subject: identity.subject };
        const outcome = live === undefined ? { kind: 'not-found' as const } : await live.terminate(sessionId, recorded);
        if (outcome.kind === 'not-found' && remote !== undefined) return terminateRemotely(remote, sessionId, identity, reason, logger);
        if (live === undefined) throw new AgateError(ErrorCode.API_UNAVAILABLE, 'this query service runs apart from the proxies and has no bus to reach them; terminate from a process that runs the proxy (agate start)');
        if (outcome.kind === 'not-found') throw new AgateError(ErrorCode.API_NOT_FOUND, `no live session ${sessionId} on this Agate (it has ended, or another proxy holds it)`);
        logger.info('session terminated by an administrator', { ...log, ended: outcome.kind === 'terminated' });
        if (outcome.kind === 'timeout') throw new AgateError(ErrorCode.API_UNAVAILABLE, `session ${sessionId} was told to end but its end is not recorded yet; look again shortly`);
        return { kind: 'json', body: { session_id: sessionId, terminated: true, reason: outcome.reason } };
      },
    },
  ];
}

async function terminateRemotely(remote: RemoteTermination, sessionId: string, by: { issuer: string; subject: string }, reason: string, logger: Logger) {
  const session = await getSession(remote.store, sessionId);
  if (session === undefined || session.closed_at !== null) throw new AgateError(ErrorCode.API_NOT_FOUND, `no live session ${sessionId} in the record (unknown, or it has ended)`);
  const timeoutMs = remote.timeoutMs ?? TERMINATE_TIMEOUT_MS;
  // Watch before asking: the SessionClosed may follow the request within milliseconds.
  const wait = remote.ends.wait(sessionId, timeoutMs);
  try {
    await remote.bus.publish({ type: 'SessionTerminationRequested', event_id: randomUUID(), time: nowMicros(), session_id: sessionId, requested_by_issuer: by.issuer, requested_by_subject: by.subject, reason });
  } catch (err) {
    wait.cancel();
    throw err;
  }
  const closed = await wait.ended;
  logger.info('session termination requested over the bus', { session_id: sessionId, issuer: by.issuer, subject: by.subject, ended: closed !== undefined });
  if (closed === undefined) {
    throw new AgateError(ErrorCode.API_TIMEOUT, `the request to end session ${sessionId} is recorded, but no proxy recorded the session's end within ${timeoutMs / 1000} s (the proxy holding it may be unreachable; if it is down, its expired lease closes the session)`);
  }
  return { kind: 'json' as const, body: { session_id: sessionId, terminated: true, reason: closed.reason } };
}

function reasonOf(raw: Buffer): string {
  let reason: unknown;
  try {
    reason = (JSON.parse(raw.toString('utf8')) as { reason?: unknown }).reason;
  } catch {
    throw new AgateError(ErrorCode.API_BAD_REQUEST, 'the body must be JSON: {"reason": "..."}');
  }
  if (typeof reason !== 'string' || reason.trim() === '') throw new AgateError(ErrorCode.API_BAD_REQUEST, 'a reason is required to terminate a session');
  if (reason.length > MAX_REASON) throw new AgateError(ErrorCode.API_BAD_REQUEST, `the reason is limited to ${MAX_REASON} characters`);
  // One line: the reason goes into the client's error message and the record.
  return reason.trim().replace(/\s+/g, ' ');
}

import { AgateError, ErrorCode } from '../../../../core/src/errors.js';
import type { Logger } from '../../../../core/src/log.js';
import type { LiveSessions } from '../../../ingress-proxy/src/live-sessions.js';
import type { Route } from '../router.js';

const MAX_BODY = 16 * 1024;
const MAX_REASON = 500;

/**
 * POST /v1/sessions/:id/terminate `{"reason": "…"}` (admins): the proxy holding the live session
 * closes the client's connection with the protocol's own error and records SessionClosed whose
 * reason names the administrator and the reason given; the answer comes once that is durable.
 * Only proxies in this process can be reached: a query service running apart from the proxies
 * answers 503 rather than pretend (terminating across processes needs an event on the bus).
 */
export function terminateRoutes(live: LiveSessions | undefined, logger: Logger): Route[] {
  return [
    {
      method: 'POST', path: '/v1/sessions/:id/terminate', permission: 'terminate',
      async handler({ params, identity, body }) {
        const reason = reasonOf(await body(MAX_BODY));
        if (live === undefined) throw new AgateError(ErrorCode.API_UNAVAILABLE, 'this query service runs apart from the proxies and cannot reach their sessions; terminate from a process that runs the proxy (agate start)');
        const recorded = `terminated by administrator ${identity.subject} (${identity.issuer}): ${reason}`;
        const outcome = await live.terminate(params.id!, recorded);
        if (outcome.kind === 'not-found') throw new AgateError(ErrorCode.API_NOT_FOUND, `no live session ${params.id} on this Agate (it has ended, or another proxy holds it)`);
        logger.info('session terminated by an administrator', { session_id: params.id, issuer: identity.issuer, subject: identity.subject, ended: outcome.kind === 'terminated' });
        if (outcome.kind === 'timeout') throw new AgateError(ErrorCode.API_UNAVAILABLE, `session ${params.id} was told to end but its end is not recorded yet; look again shortly`);
        return { kind: 'json', body: { session_id: params.id, terminated: true, reason: outcome.reason } };
      },
    },
  ];
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

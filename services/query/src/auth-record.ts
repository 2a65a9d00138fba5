import { randomUUID } from 'node:crypto';
import type { Bus } from '../../../core/src/bus/bus.js';
import { describeError } from '../../../core/src/errors.js';
import { TokenVerifier } from '../../../core/src/identity/oidc.js';
import type { Logger } from '../../../core/src/log.js';
import { nowMicros } from '../../../schemas/src/events.js';

/** One refused login on the query API, before it is an event. */
export interface ApiRefusal {
  clientAddress: string;
  reasonCode: string;
  message: string;
  /** `METHOD /path`, or '' when no request arrived. */
  request: string;
  /** The presented bearer token, only to read its unverified issuer and subject. */
  token?: string;
}

/**
 * Records query API refusals as `ApiAuthenticationFailed` events (and in the log). A query
 * service without a bus (alone, on the local bus of another process) can only log them.
 */
export function apiRefusalRecorder(bus: Bus | undefined, instanceId: string, logger: Logger): (r: ApiRefusal) => void {
  return (r) => {
    logger.info('query API login refused', { client_address: r.clientAddress, reason_code: r.reasonCode, request: r.request });
    if (bus === undefined) return;
    const claimed = TokenVerifier.peek(r.token ?? '');
    bus.publish({
      type: 'ApiAuthenticationFailed', event_id: randomUUID(), time: nowMicros(), session_id: randomUUID(), proxy_id: instanceId,
      protocol: 'http', target: 'query-api', client_address: r.clientAddress, reason_code: r.reasonCode, message: r.message,
      request: r.request.slice(0, 256), claimed_issuer: claimed.issuer, claimed_subject: claimed.subject,
    }).catch((err: unknown) => logger.error('cannot record a query API refusal', { error: describeError(err) }));
  };
}

import type { Bus, Subscription } from '../../../core/src/bus/bus.js';
import type { Logger } from '../../../core/src/log.js';
import { terminationReason, type LiveSessions } from './live-sessions.js';

/**
 * A proxy process's reader of SessionTerminationRequested (distributed mode, where the query API
 * that took the request may run elsewhere). Every proxy process reads every request from now on,
 * through the consumer it reads its verdicts with (a reply event, reply-events.ts: no fetch of
 * the whole events topic); only the one holding the session acts:
 * it closes the client and records SessionClosed with who asked and why, which the query API
 * waits for. A request for a session this process does not hold is another proxy's business.
 */
export function readTerminationRequests(bus: Bus, live: LiveSessions, logger: Logger): Promise<Subscription> {
  return bus.subscribe({
    group: 'terminations', perProcess: true, types: ['SessionTerminationRequested'], from: 'latest',
    handler: async (batch) => {
      for (const e of batch) {
        if (e.type !== 'SessionTerminationRequested') continue;
        const reason = terminationReason({ issuer: e.requested_by_issuer, subject: e.requested_by_subject }, e.reason);
        // Not awaited: the session's end is recorded by its own SessionClosed, which the requester watches for.
        void live.terminate(e.session_id, reason).then((outcome) => {
          if (outcome.kind !== 'not-found') logger.info('session terminated at an administrator\'s request', { session_id: e.session_id, issuer: e.requested_by_issuer, subject: e.requested_by_subject, ended: outcome.kind === 'terminated' });
        });
      }
    },
  });
}

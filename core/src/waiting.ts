import type { Logger } from './log.js';

/** How often a start still waiting on one step says so. */
export const STILL_WAITING_EVERY_MS = 10_000;

/**
 * Awaits `op`, warning every `everyMs` while it has not settled. A start held up by a slow
 * dependency (a consumer group join on a loaded broker, a store that answers late) then says
 * what it is waiting for and for how long, instead of staying silent until a deadline kills it.
 */
export async function warnWhileWaiting<T>(logger: Logger, waitingFor: string, op: Promise<T>, everyMs = STILL_WAITING_EVERY_MS): Promise<T> {
  const started = Date.now();
  const timer = setInterval(() => logger.warn('still starting', { waiting_for: waitingFor, waited_ms: Date.now() - started }), everyMs);
  try {
    return await op;
  } finally {
    clearInterval(timer);
  }
}

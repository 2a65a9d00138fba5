/**
 * kafkajs 2.2.4 keeps every broker connection's event loop busy with no traffic: its request
 * queue re-arms a timer after each check of its pending requests even when none are pending, with
 * a negative delay (the "throttled until" time is in the past), so each connection checks about a
 * thousand times a second forever. That was most of the ~3 % of a core an idle Agate process used
 * after the fetch wait went up to 500 ms (`npm run bench -- idle`, BENCHMARKS.md).
 *
 * The replacement below arms the timer only while requests are pending: for the end of a broker's
 * client-side throttle, else a short recheck. Nothing else needs it: a request pushed while the
 * queue can send goes out at once, one pushed while it cannot is pending (and arms the timer), and
 * every response or timeout checks the pending requests itself.
 */
import { createRequire } from 'node:module';
import { AgateError, ErrorCode } from '../errors.js';

/** The recheck kafkajs uses while requests wait on the in-flight limit. */
const RECHECK_MS = 10;

interface RequestQueueShape {
  pending: unknown[];
  throttledUntil: number;
  throttleCheckTimeoutId: NodeJS.Timeout | null;
  checkPendingRequests(): void;
  scheduleCheckPendingRequests(): void;
}

/** kafkajs's request queue class (CommonJS, the same module instance kafkajs itself loads). */
export function kafkajsRequestQueue(): { prototype: RequestQueueShape } {
  return createRequire(import.meta.url)('kafkajs/src/network/requestQueue/index.js') as { prototype: RequestQueueShape };
}

function scheduleCheckPendingRequests(this: RequestQueueShape): void {
  if (this.throttleCheckTimeoutId !== null && this.throttleCheckTimeoutId !== undefined) return;
  if (this.pending.length === 0) return;
  const untilThrottleEnds = this.throttledUntil - Date.now();
  this.throttleCheckTimeoutId = setTimeout(() => {
    this.throttleCheckTimeoutId = null;
    this.checkPendingRequests();
  }, untilThrottleEnds > 0 ? untilThrottleEnds : RECHECK_MS);
}

let installed = false;

/** Replaces kafkajs's scheduling of pending-request checks; idempotent. */
export function installKafkajsIdleFix(): void {
  if (installed) return;
  const proto = kafkajsRequestQueue().prototype;
  if (typeof proto.scheduleCheckPendingRequests !== 'function' || typeof proto.checkPendingRequests !== 'function') {
    // A kafkajs whose request queue changed shape: the fix must be re-checked against it.
    throw new AgateError(ErrorCode.BUS_UNAVAILABLE, 'kafkajs request queue has no scheduleCheckPendingRequests/checkPendingRequests: re-check core/src/bus/kafkajs-idle-fix.ts against this kafkajs version');
  }
  proto.scheduleCheckPendingRequests = scheduleCheckPendingRequests;
  installed = true;
}

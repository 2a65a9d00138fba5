import type { LoginsConfig } from '../config.js';
import { PendingLogins, type LoginGuard } from './pending.js';
import { LoginThrottle } from './throttle.js';

/** The process's one throttle: every listener counts a source address's failures together. */
export function loginThrottle(c: LoginsConfig): LoginThrottle {
  const t = c.throttle;
  return new LoginThrottle({ maxFailures: t.max_failures, windowMs: t.window_s * 1000, blockMs: t.block_s * 1000, maxBlockMs: t.max_block_s * 1000 });
}

/** A listener's guard: its own pending connections, the shared throttle. */
export function loginGuard(c: LoginsConfig, throttle: LoginThrottle): LoginGuard {
  return { pending: new PendingLogins({ timeoutMs: c.timeout_ms, maxPending: c.max_pending }), throttle };
}

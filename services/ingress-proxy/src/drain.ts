/** A session a proxy can close between statements. */
export interface DrainableSession {
  /** No statement in flight: nothing being decided, no reply from the target outstanding. */
  readonly idle: boolean;
  /** Closes the session from the proxy's side, telling the client why. */
  terminate(reason: string): void;
  readonly finished: Promise<void>;
}

/** How often busy sessions are looked at again; a statement ending is not announced. */
const POLL_MS = 20;

// The same words as an immediate shutdown: clients and log searches already know them.
const DRAIN_REASON = 'Agate is shutting down';

/**
 * The session half of a graceful stop, once the listener no longer accepts: each session is
 * closed as soon as it is idle, so a statement in flight finishes (and is recorded) first; the
 * ones still busy at the deadline are closed anyway. `sessions` is the live set, which shrinks
 * as sessions end. Resolves when every session has finished.
 */
export async function drainSessions(sessions: ReadonlySet<DrainableSession>, timeoutMs: number, reason = DRAIN_REASON): Promise<{ idle: number; cutOff: number }> {
  const deadline = Date.now() + timeoutMs;
  const told = new Set<DrainableSession>();
  let idle = 0;
  for (;;) {
    for (const s of sessions) {
      if (told.has(s) || !s.idle) continue;
      told.add(s);
      idle++;
      s.terminate(reason);
    }
    if ([...sessions].every((s) => told.has(s)) || Date.now() >= deadline) break;
    await new Promise((r) => setTimeout(r, Math.min(POLL_MS, Math.max(1, deadline - Date.now()))));
  }
  let cutOff = 0;
  for (const s of sessions) {
    if (told.has(s)) continue;
    cutOff++;
    s.terminate(`${reason} (the drain timeout passed with a statement in flight)`);
  }
  await Promise.all([...sessions].map((s) => s.finished));
  return { idle, cutOff };
}

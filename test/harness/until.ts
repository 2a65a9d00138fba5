/** How `until` polls. A bare number is the timeout. */
export interface UntilOptions {
  /** Give up after this long (default 15 s). */
  timeoutMs?: number;
  /** Pause between probes (default 100 ms). */
  everyMs?: number;
  /**
   * Treat a probe that throws as "not yet" (a service still starting, a row not yet readable) and
   * name its last error if time runs out. Off by default: an unexpected error fails at once.
   */
  retryErrors?: boolean;
}

/**
 * Polls `probe` until it returns something other than undefined, and returns that; throws
 * "timed out after N ms waiting for <what>" after the timeout. For tests waiting on what a running
 * system records (the ledger, a psql NOTICE, an API view), which settles a moment after the action.
 * `what` may be a function, read only on timeout, to say what had been seen by then.
 */
export async function until<T>(what: string | (() => string), probe: () => T | undefined | Promise<T | undefined>, options: number | UntilOptions = {}): Promise<T> {
  const { timeoutMs = 15_000, everyMs = 100, retryErrors = false } = typeof options === 'number' ? { timeoutMs: options } : options;
  const end = Date.now() + timeoutMs;
  let lastError: unknown;
  for (;;) {
    try {
      const v = await probe();
      if (v !== undefined) return v;
    } catch (err) {
      if (!retryErrors) throw err;
      lastError = err;
    }
    if (Date.now() > end) {
      const seen = lastError === undefined ? '' : `; last error: ${String(lastError)}`;
      throw new Error(`timed out after ${timeoutMs} ms waiting for ${typeof what === 'string' ? what : what()}${seen}`);
    }
    await new Promise((r) => setTimeout(r, everyMs));
  }
}

/** `until` for a yes/no check: resolves once `ok` returns true. */
export async function untilTrue(what: string | (() => string), ok: () => boolean | Promise<boolean>, options: number | UntilOptions = {}): Promise<void> {
  await until(what, async () => ((await ok()) ? true : undefined), options);
}

/** What a wait over recorded events had seen when it gave up: how many, and the last few by type. */
export function eventsSeen(events: readonly { type: string; text?: string | null }[], last = 8): string {
  const tail = events.slice(-last).map((e) => (typeof e.text === 'string' ? `${e.type} ${JSON.stringify(e.text.slice(0, 60))}` : e.type));
  return `${events.length} recorded${tail.length === 0 ? '' : `; the last: ${tail.join(', ')}`}`;
}

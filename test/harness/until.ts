/**
 * Polls `probe` until it returns something other than undefined, and returns that; throws
 * "timed out waiting for <what>" after `timeoutMs`. For tests waiting on what a running system
 * records (the ledger, a psql NOTICE, an API view), which settles a moment after the action.
 * A probe that throws counts as "not yet" (a service still starting, a view not created yet):
 * it is tried again, and the timeout names its last error.
 */
export async function until<T>(what: string, probe: () => T | undefined | Promise<T | undefined>, timeoutMs = 15_000, everyMs = 100): Promise<T> {
  const end = Date.now() + timeoutMs;
  let last: unknown;
  for (;;) {
    try {
      const v = await probe();
      if (v !== undefined) return v;
    } catch (err) {
      last = err;
    }
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}${last === undefined ? '' : `: ${last instanceof Error ? last.message : String(last)}`}`);
    await new Promise((r) => setTimeout(r, everyMs));
  }
}

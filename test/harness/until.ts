/**
 * Polls `probe` until it returns something other than undefined, and returns that; throws
 * "timed out waiting for <what>" after `timeoutMs`. For tests waiting on what a running system
 * records (the ledger, a psql NOTICE, an API view), which settles a moment after the action.
 */
export async function until<T>(what: string, probe: () => T | undefined | Promise<T | undefined>, timeoutMs = 15_000, everyMs = 100): Promise<T> {
  const end = Date.now() + timeoutMs;
  for (;;) {
    const v = await probe();
    if (v !== undefined) return v;
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, everyMs));
  }
}

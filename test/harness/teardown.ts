import type pg from 'pg';

/**
 * Releases what a suite started: first the clients it tracked, then each `stops` step in order.
 * Every step runs even when an earlier one failed (a half-built environment still has servers to
 * stop); the failures are thrown together at the end.
 */
export async function teardownAll(clients: pg.Client[] | undefined, stops: Array<() => Promise<unknown> | undefined>): Promise<void> {
  const errors: unknown[] = [];
  const attempt = async (f: () => Promise<unknown> | undefined) => {
    try {
      await f();
    } catch (err) {
      errors.push(err);
    }
  };
  // end() of a client the proxy already dropped must not hang the teardown.
  for (const c of clients ?? []) await attempt(() => Promise.race([c.end(), new Promise((r) => setTimeout(r, 2000).unref())]));
  for (const stop of stops) await attempt(stop);
  if (errors.length > 0) throw new Error(`teardown failed: ${errors.map(String).join('; ')}`);
}

import { join } from 'node:path';
import type { AgateFixture } from '../test/e2e/agate-fixture.js';
import { DEFAULT_PG_BIN } from '../test/harness/postgres.js';
import { describeFailure, run as runProcess } from '../test/harness/proc.js';

/** The harness's PostgreSQL's pgbench (AGATE_PG_BIN names another directory). */
export const PGBENCH = join(process.env.AGATE_PG_BIN ?? DEFAULT_PG_BIN, 'pgbench');

/**
 * Makes pgbench's tables (scale 10) in the fixture's PostgreSQL, straight, not through Agate.
 * `base`: libpq's environment for Agate (its PGPASSWORD a token, which expires: take a fresh one
 * per run); `direct`: for the server itself, as its owner.
 */
export async function initPgbench(agate: AgateFixture): Promise<{ base: NodeJS.ProcessEnv; direct: NodeJS.ProcessEnv }> {
  const cred = agate.pg.users.scram;
  const base = await agate.libpqEnv();
  const direct = { ...base, PGPORT: String(agate.pg.port), PGUSER: cred.user, PGPASSWORD: cred.password };
  const args = ['-i', '-s', '10', '-q'];
  const r = await runProcess(PGBENCH, args, { env: direct, timeoutMs: 600_000 });
  if (r.code !== 0) throw new Error(describeFailure(PGBENCH, args, r));
  return { base, direct };
}

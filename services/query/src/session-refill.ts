import type { Store } from '../../../core/src/store/store.js';
import { SESSION_VIEWS } from './schema.js';

/*
 * An INSERT into agate.ledger that fails inside a materialized view behind it (a full disk)
 * keeps the ledger's rows and loses the view's: the session tables would miss those records for
 * good, and verification would name the sessions (session-check.ts). The ledger reports such a
 * range of records once it has read its head back from the store, and this derives the session
 * rows of that range again with each view's own SELECT. Deriving a row twice changes nothing
 * (SESSION_VIEWS says why), so a range the view did fill, or a refill repeated, is harmless.
 */

/** A ClickHouse string literal. */
const literal = (s: string) => `'${s.replace(/[\\']/g, (c) => '\\' + c)}'`;

/**
 * Derives the session-table rows of records `fromSeq..toSeq` of `chainId` from the ledger
 * again. Does nothing on a store without session tables (a ledger the query service never ran on).
 */
export async function refillSessionTables(store: Store, chainId: string, fromSeq: number, toSeq: number): Promise<void> {
  const [exists] = await store.query<{ n: string }>("SELECT count() AS n FROM system.tables WHERE database = 'agate' AND name IN ('q_sessions', 'q_session_stats')");
  if (Number(exists?.n ?? 0) < 2) return;
  const range = `(SELECT * FROM agate.ledger WHERE chain_id = ${literal(chainId)} AND seq BETWEEN ${Math.trunc(fromSeq)} AND ${Math.trunc(toSeq)})`;
  for (const v of SESSION_VIEWS) await store.exec(`INSERT INTO ${v.to} ${v.selectFrom(range)}`);
}

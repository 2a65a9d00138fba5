import type { Store } from '../../../core/src/store/store.js';
import { SESSIONS_SELECT, STATS_MERGED } from './schema.js';

/*
 * The session tables (q_sessions, q_session_stats) are derived from the ledger by materialized
 * views, outside the hash chain: a deleted or edited row would hide or disguise a session in
 * agate.sessions while the chain verifies. This check derives both again from the verified
 * ledger and compares them both ways, row by row (EXCEPT), so verification covers them too.
 */

export interface SessionTablesReport {
  ok: boolean;
  /** Sessions the ledger opened. */
  sessions: number;
  /** The first difference, described for a person; null when they match. */
  problem: string | null;
}

/** A session row, every column as text, so the ledger's and the table's types compare. */
const SESSION_COLUMNS = `session_id, toString(opened_at) AS opened_at, toString(chain_id) AS chain_id, seq, toString(protocol) AS protocol,
  toString(target) AS target, toString(issuer) AS issuer, subject, toString(claims) AS claims, client_address, toString(proxy_id) AS proxy_id,
  toString(attributes) AS attributes`;

/** Per-session counters as the ledger gives them, in STATS_MERGED's columns. */
const STATS_FROM_LEDGER = `SELECT session_id, uniqExactIf(event_id, event_type = 'Command') AS commands,
    uniqExactIf(event_id, event_type = 'Verdict' AND JSONExtractString(body, 'decision') = 'deny') AS denied,
    maxIf(time, event_type = 'SessionClosed') AS closed_at
  FROM agate.ledger WHERE event_type IN ('Command', 'Verdict', 'SessionClosed') AND session_id != ''
  GROUP BY session_id`;

const STATS_COLUMNS = 'session_id, toUInt64(commands) AS commands, toUInt64(denied) AS denied, toString(closed_at) AS closed_at';

interface Diff {
  session_id: string;
}

/**
 * Compares the session tables with the ledger (run after the chains verified). A running ledger
 * writes a record and its session rows in two inserts, so a difference is looked at again after
 * a moment before it is reported; a deleted or changed row stays.
 */
export async function checkSessionTables(store: Store, settleMs = 1000): Promise<SessionTablesReport | null> {
  const [exists] = await store.query<{ n: string }>("SELECT count() AS n FROM system.tables WHERE database = 'agate' AND name IN ('q_sessions', 'q_session_stats')");
  if (Number(exists?.n ?? 0) < 2) return null; // a store the query service never ran on has none
  const first = await compareOnce(store);
  if (first.ok) return first;
  await new Promise((r) => setTimeout(r, settleMs));
  return compareOnce(store);
}

async function compareOnce(store: Store): Promise<SessionTablesReport> {
  const [count] = await store.query<{ n: string }>("SELECT count() AS n FROM agate.ledger WHERE event_type = 'SessionOpened'");
  const sessions = Number(count?.n ?? 0);
  const ledgerSessions = `SELECT ${SESSION_COLUMNS} FROM (${SESSIONS_SELECT})`;
  const tableSessions = `SELECT ${SESSION_COLUMNS} FROM agate.q_sessions FINAL`;
  const report = (problem: string | null): SessionTablesReport => ({ ok: problem === null, sessions, problem });

  const [missing] = await store.query<Diff>(`SELECT session_id FROM (${ledgerSessions} EXCEPT DISTINCT ${tableSessions}) ORDER BY session_id LIMIT 1`);
  if (missing !== undefined) {
    return report(`session ${missing.session_id} is in the ledger, but agate.sessions does not show it as recorded (its agate.q_sessions row was deleted or changed)`);
  }
  const [extra] = await store.query<Diff>(`SELECT session_id FROM (${tableSessions} EXCEPT DISTINCT ${ledgerSessions}) ORDER BY session_id LIMIT 1`);
  if (extra !== undefined) return report(`agate.q_sessions holds session ${extra.session_id} as the ledger does not record it (a row inserted or changed)`);

  const ledgerStats = `SELECT ${STATS_COLUMNS} FROM (${STATS_FROM_LEDGER})`;
  const tableStats = `SELECT ${STATS_COLUMNS} FROM (${STATS_MERGED})`;
  const [stats] = await store.query<Diff>(`SELECT session_id FROM ((${ledgerStats} EXCEPT DISTINCT ${tableStats}) UNION ALL (${tableStats} EXCEPT DISTINCT ${ledgerStats})) ORDER BY session_id LIMIT 1`);
  if (stats !== undefined) {
    return report(`the counters of session ${stats.session_id} in agate.q_session_stats (commands, denied, closed_at) differ from the ledger's records (a row deleted or changed)`);
  }
  return report(null);
}

import type { Store } from '../../../core/src/store/store.js';

/*
 * The ledger's rows for a verifier that is not Agate (tools/verify-chain.py): every column the
 * link binds, hashes in hex, the payload in base64, the time in microseconds, one JSON object per
 * line (the engine's JSONEachRow, strings byte for byte as stored). docs/ledger.md gives the same
 * query for a ClickHouse server's HTTP interface; the e2e test checks the two agree.
 */
export const LEDGER_EXPORT_SQL =
  'SELECT chain_id, seq, hex(hash) AS hash, hex(prev_hash) AS prev_hash, event_id, event_type, toUnixTimestamp64Micro(time) AS time, session_id, subject, target, text, body, base64Encode(payload) AS payload FROM agate.ledger ORDER BY chain_id, seq, event_id';

/**
 * Writes the ledger's rows to `out` (replaced) from the embedded store, opened directly while
 * Agate is stopped. The engine writes the file itself (INTO OUTFILE), so no string passes
 * through this process's JSON and the bytes are the stored ones.
 */
export async function exportLedgerRows(store: Store, out: string): Promise<void> {
  const quoted = `'${out.replace(/[\\']/g, (c) => '\\' + c)}'`;
  await store.exec(`${LEDGER_EXPORT_SQL} INTO OUTFILE ${quoted} TRUNCATE FORMAT JSONEachRow`);
}

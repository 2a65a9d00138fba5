import type { Store } from '../../../core/src/store/store.js';
import type { EventCodec } from '../../../schemas/src/codec.js';
import { GENESIS, canonicalJson, linkHash } from './chain.js';

export interface ChainFailure {
  /** The sequence number where the chain first breaks. */
  seq: number;
  event_id: string;
  problem: string;
}

export interface VerifyReport {
  chain_id: string;
  ok: boolean;
  records: number;
  head: { seq: number; hash: string };
  failure: ChainFailure | null;
}

interface Row {
  seq: string;
  event_id: string;
  event_type: string;
  session_id: string;
  payload: string;
  body: string;
  prev_hash: string;
  hash: string;
}

const PAGE = 5000;

/**
 * Recomputes one chain from its first record and reports the first record that does not fit:
 * a changed payload or body, a missing or inserted record, a broken link.
 */
export async function verifyChain(store: Store, codec: EventCodec, chainId: string): Promise<VerifyReport> {
  let expectedSeq = 1;
  let prev = GENESIS;
  const fail = (row: Row, problem: string): VerifyReport => ({
    chain_id: chainId, ok: false, records: expectedSeq - 1, head: { seq: expectedSeq - 1, hash: prev },
    failure: { seq: Number(row.seq), event_id: row.event_id, problem },
  });
  for (;;) {
    const rows = await store.query<Row>(
      `SELECT seq, event_id, event_type, session_id, payload, body, prev_hash, hash FROM agate.ledger
       WHERE chain_id = {chain:String} AND seq >= {from:UInt64} ORDER BY seq, event_id LIMIT {limit:UInt32}`,
      { chain: chainId, from: expectedSeq, limit: PAGE },
    );
    for (const row of rows) {
      const seq = Number(row.seq);
      if (seq < expectedSeq) return fail(row, `a second record claims sequence ${seq} (inserted record)`);
      if (seq > expectedSeq) return fail(row, `records ${expectedSeq}..${seq - 1} are missing (deleted records)`);
      if (row.prev_hash !== prev) return fail(row, 'its previous-hash does not match the record before it');
      const payload = Buffer.from(row.payload, 'base64');
      if (linkHash(prev, seq, payload) !== row.hash) return fail(row, 'its hash does not match its content (altered payload or hash)');
      let decoded;
      try {
        decoded = codec.decode(payload);
      } catch {
        return fail(row, 'its payload does not decode as an Agate event');
      }
      if (decoded.event_id !== row.event_id || decoded.type !== row.event_type || decoded.session_id !== row.session_id) {
        return fail(row, 'its indexed columns differ from its payload (altered columns)');
      }
      if (canonicalJson(decoded) !== canonicalJson(safeParse(row.body))) return fail(row, 'its queryable body differs from its payload (altered body)');
      prev = row.hash;
      expectedSeq += 1;
    }
    if (rows.length < PAGE) break;
  }
  return { chain_id: chainId, ok: true, records: expectedSeq - 1, head: { seq: expectedSeq - 1, hash: prev }, failure: null };
}

function safeParse(text: string): unknown {
  try {
    return JSON.parse(text);
  } catch {
    return undefined;
  }
}

/** The chains present in the store. */
export async function listChains(store: Store): Promise<string[]> {
  const rows = await store.query<{ chain_id: string }>('SELECT DISTINCT chain_id FROM agate.ledger ORDER BY chain_id');
  return rows.map((r) => r.chain_id);
}

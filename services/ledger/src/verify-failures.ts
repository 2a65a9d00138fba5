import type { Store } from '../../../core/src/store/store.js';
import type { EventCodec } from '../../../schemas/src/codec.js';
import { LINK_SQL } from './chain.js';
import type { Progress } from './verify-start.js';
import type { ChainFailure } from './verify.js';

interface ProblemRow {
  seq: string;
  event_id: string;
  link_ok: number;
  prev_ok: number;
  before_seq: string;
}

/**
 * Step 2 when a link does not hold: the first record after the verified prefix (up to `hi`) whose
 * link, previous hash or sequence is wrong, described row by row.
 */
export async function describeBreak(store: Store, p: Progress, hi: number): Promise<ChainFailure> {
  const [problem] = await store.query<ProblemRow>(
    `SELECT seq, event_id, link_ok, prev_ok, before_seq FROM (
       SELECT seq, event_id, ${LINK_SQL} = hash AS link_ok,
         prev_hash = lagInFrame(hash, 1, toFixedString(unhex({prev:String}), 32)) OVER w AS prev_ok,
         lagInFrame(seq, 1, toUInt64({last:UInt64})) OVER w AS before_seq
       FROM agate.ledger WHERE chain_id = {chain:String} AND seq > {lo:UInt64} AND seq <= {hi:UInt64}
       WINDOW w AS (ORDER BY seq, event_id ROWS BETWEEN 1 PRECEDING AND CURRENT ROW))
     WHERE NOT link_ok OR NOT prev_ok OR seq != before_seq + 1
     ORDER BY seq, event_id LIMIT 1`,
    { chain: p.chainId, lo: p.lastSeq, hi, prev: p.lastHash.toString('hex'), last: p.lastSeq },
  );
  return problem !== undefined ? describe(problem) : { kind: 'altered', seq: p.lastSeq + 1, event_id: '', problem: `records after ${p.lastSeq} do not hold together (changed while being verified?)` };
}

function describe(row: ProblemRow): ChainFailure {
  const seq = Number(row.seq);
  const before = Number(row.before_seq);
  if (seq === before) return { kind: 'inserted', seq, event_id: row.event_id, problem: `a second record claims sequence ${seq} (inserted record)` };
  if (seq > before + 1) {
    const gap = seq - 1 === before + 1 ? `record ${before + 1} is` : `records ${before + 1}..${seq - 1} are`;
    return { kind: 'missing', seq: before + 1, event_id: '', problem: `${gap} missing (deleted); the next stored record is ${seq}` };
  }
  if (!row.link_ok) return { kind: 'altered', seq, event_id: row.event_id, problem: 'its hash does not match its content (altered field, payload or hash)' };
  return { kind: 'relinked', seq, event_id: row.event_id, problem: 'its previous-hash does not match the record before it (inserted, swapped or replaced record)' };
}

/** With `deep`: the first record in (lo, hi] whose JSON body is not what its payload decodes to. */
export async function firstBodyMismatch(store: Store, codec: EventCodec, chainId: string, lo: number, hi: number): Promise<ChainFailure | undefined> {
  const rows = await store.query<{ seq: string; event_id: string; payload: string; body: string }>(
    'SELECT seq, event_id, base64Encode(payload) AS payload, body FROM agate.ledger WHERE chain_id = {chain:String} AND seq > {lo:UInt64} AND seq <= {hi:UInt64} ORDER BY seq',
    { chain: chainId, lo, hi },
  );
  const bad = rows.find((r) => {
    try {
      return canonicalJson(codec.decode(Buffer.from(r.payload, 'base64'))) !== canonicalJson(JSON.parse(r.body));
    } catch {
      return true;
    }
  });
  return bad === undefined ? undefined : { kind: 'altered', seq: Number(bad.seq), event_id: bad.event_id, problem: 'its JSON body does not match its encoded event' };
}

/** JSON with object keys sorted, so two encodings of equal data compare equal as strings. */
function canonicalJson(value: unknown): string {
  return JSON.stringify(value, (_key, v: unknown) =>
    v !== null && typeof v === 'object' && !Array.isArray(v) ? Object.fromEntries(Object.entries(v as object).sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0))) : v,
  );
}

/**
 * The event id recorded more than once whose second record comes first, among the records after
 * `from` (and, when resuming, between them and every record before): a well-linked chain can
 * still hold one event twice, which would double what an analyst counts. A count of distinct
 * 64-bit hashes of the ids decides first whether to look (a duplicate always lowers it; a rare
 * collision only costs the exact look): grouping the ids themselves took about a fifth of a full
 * verification's time, the hashes a twentieth (measured on 1,000,000 records).
 */
export async function firstDuplicate(store: Store, chainId: string, from: number, againstAll: boolean): Promise<ChainFailure | undefined> {
  const fresh = 'SELECT cityHash64(event_id) FROM agate.ledger WHERE chain_id = {chain:String} AND seq > {from:UInt64}';
  const [counts] = await store.query<{ n: string; distinct: string }>(
    againstAll
      ? `SELECT count() AS n, uniqExact(h) AS distinct FROM (SELECT cityHash64(event_id) AS h FROM agate.ledger WHERE chain_id = {chain:String} AND (seq > {from:UInt64} OR h IN (${fresh})))`
      : 'SELECT count() AS n, uniqExact(cityHash64(event_id)) AS distinct FROM agate.ledger WHERE chain_id = {chain:String} AND seq > {from:UInt64}',
    { chain: chainId, from },
  );
  if (counts === undefined || counts.n === counts.distinct) return undefined;
  const scope = againstAll
    ? 'event_id IN (SELECT event_id FROM agate.ledger WHERE chain_id = {chain:String} AND seq > {from:UInt64})'
    : 'seq > {from:UInt64}';
  const [row] = await store.query<{ event_id: string; seqs: string[] }>(
    `SELECT event_id, arraySort(groupArray(16)(seq)) AS seqs FROM agate.ledger WHERE chain_id = {chain:String} AND ${scope}
     GROUP BY event_id HAVING count() > 1 ORDER BY seqs[2] LIMIT 1`,
    { chain: chainId, from },
  );
  return row === undefined ? undefined : duplicateFailure(row.event_id, row.seqs.map(Number));
}

function duplicateFailure(eventId: string, seqs: number[]): ChainFailure {
  const [first, second] = seqs;
  return { kind: 'duplicate', seq: second!, event_id: eventId, problem: `event ${eventId} is recorded ${seqs.length > 2 ? `${seqs.length} times` : 'twice'}, at records ${seqs.join(', ')}: record ${second} repeats record ${first} (an event delivered again and stored again)` };
}


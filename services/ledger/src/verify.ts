import type { Store } from '../../../core/src/store/store.js';
import type { EventCodec } from '../../../schemas/src/codec.js';
import { GENESIS, LINK_SQL } from './chain.js';
import type { Checkpoint } from './checkpoint.js';
import { CompactRange } from './compact-range.js';
import { openCheckpoint } from './checkpoint.js';
import type { NoteVerifier } from './note.js';
import { BLOCK_SIZE } from './schema.js';
import { pushRange } from './tree-sql.js';
import { scanGroups, type GroupScan } from './verify-scan.js';
import { checkpointChains, findCheckpoints, type CheckpointSources } from './known-checkpoints.js';

export type FailureKind = 'altered' | 'missing' | 'inserted' | 'relinked' | 'rewritten' | 'truncated' | 'resume-mismatch' | 'forked' | 'duplicate';

export interface ChainFailure {
  kind: FailureKind;
  /** The first sequence number where the ledger departs from what was signed or chained. */
  seq: number;
  /** The event id stored at `seq`, '' when no record is there. */
  event_id: string;
  problem: string;
}

/** Where an incremental verification resumes: the verifier's own record of a verified prefix. */
export interface VerifyState {
  chain_id: string;
  size: number;
  head: string;
  frontier: { size: number; hash: string }[];
}

export interface VerifyReport {
  chain_id: string;
  ok: boolean;
  /** Records checked in this run. */
  records: number;
  /** The first record checked in this run (records before it were verified earlier or expired). */
  from: number;
  /** Records that expired by retention before the first stored record. */
  expired: number;
  head: { seq: number; hash: string };
  root: string;
  /** Sizes of the signed checkpoints the store was checked against. */
  checkpoints: number[];
  failure: ChainFailure | null;
  /** Resume point for the next incremental run (only when ok). */
  state: VerifyState | null;
  /** Checkpoints found and not used (not signed by a trusted key, another log), with why. */
  warnings?: string[];
}

export interface VerifyOptions {
  /** Signed checkpoints of this chain (already opened with a trusted key), e.g. kept outside the store. */
  checkpoints?: readonly Checkpoint[];
  /** Continue from an earlier run instead of from the first record. */
  resume?: VerifyState;
  /** Keys that may sign the stored checkpoint verification starts from after expiry. */
  verifiers?: readonly NoteVerifier[];
  /**
   * Records per page, a power of two (default 2^20, one partition of the ledger). Each page is one
   * engine query with a fixed cost of about 40 ms (mostly analysing the query), so on a 2-core
   * machine 2^20 spends ~10 % less engine time than 2^18; the embedded engine's peak memory grows
   * with the page (measured on 1,000,000 records: about +300 MB resident at 2^18, +600 MB at 2^20).
   */
  pageSize?: number;
  /**
   * Also decode every payload and compare it with the stored JSON body (slow, in JS). The link
   * already binds the body; this guards against a writer that derived the body wrongly.
   */
  deep?: boolean;
}

/** Records per page by default: one ledger partition (schema.ts BLOCK_SIZE). */
const DEFAULT_PAGE = BLOCK_SIZE;

interface ProblemRow {
  seq: string;
  event_id: string;
  link_ok: number;
  prev_ok: number;
  before_seq: string;
}

/**
 * Verifies one chain against itself and against signed checkpoints, page by page, with the
 * hashing done by the store's engine: every record's link is recomputed from its own columns
 * and payload, every record must follow the one before it (sequence and previous hash), the
 * Merkle root at each checkpoint's size must equal the signed root and the link hash at that
 * size the signed chain head, and the store must hold at least as many records as the largest
 * checkpoint. The first departure is reported with its sequence number.
 */
export async function verifyChain(store: Store, codec: EventCodec, chainId: string, options: VerifyOptions = {}): Promise<VerifyReport> {
  const page = options.pageSize ?? DEFAULT_PAGE;
  const pending = [...(options.checkpoints ?? [])].sort((a, b) => a.size - b.size);
  const checked: number[] = [];
  const stats = await store.query<{ first: string; last: string }>('SELECT min(seq) AS first, max(seq) AS last FROM agate.ledger WHERE chain_id = {chain:String}', { chain: chainId });
  const storedLast = stats.length === 0 ? 0 : Number(stats[0]!.last);
  const storedFirst = storedLast === 0 ? 0 : Number(stats[0]!.first);

  let tree = new CompactRange();
  let lastSeq = 0;
  let lastHash: Buffer = GENESIS;
  let expired = 0;
  const report = (failure: ChainFailure | null): VerifyReport => ({
    chain_id: chainId, ok: failure === null, records: lastSeq - start, from: start + 1, expired,
    head: { seq: lastSeq, hash: lastHash.toString('hex') }, root: tree.root().toString('hex'), checkpoints: checked, failure,
    state: failure === null ? { chain_id: chainId, size: lastSeq, head: lastHash.toString('hex'), frontier: tree.toJSON() } : null,
  });

  let start = 0;
  if (options.resume !== undefined) {
    const r = options.resume;
    tree = CompactRange.fromJSON(r.frontier);
    [start, lastSeq, lastHash] = [r.size, r.size, Buffer.from(r.head, 'hex')];
    if (r.size > 0 && !(await hashAt(store, chainId, r.size))?.equals(lastHash)) {
      return report({ kind: 'resume-mismatch', seq: r.size, event_id: '', problem: `record ${r.size} is no longer the one verified last time (changed or removed since)` });
    }
  } else if (storedFirst > 1) {
    // Whole blocks dropped by retention: start from the signed checkpoint at the block boundary.
    const from = await storedCheckpoint(store, chainId, storedFirst - 1, options.verifiers ?? []);
    if (from === undefined) {
      return report({ kind: 'missing', seq: 1, event_id: '', problem: `records 1..${storedFirst - 1} are missing and no signed checkpoint at ${storedFirst - 1} shows they expired (deleted records)` });
    }
    [tree, start, lastSeq, lastHash, expired] = [from.tree, from.size, from.size, from.head, from.size];
  }
  for (const cp of pending.filter((c) => c.size <= start)) checked.push(cp.size); // covered by the resumed or expired prefix
  let next = pending.findIndex((c) => c.size > start); // the next checkpoint to compare with
  if (next < 0) next = pending.length;

  const pages: [number, number][] = [];
  for (let lo = start; lo < storedLast; lo = nextBoundary(lo, page)) pages.push([lo, Math.min(nextBoundary(lo, page), storedLast)]);
  // The next page's scan is queued while this process folds the current one, so the engine goes
  // on without waiting for it. A ClickHouse server runs the two at once (filling its threads
  // through a scan's single-threaded tail); the embedded engine's binding runs parameterized
  // queries one at a time, so each scan is set to use all of the engine's threads itself
  // (tree-sql.ts SCAN_SETTINGS).
  const scans: Promise<GroupScan[]>[] = [];
  const scan = (i: number) => {
    if (i < pages.length && scans[i] === undefined) {
      scans[i] = scanGroups(store, chainId, ...pages[i]!);
      scans[i]!.catch(() => undefined); // awaited in turn; a page never reached must not crash the process
    }
  };
  for (const [index, [lo, hi]] of pages.entries()) {
    scan(index);
    scan(index + 1);
    // One pass of the engine over the page checks links, sequence and previous hashes group by
    // group and hashes each whole group's subtree; this process folds the tree and compares it
    // with the checkpoints. The first group that does not hold up is described row by row, from
    // the end of the last one that did.
    const groups = await scans[index]!;
    delete scans[index];
    let broken = false;
    for (const g of groups) {
      if (g.first !== lastSeq + 1 || !g.consecutive || g.badLinks > 0 || !g.linked || !g.firstPrev.equals(lastHash)) {
        broken = true;
        break;
      }
      if (g.root !== null) {
        // A checkpoint inside a whole group needs that group's leaves up to it.
        for (; next < pending.length && pending[next]!.size < g.last; next++) {
          const cp = pending[next]!;
          const at = tree.clone();
          await pushRange(store, chainId, at, lastSeq, cp.size);
          const failure = checkAgainst(cp, at.root(), await hashAt(store, chainId, cp.size));
          if (failure !== null) return report(failure);
        }
        tree.pushSubtree(g.root, g.count);
      } else {
        for (const leaf of g.leaves) {
          tree.push(leaf);
          for (; next < pending.length && pending[next]!.size === tree.size && tree.size < g.last; next++) {
            const failure = checkAgainst(pending[next]!, tree.root(), await hashAt(store, chainId, tree.size));
            if (failure !== null) return report(failure);
          }
        }
      }
      [lastSeq, lastHash] = [g.last, g.lastHash];
      for (; next < pending.length && pending[next]!.size === lastSeq; next++) {
        const failure = checkAgainst(pending[next]!, tree.root(), lastHash);
        if (failure !== null) return report(failure);
      }
    }
    if (broken) {
      const [problem] = await store.query<ProblemRow>(
        `SELECT seq, event_id, link_ok, prev_ok, before_seq FROM (
           SELECT seq, event_id, ${LINK_SQL} = hash AS link_ok,
             prev_hash = lagInFrame(hash, 1, toFixedString(unhex({prev:String}), 32)) OVER w AS prev_ok,
             lagInFrame(seq, 1, toUInt64({last:UInt64})) OVER w AS before_seq
           FROM agate.ledger WHERE chain_id = {chain:String} AND seq > {lo:UInt64} AND seq <= {hi:UInt64}
           WINDOW w AS (ORDER BY seq, event_id ROWS BETWEEN 1 PRECEDING AND CURRENT ROW))
         WHERE NOT link_ok OR NOT prev_ok OR seq != before_seq + 1
         ORDER BY seq, event_id LIMIT 1`,
        { chain: chainId, lo: lastSeq, hi, prev: lastHash.toString('hex'), last: lastSeq },
      );
      return report(problem !== undefined ? describe(problem) : { kind: 'altered', seq: lastSeq + 1, event_id: '', problem: `records after ${lastSeq} do not hold together (changed while being verified?)` });
    }
    if (options.deep) {
      const bad = await firstBodyMismatch(store, codec, chainId, lo, hi);
      if (bad !== undefined) return report({ kind: 'altered', seq: Number(bad.seq), event_id: bad.event_id, problem: 'its JSON body does not match its encoded event' });
    }
  }

  /** The failure when the tree or chain head at a checkpoint's size differs from what it signed. */
  function checkAgainst(cp: Checkpoint, root: Buffer, head: Buffer | undefined): ChainFailure | null {
    if (root.equals(cp.root) && (cp.chainHead === undefined || head?.equals(cp.chainHead) === true)) {
      checked.push(cp.size);
      return null;
    }
    const since = checked.length === 0 ? 0 : checked[checked.length - 1]!;
    return {
      kind: 'rewritten', seq: cp.size, event_id: '',
      problem: `records ${since + 1}..${cp.size} do not match the signed checkpoint of size ${cp.size} (${root.equals(cp.root) ? 'chain head' : 'Merkle root'} differs): rewritten along with their link hashes`,
    };
  }
  const beyond = pending.find((c) => c.size > lastSeq);
  if (beyond !== undefined) {
    return report({ kind: 'truncated', seq: lastSeq + 1, event_id: '', problem: `the store ends at record ${lastSeq}, but a signed checkpoint covers ${beyond.size} records: records ${lastSeq + 1}..${beyond.size} are missing (tail truncated)` });
  }
  const dup = await firstDuplicate(store, chainId, start, options.resume !== undefined);
  if (dup !== undefined) {
    const [first, second] = dup.seqs;
    return report({ kind: 'duplicate', seq: second!, event_id: dup.event_id, problem: `event ${dup.event_id} is recorded ${dup.seqs.length > 2 ? `${dup.seqs.length} times` : 'twice'}, at records ${dup.seqs.join(', ')}: record ${second} repeats record ${first} (an event delivered again and stored again)` });
  }
  return report(null);
}

/**
 * The event id recorded more than once whose second record comes first, among the records after
 * `from` (and, when resuming, between them and every record before): a well-linked chain can
 * still hold one event twice, which would double what an analyst counts. A count of distinct
 * 64-bit hashes of the ids decides first whether to look (a duplicate always lowers it; a rare
 * collision only costs the exact look): grouping the ids themselves took about a fifth of a full
 * verification's time, the hashes a twentieth (measured on 1,000,000 records).
 */
async function firstDuplicate(store: Store, chainId: string, from: number, againstAll: boolean): Promise<{ event_id: string; seqs: number[] } | undefined> {
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
  return row === undefined ? undefined : { event_id: row.event_id, seqs: row.seqs.map(Number) };
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

async function firstBodyMismatch(store: Store, codec: EventCodec, chainId: string, lo: number, hi: number): Promise<{ seq: string; event_id: string } | undefined> {
  const rows = await store.query<{ seq: string; event_id: string; payload: string; body: string }>(
    'SELECT seq, event_id, base64Encode(payload) AS payload, body FROM agate.ledger WHERE chain_id = {chain:String} AND seq > {lo:UInt64} AND seq <= {hi:UInt64} ORDER BY seq',
    { chain: chainId, lo, hi },
  );
  return rows.find((r) => {
    try {
      return canonicalJson(codec.decode(Buffer.from(r.payload, 'base64'))) !== canonicalJson(JSON.parse(r.body));
    } catch {
      return true;
    }
  });
}

/** JSON with object keys sorted, so two encodings of equal data compare equal as strings. */
function canonicalJson(value: unknown): string {
  return JSON.stringify(value, (_key, v: unknown) =>
    v !== null && typeof v === 'object' && !Array.isArray(v) ? Object.fromEntries(Object.entries(v as object).sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0))) : v,
  );
}

/** The next multiple of `page` above `lo`. */
function nextBoundary(lo: number, page: number): number {
  return (Math.floor(lo / page) + 1) * page;
}

async function hashAt(store: Store, chainId: string, seq: number): Promise<Buffer | undefined> {
  const rows = await store.query<{ hash: string }>('SELECT hex(hash) AS hash FROM agate.ledger WHERE chain_id = {chain:String} AND seq = {seq:UInt64}', { chain: chainId, seq });
  return rows.length === 1 ? Buffer.from(rows[0]!.hash, 'hex') : undefined;
}

/** A stored, signature-checked checkpoint at exactly `size`, with a frontier that folds to its root. */
async function storedCheckpoint(store: Store, chainId: string, size: number, verifiers: readonly NoteVerifier[]): Promise<{ tree: CompactRange; size: number; head: Buffer } | undefined> {
  const rows = await store.query<{ note: string; frontier: string }>('SELECT note, frontier FROM agate.checkpoints FINAL WHERE chain_id = {chain:String} AND size = {size:UInt64}', { chain: chainId, size });
  for (const row of rows) {
    try {
      const cp = openCheckpoint(row.note, verifiers);
      const tree = CompactRange.fromJSON(JSON.parse(row.frontier) as VerifyState['frontier']);
      if (cp.size === size && tree.size === size && tree.root().equals(cp.root) && cp.chainHead !== undefined) return { tree, size, head: cp.chainHead };
    } catch {
      // An unreadable or unsigned row is no starting point; the caller reports the gap.
    }
  }
  return undefined;
}

/**
 * Verifies one chain against the given checkpoints and those it finds by itself: the newest
 * signed one in the store's table and in each checkpoint directory (known-checkpoints.ts). What
 * plain `agate verify` runs, so a truncated, rolled-back or re-linked store fails without the
 * auditor naming a checkpoint.
 */
export async function verifyWithKnownCheckpoints(store: Store, codec: EventCodec, chainId: string, sources: CheckpointSources, options: VerifyOptions = {}): Promise<VerifyReport> {
  const found = await findCheckpoints(store, chainId, sources);
  const given = options.checkpoints ?? [];
  const checkpoints = [...given, ...found.checkpoints.filter((f) => !given.some((g) => g.size === f.size && g.root.equals(f.root)))];
  const report = await verifyChain(store, codec, chainId, { verifiers: sources.verifiers, ...options, checkpoints });
  // Two checkpoints of one size that disagree: the given one is checked first and reported; otherwise the fork is.
  const clash = found.fork ?? given.map((g) => found.checkpoints.find((f) => f.size === g.size && !f.root.equals(g.root))).find((f) => f !== undefined)?.size;
  if (report.ok && clash !== undefined) {
    const problem = typeof clash === 'string' ? clash : `two signed checkpoints of size ${clash} disagree: the signed log has forked`;
    return { ...report, ok: false, state: null, failure: { kind: 'forked', seq: 0, event_id: '', problem } };
  }
  return found.ignored.length > 0 ? { ...report, warnings: found.ignored } : report;
}

/** The chains to verify: those in the store and those the checkpoint directories name. */
export async function chainsToVerify(store: Store, dirs: readonly string[]): Promise<string[]> {
  return [...new Set([...(await listChains(store)), ...(await checkpointChains(dirs))])].sort();
}

/** The chains present in the store. */
export async function listChains(store: Store): Promise<string[]> {
  const rows = await store.query<{ chain_id: string }>('SELECT DISTINCT chain_id FROM agate.ledger ORDER BY chain_id');
  return rows.map((r) => r.chain_id);
}

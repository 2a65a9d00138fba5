import type { Store } from '../../../core/src/store/store.js';
import { GENESIS } from './chain.js';
import { openCheckpoint } from './checkpoint.js';
import { CompactRange } from './compact-range.js';
import type { NoteVerifier } from './note.js';
import type { ChainFailure, VerifyOptions, VerifyReport, VerifyState } from './verify.js';

/** How far one verification has got: the verified prefix's tree and head, and the checkpoints matched. */
export interface Progress {
  chainId: string;
  /** Records up to here were verified earlier or expired; this run checks from start + 1. */
  start: number;
  /** Records that expired by retention before the first stored record. */
  expired: number;
  tree: CompactRange;
  lastSeq: number;
  lastHash: Buffer;
  /** Sizes of the signed checkpoints matched so far. */
  checked: number[];
}

/** Step 1, read: the stored range and where verification starts (the first record, a resumed run, or the checkpoint at expiry). */
export async function readStart(store: Store, chainId: string, options: VerifyOptions): Promise<{ progress: Progress; storedLast: number; failure: ChainFailure | null }> {
  const stats = await store.query<{ first: string; last: string }>('SELECT min(seq) AS first, max(seq) AS last FROM agate.ledger WHERE chain_id = {chain:String}', { chain: chainId });
  const storedLast = stats.length === 0 ? 0 : Number(stats[0]!.last);
  const storedFirst = storedLast === 0 ? 0 : Number(stats[0]!.first);
  const progress: Progress = { chainId, start: 0, expired: 0, tree: new CompactRange(), lastSeq: 0, lastHash: GENESIS, checked: [] };
  const failure = (f: ChainFailure) => ({ progress, storedLast, failure: f });

  if (options.resume !== undefined) {
    const r = options.resume;
    Object.assign(progress, { tree: CompactRange.fromJSON(r.frontier), start: r.size, lastSeq: r.size, lastHash: Buffer.from(r.head, 'hex') });
    if (r.size > 0 && !(await hashAt(store, chainId, r.size))?.equals(progress.lastHash)) {
      return failure({ kind: 'resume-mismatch', seq: r.size, event_id: '', problem: `record ${r.size} is no longer the one verified last time (changed or removed since)` });
    }
  } else if (storedFirst > 1) {
    // Whole blocks dropped by retention: start from the signed checkpoint at the block boundary.
    const from = await storedCheckpoint(store, chainId, storedFirst - 1, options.verifiers ?? []);
    if (from === undefined) {
      return failure({ kind: 'missing', seq: 1, event_id: '', problem: `records 1..${storedFirst - 1} are missing and no signed checkpoint at ${storedFirst - 1} shows they expired (deleted records)` });
    }
    Object.assign(progress, { tree: from.tree, start: from.size, lastSeq: from.size, lastHash: from.head, expired: from.size });
  }
  return { progress, storedLast, failure: null };
}

/** Last step, report: what the run found, with the resume point when it found nothing wrong. */
export function report(p: Progress, failure: ChainFailure | null): VerifyReport {
  return {
    chain_id: p.chainId, ok: failure === null, records: p.lastSeq - p.start, from: p.start + 1, expired: p.expired,
    head: { seq: p.lastSeq, hash: p.lastHash.toString('hex') }, root: p.tree.root().toString('hex'), checkpoints: p.checked, failure,
    state: failure === null ? { chain_id: p.chainId, size: p.lastSeq, head: p.lastHash.toString('hex'), frontier: p.tree.toJSON() } : null,
  };
}

/** The link hash stored at `seq`, when exactly one record holds it. */
export async function hashAt(store: Store, chainId: string, seq: number): Promise<Buffer | undefined> {
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

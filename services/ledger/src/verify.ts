import type { Store } from '../../../core/src/store/store.js';
import type { EventCodec } from '../../../schemas/src/codec.js';
import type { Checkpoint } from './checkpoint.js';
import type { NoteVerifier } from './note.js';
import { BLOCK_SIZE } from './schema.js';
import { pushRange } from './tree-sql.js';
import { CheckpointQueue } from './verify-checkpoints.js';
import { describeBreak, firstBodyMismatch, firstDuplicate } from './verify-failures.js';
import { scanGroups, type GroupScan } from './verify-scan.js';
import { hashAt, readStart, report, type Progress } from './verify-start.js';
import { checkpointChains, findCheckpoints, type CheckpointSources } from './known-checkpoints.js';

type FailureKind = 'altered' | 'missing' | 'inserted' | 'relinked' | 'rewritten' | 'truncated' | 'resume-mismatch' | 'forked' | 'duplicate';

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

/**
 * Verifies one chain against itself and against signed checkpoints, page by page, with the
 * hashing done by the store's engine: every record's link is recomputed from its own columns
 * and payload, every record must follow the one before it (sequence and previous hash), the
 * Merkle root at each checkpoint's size must equal the signed root and the link hash at that
 * size the signed chain head, and the store must hold at least as many records as the largest
 * checkpoint. The first departure is reported with its sequence number.
 *
 * The steps: read where to start (verify-start.ts), check each page's links and fold its tree,
 * check each signed checkpoint as its size is reached (verify-checkpoints.ts), check the tail
 * (truncation, duplicates; verify-failures.ts), report.
 */
export async function verifyChain(store: Store, codec: EventCodec, chainId: string, options: VerifyOptions = {}): Promise<VerifyReport> {
  const { progress, storedLast, failure: startFailure } = await readStart(store, chainId, options);
  if (startFailure !== null) return report(progress, startFailure);
  const queue = new CheckpointQueue(options.checkpoints ?? [], progress.start, progress.checked);
  const failure = (await checkPages(store, codec, progress, queue, storedLast, options)) ?? (await checkTail(store, progress, queue, options.resume !== undefined));
  return report(progress, failure);
}

/** Step 2, check links: page by page, every group of records must follow the verified prefix. */
async function checkPages(store: Store, codec: EventCodec, p: Progress, queue: CheckpointQueue, storedLast: number, options: VerifyOptions): Promise<ChainFailure | null> {
  const page = options.pageSize ?? DEFAULT_PAGE;
  const pages: [number, number][] = [];
  for (let lo = p.start; lo < storedLast; lo = nextBoundary(lo, page)) pages.push([lo, Math.min(nextBoundary(lo, page), storedLast)]);
  // The next page's scan is queued while this process folds the current one, so the engine goes
  // on without waiting for it. A ClickHouse server runs the two at once (filling its threads
  // through a scan's single-threaded tail); the embedded engine's binding runs parameterized
  // queries one at a time, so each scan is set to use all of the engine's threads itself
  // (tree-sql.ts SCAN_SETTINGS).
  const scans: Promise<GroupScan[]>[] = [];
  const scan = (i: number) => {
    if (i < pages.length && scans[i] === undefined) {
      scans[i] = scanGroups(store, p.chainId, ...pages[i]!);
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
    for (const g of groups) {
      if (!follows(g, p)) return describeBreak(store, p, hi);
      const failure = await foldGroup(store, p, queue, g);
      if (failure !== null) return failure;
    }
    if (options.deep) {
      const bad = await firstBodyMismatch(store, codec, p.chainId, lo, hi);
      if (bad !== undefined) return bad;
    }
  }
  return null;
}

/** A group holds up: it starts right after the verified prefix, links to it, and holds together. */
function follows(g: GroupScan, p: Progress): boolean {
  return g.first === p.lastSeq + 1 && g.consecutive && g.badLinks === 0 && g.linked && g.firstPrev.equals(p.lastHash);
}

/** Adds a group that holds up to the tree, checking every signed checkpoint whose size falls in it. */
async function foldGroup(store: Store, p: Progress, queue: CheckpointQueue, g: GroupScan): Promise<ChainFailure | null> {
  if (g.root !== null) {
    // A checkpoint inside a whole group needs that group's leaves up to it.
    for (let cp = queue.peek((size) => size < g.last); cp !== undefined; cp = queue.peek((size) => size < g.last)) {
      const at = p.tree.clone();
      await pushRange(store, p.chainId, at, p.lastSeq, cp.size);
      const failure = queue.check(cp, at.root(), await hashAt(store, p.chainId, cp.size));
      if (failure !== null) return failure;
    }
    p.tree.pushSubtree(g.root, g.count);
  } else {
    for (const leaf of g.leaves) {
      p.tree.push(leaf);
      const due = (size: number) => size === p.tree.size && p.tree.size < g.last;
      for (let cp = queue.peek(due); cp !== undefined; cp = queue.peek(due)) {
        const failure = queue.check(cp, p.tree.root(), await hashAt(store, p.chainId, p.tree.size));
        if (failure !== null) return failure;
      }
    }
  }
  [p.lastSeq, p.lastHash] = [g.last, g.lastHash];
  const atEnd = (size: number) => size === p.lastSeq;
  for (let cp = queue.peek(atEnd); cp !== undefined; cp = queue.peek(atEnd)) {
    const failure = queue.check(cp, p.tree.root(), p.lastHash);
    if (failure !== null) return failure;
  }
  return null;
}

/** Step 4, check the tail: no signed checkpoint beyond the store's end, no event stored twice. */
async function checkTail(store: Store, p: Progress, queue: CheckpointQueue, resumed: boolean): Promise<ChainFailure | null> {
  const beyond = queue.beyond(p.lastSeq);
  if (beyond !== undefined) {
    return { kind: 'truncated', seq: p.lastSeq + 1, event_id: '', problem: `the store ends at record ${p.lastSeq}, but a signed checkpoint covers ${beyond.size} records: records ${p.lastSeq + 1}..${beyond.size} are missing (tail truncated)` };
  }
  return (await firstDuplicate(store, p.chainId, p.start, resumed)) ?? null;
}

/** The next multiple of `page` above `lo`. */
function nextBoundary(lo: number, page: number): number {
  return (Math.floor(lo / page) + 1) * page;
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

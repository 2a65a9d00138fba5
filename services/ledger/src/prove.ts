import { AgateError, ErrorCode } from '../../../core/src/errors.js';
import type { Store } from '../../../core/src/store/store.js';
import { parseCheckpoint } from './checkpoint.js';
import type { ConsistencyProofFile, InclusionProofFile } from './proof-file.js';
import { consistencyRanges, inclusionRanges, type LeafRange } from './proofs.js';
import { tiledRangeRoot } from './tree-tiles.js';

/*
 * Proof generation from the store. Which subtrees a proof needs comes from proofs.ts; each
 * subtree's hash is folded from stored subtree nodes, or from leaves hashed by the engine below
 * 256 leaves (tree-tiles.ts), so a proof reads O(log n) rows. The proof names a signed checkpoint
 * of the same size, so an auditor can check it with the public key alone (proof-file.ts).
 */

const hashRanges = (store: Store, chainId: string, ranges: readonly LeafRange[]) =>
  Promise.all(ranges.map(async ([lo, hi]) => (await tiledRangeRoot(store, chainId, lo, hi)).toString('base64')));

/**
 * The inclusion proof of one event in the tree of a signed checkpoint: the given note, or the
 * latest stored checkpoint that covers the event.
 */
export async function proveInclusion(store: Store, eventId: string, checkpointNote?: string): Promise<InclusionProofFile> {
  const [rec] = await store.query<{ chain_id: string; seq: string; leaf: string }>(
    'SELECT chain_id, seq, base64Encode(payload) AS leaf FROM agate.ledger WHERE event_id = {id:String} ORDER BY seq LIMIT 1',
    { id: eventId },
  );
  if (rec === undefined) throw new AgateError(ErrorCode.LEDGER_RECORD_NOT_FOUND, `no ledger record for event ${eventId}`);
  const seq = Number(rec.seq);
  const note = checkpointNote ?? (await latestCheckpoint(store, rec.chain_id, seq))?.note;
  if (note === undefined) throw new AgateError(ErrorCode.LEDGER_RECORD_NOT_FOUND, `no signed checkpoint covers record ${seq} of chain ${rec.chain_id} yet`);
  const cp = parseCheckpoint(note.slice(0, note.indexOf('\n\n') + 1));
  if (cp.size < seq) throw new AgateError(ErrorCode.LEDGER_RECORD_NOT_FOUND, `the checkpoint of size ${cp.size} does not cover record ${seq}`);
  return {
    format: 'agate-inclusion-proof/v1', origin: cp.origin, chain_id: rec.chain_id, event_id: eventId, leaf_index: seq - 1, tree_size: cp.size,
    leaf: rec.leaf, hashes: await hashRanges(store, rec.chain_id, inclusionRanges(seq - 1, cp.size)), checkpoint: note,
  };
}

/** The consistency proof between two signed checkpoints of one chain. */
export async function proveConsistency(store: Store, oldNote: string, newNote: string): Promise<ConsistencyProofFile> {
  const body = (note: string) => parseCheckpoint(note.slice(0, note.indexOf('\n\n') + 1));
  const [a, b] = [body(oldNote), body(newNote)];
  if (a.origin !== b.origin) throw new AgateError(ErrorCode.LEDGER_PROOF_MALFORMED, `the checkpoints are of different logs (${a.origin}, ${b.origin})`);
  if (a.size > b.size || a.size === 0) throw new AgateError(ErrorCode.LEDGER_PROOF_MALFORMED, `no consistency proof from size ${a.size} to ${b.size}`);
  const [row] = await store.query<{ chain_id: string }>('SELECT chain_id FROM agate.checkpoints WHERE origin = {origin:String} LIMIT 1', { origin: a.origin });
  if (row === undefined) throw new AgateError(ErrorCode.LEDGER_RECORD_NOT_FOUND, `this store holds no log named ${a.origin}`);
  return {
    format: 'agate-consistency-proof/v1', origin: a.origin, old_size: a.size, new_size: b.size,
    hashes: await hashRanges(store, row.chain_id, consistencyRanges(a.size, b.size)), old_checkpoint: oldNote, new_checkpoint: newNote,
  };
}

interface StoredCheckpoint {
  chain_id: string;
  size: number;
  origin: string;
  note: string;
}

/** The latest stored checkpoint of a chain with at least `minSize` records. */
export async function latestCheckpoint(store: Store, chainId: string, minSize = 0): Promise<StoredCheckpoint | undefined> {
  const [row] = await store.query<{ chain_id: string; size: string; origin: string; note: string }>(
    'SELECT chain_id, size, origin, note FROM agate.checkpoints FINAL WHERE chain_id = {chain:String} AND size >= {min:UInt64} ORDER BY size DESC LIMIT 1',
    { chain: chainId, min: minSize },
  );
  return row === undefined ? undefined : { ...row, size: Number(row.size) };
}

/** Stored checkpoints of a chain, newest first. */
export async function listCheckpoints(store: Store, chainId: string, limit: number): Promise<StoredCheckpoint[]> {
  const rows = await store.query<{ chain_id: string; size: string; origin: string; note: string }>(
    'SELECT chain_id, size, origin, note FROM agate.checkpoints FINAL WHERE chain_id = {chain:String} ORDER BY size DESC LIMIT {limit:UInt32}',
    { chain: chainId, limit },
  );
  return rows.map((r) => ({ ...r, size: Number(r.size) }));
}

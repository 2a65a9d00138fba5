import { AgateError, ErrorCode } from '../../../core/src/errors.js';
import { openCheckpoint, type Checkpoint } from './checkpoint.js';
import { HASH_SIZE, leafHash } from './merkle.js';
import { parseVerifierKey } from './note.js';
import { rootFromInclusionProof, verifyConsistency } from './proofs.js';

/*
 * The standalone, offline verifier: proofs as JSON files, checked with nothing but the proof,
 * a signed checkpoint and the ledger's public key. No store, no network.
 */

/** What `agate prove` prints. `leaf` is the encoded event itself, so its hash is recomputed here. */
export interface InclusionProofFile {
  format: 'agate-inclusion-proof/v1';
  origin: string;
  chain_id: string;
  event_id: string;
  leaf_index: number;
  tree_size: number;
  /** The Avro-encoded event, base64: the Merkle leaf. */
  leaf: string;
  /** RFC 9162 inclusion path, base64. */
  hashes: string[];
  /** The signed checkpoint the proof was made for. */
  checkpoint: string;
}

/** What `agate consistency OLD NEW` prints. */
export interface ConsistencyProofFile {
  format: 'agate-consistency-proof/v1';
  origin: string;
  old_size: number;
  new_size: number;
  hashes: string[];
  old_checkpoint: string;
  new_checkpoint: string;
}

const invalid = (why: string) => new AgateError(ErrorCode.LEDGER_PROOF_INVALID, why);
const malformed = (why: string) => new AgateError(ErrorCode.LEDGER_PROOF_MALFORMED, `malformed proof: ${why}`);

function decodeHashes(list: unknown): Buffer[] {
  if (!Array.isArray(list)) throw malformed('hashes must be a list');
  return list.map((h) => {
    const b = typeof h === 'string' ? Buffer.from(h, 'base64') : Buffer.alloc(0);
    if (b.length !== HASH_SIZE || b.toString('base64') !== h) throw malformed('each hash must be 32 bytes of base64');
    return b;
  });
}

/**
 * Checks an inclusion proof offline: the checkpoint's signature under `verifierKey`, then that
 * the leaf at its index, hashed up the proof path, gives the checkpoint's root.
 *
 * @example
 * const { checkpoint } = verifyInclusionProofFile(JSON.parse(proofText), checkpointNote, 'agate.local/ledger+1a2b3c4d+AX…');
 */
export function verifyInclusionProofFile(proof: InclusionProofFile, checkpointNote: string, verifierKey: string): { checkpoint: Checkpoint; leaf: Buffer } {
  if (proof?.format !== 'agate-inclusion-proof/v1') throw malformed('not an agate inclusion proof');
  const cp = openCheckpoint(checkpointNote, [parseVerifierKey(verifierKey)]);
  if (cp.origin !== proof.origin) throw invalid(`the proof is for ${proof.origin}, the checkpoint for ${cp.origin}`);
  if (cp.size !== proof.tree_size) throw invalid(`the proof is for a tree of ${proof.tree_size}, the checkpoint covers ${cp.size}`);
  if (!Number.isSafeInteger(proof.leaf_index)) throw malformed('leaf_index must be an integer');
  const leaf = Buffer.from(proof.leaf, 'base64');
  const root = rootFromInclusionProof(proof.leaf_index, proof.tree_size, leafHash(leaf), decodeHashes(proof.hashes));
  if (root === null || !root.equals(cp.root)) throw invalid(`leaf ${proof.leaf_index} is not in the signed tree of ${cp.size} with this proof`);
  return { checkpoint: cp, leaf };
}

/** Checks a consistency proof offline: both checkpoints signed under `verifierKey`, the newer extends the older. */
export function verifyConsistencyProofFile(proof: ConsistencyProofFile, verifierKey: string): { old: Checkpoint; new: Checkpoint } {
  if (proof?.format !== 'agate-consistency-proof/v1') throw malformed('not an agate consistency proof');
  const key = [parseVerifierKey(verifierKey)];
  const a = openCheckpoint(proof.old_checkpoint, key);
  const b = openCheckpoint(proof.new_checkpoint, key);
  if (a.origin !== b.origin || a.origin !== proof.origin) throw invalid('the checkpoints are of different logs');
  if (a.size !== proof.old_size || b.size !== proof.new_size) throw invalid('the proof sizes differ from the checkpoints');
  if (!verifyConsistency(a.size, b.size, a.root, b.root, decodeHashes(proof.hashes))) throw invalid(`the tree of ${b.size} does not extend the tree of ${a.size} with this proof`);
  return { old: a, new: b };
}

import { AgateError, ErrorCode } from '../../../core/src/errors.js';
import { HASH_SIZE } from './merkle.js';
import { openNote, signNote, type NoteSigner, type NoteVerifier } from './note.js';

/*
 * C2SP tlog-checkpoint (c2sp.org/tlog-checkpoint): the note text is
 *   origin "\n" tree size (decimal) "\n" base64(root hash) "\n" [extension lines]
 * Agate adds one extension line, "chain-head " base64(link hash of the last record), so the
 * signature also covers the hash chain that binds the queryable columns (see chain.ts).
 * Readers that only know the standard three lines can ignore it.
 */

export interface Checkpoint {
  origin: string;
  size: number;
  root: Buffer;
  /** Link hash of record `size` (absent for an empty tree or a foreign checkpoint). */
  chainHead?: Buffer;
}

const HEAD_PREFIX = 'chain-head ';
const malformed = (why: string) => new AgateError(ErrorCode.LEDGER_CHECKPOINT_MALFORMED, `malformed checkpoint: ${why}`);

export function formatCheckpoint(cp: Checkpoint): string {
  const lines = [cp.origin, String(cp.size), cp.root.toString('base64')];
  if (cp.chainHead !== undefined) lines.push(HEAD_PREFIX + cp.chainHead.toString('base64'));
  return lines.join('\n') + '\n';
}

export function parseCheckpoint(text: string): Checkpoint {
  const lines = text.split('\n');
  if (lines.pop() !== '' || lines.length < 3) throw malformed('expected origin, size and root hash lines');
  const [origin, size, root, ...extensions] = lines as [string, string, string, ...string[]];
  if (origin.length === 0) throw malformed('empty origin');
  if (!/^(0|[1-9][0-9]*)$/.test(size) || !Number.isSafeInteger(Number(size))) throw malformed('the size is not a decimal number');
  const rootHash = decodeHash(root);
  if (rootHash === null) throw malformed('the root is not a base64 SHA-256 hash');
  const cp: Checkpoint = { origin, size: Number(size), root: rootHash };
  for (const ext of extensions) {
    if (ext.length === 0) throw malformed('empty extension line');
    if (ext.startsWith(HEAD_PREFIX)) {
      const head = decodeHash(ext.slice(HEAD_PREFIX.length));
      if (head === null) throw malformed('the chain head is not a base64 SHA-256 hash');
      cp.chainHead = head;
    }
  }
  return cp;
}

function decodeHash(b64: string): Buffer | null {
  const h = Buffer.from(b64, 'base64');
  // Re-encoding must give the same text, so no two spellings of one checkpoint exist.
  return h.length === HASH_SIZE && h.toString('base64') === b64 ? h : null;
}

export function signCheckpoint(cp: Checkpoint, signer: NoteSigner): string {
  return signNote(formatCheckpoint(cp), signer);
}

/** Verifies a checkpoint note's signature and parses it. */
export function openCheckpoint(note: string, verifiers: readonly NoteVerifier[]): Checkpoint {
  return parseCheckpoint(openNote(note, verifiers).text);
}

import { existsSync } from 'node:fs';
import { AgateError, ErrorCode } from '../../../core/src/errors.js';
import { createSecretFile, readSecretFile } from '../../../core/src/secret-file.js';
import { generateSignerKey, parseSignerKey, type NoteSigner } from './note.js';

/**
 * The checkpoint signing key: read from `path`, or generated there on first start (mode 0600 in a 0700 directory; a looser one is tightened).
 * Its name must be the configured origin, so a renamed log never signs with a stale name.
 */
export function loadOrCreateSigner(path: string, name: string): NoteSigner {
  // Fails quietly if another process created it meanwhile; then that one is read.
  if (!existsSync(path)) createSecretFile(path, generateSignerKey(name) + '\n');
  let signer: NoteSigner;
  try {
    signer = parseSignerKey(readSecretFile(path).toString('utf8'));
  } catch (cause) {
    throw new AgateError(ErrorCode.LEDGER_KEY_INVALID, `${path} is not an Ed25519 signer key`, { cause });
  }
  if (signer.name !== name) throw new AgateError(ErrorCode.LEDGER_KEY_INVALID, `${path} is the key of "${signer.name}", but ledger.origin is "${name}"`);
  return signer;
}

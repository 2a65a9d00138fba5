import { existsSync } from 'node:fs';
import { AgateError, ErrorCode } from '../../../core/src/errors.js';
import { createSecretFile, readSecretFile } from '../../../core/src/secret-file.js';
import { generateSignerKey, parseSignerKey, type NoteSigner } from './note.js';

/**
 * The checkpoint signing key: read from `path`, or, with `create`, generated there on first start
 * (mode 0600 in a 0700 directory; a looser one is tightened). Without `create` a missing file is
 * an error: several ledger instances of one log must share one key, and each making its own
 * would sign the log with several. Its name must be the configured origin, so a renamed log
 * never signs with a stale name.
 */
export function loadOrCreateSigner(path: string, name: string, create = true): NoteSigner {
  if (!existsSync(path)) {
    if (!create) throw new AgateError(ErrorCode.LEDGER_KEY_INVALID, `the checkpoint signing key ${path} (ledger.signing_key) does not exist: with the Kafka bus every ledger instance signs with one shared key, so none is generated; create it once (agate ledger-key) and give each ledger instance that file`);
    // Fails quietly if another process created it meanwhile; then that one is read.
    createSecretFile(path, generateSignerKey(name) + '\n');
  }
  let signer: NoteSigner;
  try {
    signer = parseSignerKey(readSecretFile(path).toString('utf8'));
  } catch (cause) {
    throw new AgateError(ErrorCode.LEDGER_KEY_INVALID, `${path} is not an Ed25519 signer key`, { cause });
  }
  if (signer.name !== name) throw new AgateError(ErrorCode.LEDGER_KEY_INVALID, `${path} is the key of "${signer.name}", but ledger.origin is "${name}"`);
  return signer;
}

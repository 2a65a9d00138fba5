import { chmodSync, existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { dirname } from 'node:path';
import { AgateError, ErrorCode } from '../../../core/src/errors.js';
import { generateSignerKey, parseSignerKey, type NoteSigner } from './note.js';

/**
 * The checkpoint signing key: read from `path`, or generated there on first start (mode 0600).
 * Its name must be the configured origin, so a renamed log never signs with a stale name.
 */
export function loadOrCreateSigner(path: string, name: string): NoteSigner {
  if (!existsSync(path)) {
    mkdirSync(dirname(path), { recursive: true, mode: 0o700 });
    // 'wx' fails if another process created it meanwhile; the next start reads that one.
    writeFileSync(path, generateSignerKey(name) + '\n', { flag: 'wx', mode: 0o600 });
    chmodSync(path, 0o600);
  }
  let signer: NoteSigner;
  try {
    signer = parseSignerKey(readFileSync(path, 'utf8'));
  } catch (cause) {
    throw new AgateError(ErrorCode.LEDGER_KEY_INVALID, `${path} is not an Ed25519 signer key`, { cause });
  }
  if (signer.name !== name) throw new AgateError(ErrorCode.LEDGER_KEY_INVALID, `${path} is the key of "${signer.name}", but ledger.origin is "${name}"`);
  return signer;
}

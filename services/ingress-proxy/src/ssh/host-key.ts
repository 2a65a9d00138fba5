import { createHash } from 'node:crypto';
import { existsSync } from 'node:fs';
import ssh2 from 'ssh2';
import { AgateError, ErrorCode } from '../../../../core/src/errors.js';
import { createSecretFile, readSecretFile } from '../../../../core/src/secret-file.js';

/** A target's pinned host key: the whole public key, or only its SHA-256 fingerprint. */
export type PinnedHostKey = { kind: 'key'; blob: Buffer } | { kind: 'fingerprint'; fingerprint: string };

/** Reads the config form: `ssh-ed25519 AAAA…` (known_hosts style) or `SHA256:…`. */
export function parsePinnedHostKey(text: string): PinnedHostKey {
  const trimmed = text.trim();
  if (trimmed.startsWith('SHA256:')) return { kind: 'fingerprint', fingerprint: trimmed.replace(/=+$/, '') };
  const [, base64 = ''] = trimmed.split(/\s+/);
  return { kind: 'key', blob: Buffer.from(base64, 'base64') };
}

/** OpenSSH's fingerprint form: SHA-256 of the key blob, base64 without padding. */
export function fingerprint(blob: Buffer): string {
  return 'SHA256:' + createHash('sha256').update(blob).digest('base64').replace(/=+$/, '');
}

export function hostKeyMatches(pin: PinnedHostKey, blob: Buffer): boolean {
  return pin.kind === 'key' ? pin.blob.equals(blob) : pin.fingerprint === fingerprint(blob);
}

/** The proxy's own host key; an ed25519 key is created (mode 0600 in a 0700 directory) when the file does not exist. */
export function loadOrCreateHostKey(file: string): Buffer {
  if (!existsSync(file)) createSecretFile(file, generateHostKey());
  return readSecretFile(file);
}

/**
 * A new ed25519 key in OpenSSH form. ssh2's generator writes about one key in 256 that its own
 * parser then refuses (a private part starting with a zero byte, it seems), which made a first
 * `agate start` fail now and then; such a key is drawn again.
 */
export function generateHostKey(): string {
  for (let attempt = 0; attempt < 16; attempt++) {
    const { private: key } = ssh2.utils.generateKeyPairSync('ed25519');
    if (!(ssh2.utils.parseKey(key) instanceof Error)) return key;
  }
  throw new AgateError(ErrorCode.CONFIG_INVALID, 'could not generate an ed25519 host key that ssh2 can read (16 attempts)');
}

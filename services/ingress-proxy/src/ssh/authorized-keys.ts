import ssh2 from 'ssh2';
import type { ParsedKey } from 'ssh2';
import { ConfigError } from '../../../../core/src/errors.js';
import type { Identity } from '../../../../schemas/src/events.js';
import { fingerprint } from './host-key.js';

/** The issuer named in the identity of a client that logged in with a registered public key. */
export const SSH_KEY_ISSUER = 'agate:ssh-public-key';

/** A public key registered to an identity in the config (`proxy.ssh.authorized_keys`). */
interface AuthorizedKeyConfig {
  /** `ssh-ed25519 AAAA… [comment]`, as in an authorized_keys file. */
  key: string;
  subject: string;
  claims: Record<string, string>;
}

interface Entry {
  parsed: ParsedKey;
  identity: Identity;
}

/**
 * The public keys clients may log in with instead of a token (a CI runner without an OIDC
 * issuer, say). Each key stands for one configured identity; policy matches it like any other,
 * by `iss` (always `agate:ssh-public-key`) and `sub`.
 */
export class AuthorizedKeys {
  readonly #byBlob = new Map<string, Entry>();

  constructor(entries: readonly AuthorizedKeyConfig[]) {
    for (const [i, e] of entries.entries()) {
      const key = ssh2.utils.parseKey(e.key);
      if (key instanceof Error) throw new ConfigError(`proxy.ssh.authorized_keys[${i}].key is not a public key: ${key.message}`);
      if (key.isPrivateKey()) throw new ConfigError(`proxy.ssh.authorized_keys[${i}].key is a private key; register the public one`);
      const identity: Identity = { issuer: SSH_KEY_ISSUER, subject: e.subject, claims: { ...e.claims, iss: SSH_KEY_ISSUER, sub: e.subject, key_fingerprint: fingerprint(key.getPublicSSH()) } };
      this.#byBlob.set(blobId(key.type, key.getPublicSSH()), { parsed: key, identity });
    }
  }

  get size(): number {
    return this.#byBlob.size;
  }

  /** The identity a key stands for, or undefined when the key is not registered. */
  identityOf(algo: string, blob: Buffer): Identity | undefined {
    return this.#find(algo, blob)?.identity;
  }

  /** True when `signature` over `data` was made with the registered key `blob`. */
  verify(algo: string, blob: Buffer, data: Buffer, signature: Buffer, hashAlgo: string | undefined): boolean {
    const entry = this.#find(algo, blob);
    return entry !== undefined && entry.parsed.verify(data, signature, hashAlgo) === true;
  }

  #find(algo: string, blob: Buffer): Entry | undefined {
    // RSA keys are offered under the signature algorithm's name (rsa-sha2-256) but stored as ssh-rsa.
    return this.#byBlob.get(blobId(algo.startsWith('rsa-sha2-') ? 'ssh-rsa' : algo, blob));
  }
}

const blobId = (type: string, blob: Buffer) => `${type} ${blob.toString('base64')}`;

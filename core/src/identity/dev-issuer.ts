import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { exportJWK, generateKeyPair, importJWK, SignJWT, type JWK } from 'jose';
import { createSecretFile, readSecretFile } from '../secret-file.js';
import { localIssuer, type TrustedIssuer } from './oidc.js';

/**
 * A built-in token issuer for trying Agate without an identity provider. Off unless the config
 * sets `identity.dev_issuer.enabled`; its `.invalid` issuer name can never match a real one.
 */
export const DEV_ISSUER = 'https://dev-issuer.agate.invalid';
const ALG = 'ES256';

interface StoredKey {
  private: JWK;
  public: JWK;
}

async function loadOrCreateKey(dataDir: string): Promise<StoredKey> {
  const dir = join(dataDir, 'dev-issuer');
  const path = join(dir, 'key.json');
  if (existsSync(path)) return JSON.parse(readSecretFile(path).toString('utf8')) as StoredKey;
  const { privateKey, publicKey } = await generateKeyPair(ALG, { extractable: true });
  const kid = `dev-${Date.now().toString(36)}`;
  const stored: StoredKey = {
    private: { ...(await exportJWK(privateKey)), kid, alg: ALG },
    public: { ...(await exportJWK(publicKey)), kid, alg: ALG },
  };
  // Another process may have created it first; then use theirs.
  if (!createSecretFile(path, JSON.stringify(stored))) return JSON.parse(readSecretFile(path).toString('utf8')) as StoredKey;
  return stored;
}

export async function devTrustedIssuer(dataDir: string, audience: string): Promise<TrustedIssuer> {
  const key = await loadOrCreateKey(dataDir);
  return localIssuer(DEV_ISSUER, audience, [key.public], [ALG]);
}

interface DevTokenOptions {
  subject: string;
  audience: string;
  ttlSeconds: number;
  claims?: Record<string, unknown>;
}

/** Mints a token the dev issuer's key set verifies. For local trials only. */
export async function mintDevToken(dataDir: string, options: DevTokenOptions): Promise<string> {
  const key = await loadOrCreateKey(dataDir);
  const signingKey = await importJWK(key.private, ALG);
  return new SignJWT({ ...options.claims })
    .setProtectedHeader({ alg: ALG, kid: key.private.kid!, typ: 'JWT' })
    .setIssuer(DEV_ISSUER)
    .setSubject(options.subject)
    .setAudience(options.audience)
    .setIssuedAt()
    .setNotBefore('0s')
    .setExpirationTime(`${options.ttlSeconds}s`)
    .sign(signingKey);
}

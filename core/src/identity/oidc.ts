import { createLocalJWKSet, createRemoteJWKSet, customFetch, decodeJwt, decodeProtectedHeader, errors as joseErrors, jwtVerify, type JWK, type JWTPayload, type JWTVerifyGetKey } from 'jose';
import { AuthenticationError, ErrorCode } from '../errors.js';
import type { Identity } from '../../../schemas/src/events.js';
import type { IssuerConfig } from '../config.js';

/** An issuer Agate trusts, with the key set that verifies its tokens. */
export interface TrustedIssuer {
  issuer: string;
  audience: string | string[];
  algorithms: string[];
  clockToleranceS: number;
  /** Longest accepted exp − iat (exp − now without iat), in seconds. */
  maxLifetimeS: number;
  subjectClaim: string;
  /** The clients (`azp`) whose tokens are accepted; `*` accepts any, or none with several audiences. */
  allowedAzp: readonly string[];
  keys: JWTVerifyGetKey;
}

/** What can be read from a token without trusting it: for the audit record of a refusal. */
interface UnverifiedClaims {
  issuer: string | null;
  subject: string | null;
}

const MAX_TOKEN_LENGTH = 16 * 1024;

/**
 * Verifies OIDC id-tokens (GitHub Actions, GitLab CI, any workload identity) against the
 * configured issuers: signature by the issuer's JWKS, `iss`, `aud`, `exp`, `nbf`, allowed
 * algorithms, no `iat` in the future and no lifetime past the issuer's maximum (beyond the clock
 * tolerance), no critical header extension. Every refusal is an `AuthenticationError` whose code
 * says why.
 */
export class TokenVerifier {
  readonly #issuers = new Map<string, TrustedIssuer>();
  readonly #sessionGraceMs: number;

  constructor(issuers: readonly TrustedIssuer[], options: { sessionGraceS?: number } = {}) {
    for (const i of issuers) this.#issuers.set(i.issuer, i);
    this.#sessionGraceMs = (options.sessionGraceS ?? 0) * 1000;
  }

  /**
   * When a session opened with this verified identity must end (ms since the epoch): its token's
   * `exp` plus `identity.session_grace_s`. Undefined for an identity that no token vouches for
   * (an SSH public key).
   */
  sessionDeadline(identity: Identity): number | undefined {
    if (!this.#issuers.has(identity.issuer)) return undefined;
    const exp = Number(identity.claims.exp);
    return Number.isFinite(exp) ? exp * 1000 + this.#sessionGraceMs : undefined;
  }

  async verify(token: string): Promise<Identity> {
    if (token.length === 0 || token.length > MAX_TOKEN_LENGTH || token.split('.').length !== 3) {
      throw new AuthenticationError(ErrorCode.AUTH_TOKEN_MALFORMED, 'the credential is not a JWT: expected an OIDC id-token (header.payload.signature)');
    }
    let alg: string | undefined;
    let crit: unknown;
    let iss: unknown;
    try {
      ({ alg, crit } = decodeProtectedHeader(token));
      iss = decodeJwt(token).iss;
    } catch (cause) {
      throw new AuthenticationError(ErrorCode.AUTH_TOKEN_MALFORMED, 'the token cannot be decoded as a JWT', { cause });
    }
    // RFC 7515 §4.1.11: an extension marked critical that the recipient does not implement makes
    // the token invalid. Agate implements none (jose would report it as an unsupported algorithm).
    if (crit !== undefined) {
      throw new AuthenticationError(ErrorCode.AUTH_CRIT_UNSUPPORTED, `the token header marks ${JSON.stringify(crit).slice(0, 200)} critical (crit); Agate implements no JWS extension`);
    }
    const trusted = typeof iss === 'string' ? this.#issuers.get(iss) : undefined;
    if (trusted === undefined) {
      throw new AuthenticationError(ErrorCode.AUTH_ISSUER_UNTRUSTED, `tokens from issuer ${JSON.stringify(iss ?? null)} are not trusted`);
    }
    if (alg === undefined || !trusted.algorithms.includes(alg)) {
      throw new AuthenticationError(ErrorCode.AUTH_ALGORITHM_REFUSED, `token algorithm ${JSON.stringify(alg ?? null)} is not allowed for ${trusted.issuer} (allowed: ${trusted.algorithms.join(', ')})`);
    }
    let payload: JWTPayload;
    try {
      ({ payload } = await jwtVerify(token, trusted.keys, {
        issuer: trusted.issuer,
        audience: trusted.audience,
        algorithms: trusted.algorithms,
        clockTolerance: trusted.clockToleranceS,
        requiredClaims: ['exp', trusted.subjectClaim],
      }));
    } catch (err) {
      throw translateJoseError(err);
    }
    checkLifetime(payload, trusted);
    checkAuthorizedParty(payload, trusted);
    return toIdentity(payload, trusted);
  }

  /** Reads `iss` and `sub` without verifying anything; null where absent or undecodable. */
  static peek(token: string): UnverifiedClaims {
    try {
      const p = decodeJwt(token);
      return { issuer: typeof p.iss === 'string' ? p.iss.slice(0, 512) : null, subject: typeof p.sub === 'string' ? p.sub.slice(0, 512) : null };
    } catch {
      return { issuer: null, subject: null };
    }
  }
}

/** `iat` not in the future, and exp − iat (exp − now without iat) within the issuer's maximum. */
function checkLifetime(payload: JWTPayload, trusted: TrustedIssuer): void {
  const now = Math.floor(Date.now() / 1000);
  const tolerance = trusted.clockToleranceS;
  if (typeof payload.iat === 'number' && payload.iat > now + tolerance) {
    throw new AuthenticationError(ErrorCode.AUTH_TOKEN_NOT_YET_VALID, `the token was issued in the future (iat is ${payload.iat - now} s ahead, clock tolerance ${tolerance} s)`);
  }
  const start = typeof payload.iat === 'number' ? payload.iat : now;
  const lifetime = payload.exp! - start;
  if (lifetime > trusted.maxLifetimeS + tolerance) {
    throw new AuthenticationError(ErrorCode.AUTH_TOKEN_LIFETIME_TOO_LONG, `the token lives ${lifetime} s (exp − ${typeof payload.iat === 'number' ? 'iat' : 'now'}), longer than the ${trusted.maxLifetimeS} s allowed for ${trusted.issuer} (max_token_lifetime_s)`);
  }
}

/**
 * OpenID Connect Core §3.1.3.7: `azp` names the client the token was minted for. An issuer serves
 * many clients, and a token minted for another of them may name Agate among its audiences: it is
 * accepted only when that client is listed, and one with several audiences must say whose it is.
 */
function checkAuthorizedParty(payload: JWTPayload, trusted: TrustedIssuer): void {
  if (trusted.allowedAzp.includes('*')) return;
  const azp = payload.azp;
  const audiences = Array.isArray(payload.aud) ? payload.aud.length : 1;
  if (azp === undefined && audiences === 1) return;
  if (typeof azp !== 'string' || !trusted.allowedAzp.includes(azp)) {
    const why = azp === undefined ? `names ${audiences} audiences and no authorized party (azp)` : `was minted for client ${JSON.stringify(String(azp)).slice(0, 200)} (azp)`;
    throw new AuthenticationError(ErrorCode.AUTH_AZP_REFUSED, `the token ${why}; ${trusted.issuer} tokens are accepted for ${trusted.allowedAzp.join(', ')} (allowed_azp)`);
  }
}

function toIdentity(payload: JWTPayload, issuer: TrustedIssuer): Identity {
  const claims: Record<string, string> = {};
  for (const [k, v] of Object.entries(payload)) claims[k] = typeof v === 'string' ? v : JSON.stringify(v);
  return { issuer: issuer.issuer, subject: claims[issuer.subjectClaim]!, claims };
}

function translateJoseError(err: unknown): AuthenticationError {
  const cause = err;
  if (err instanceof joseErrors.JWTExpired) return new AuthenticationError(ErrorCode.AUTH_TOKEN_EXPIRED, 'the token has expired', { cause });
  if (err instanceof joseErrors.JWTClaimValidationFailed) {
    switch (err.claim) {
      case 'nbf':
        return new AuthenticationError(ErrorCode.AUTH_TOKEN_NOT_YET_VALID, 'the token is not valid yet (nbf is in the future)', { cause });
      case 'aud':
        return new AuthenticationError(ErrorCode.AUTH_AUDIENCE_MISMATCH, 'the token was issued for another audience', { cause });
      case 'iss':
        return new AuthenticationError(ErrorCode.AUTH_ISSUER_UNTRUSTED, 'the token issuer is not trusted', { cause });
      default:
        return new AuthenticationError(ErrorCode.AUTH_CLAIM_INVALID, `the token claim "${err.claim}" is missing or invalid`, { cause });
    }
  }
  if (err instanceof joseErrors.JWSSignatureVerificationFailed || err instanceof joseErrors.JWKSNoMatchingKey || err instanceof joseErrors.JWKSMultipleMatchingKeys) {
    return new AuthenticationError(ErrorCode.AUTH_SIGNATURE_INVALID, 'the token signature does not verify against the issuer keys', { cause });
  }
  if (err instanceof joseErrors.JOSEAlgNotAllowed || err instanceof joseErrors.JOSENotSupported) {
    return new AuthenticationError(ErrorCode.AUTH_ALGORITHM_REFUSED, 'the token algorithm is not allowed', { cause });
  }
  if (err instanceof KeySetUnavailable || err instanceof joseErrors.JWKSTimeout || err instanceof joseErrors.JWKSInvalid || (err instanceof Error && !(err instanceof joseErrors.JOSEError))) {
    return new AuthenticationError(ErrorCode.AUTH_JWKS_UNAVAILABLE, 'the issuer key set could not be fetched; try again', { cause, retriable: true });
  }
  return new AuthenticationError(ErrorCode.AUTH_TOKEN_MALFORMED, 'the token is not a valid JWT', { cause });
}

/** After the issuer's discovery or key set failed, tokens are refused at once for this long rather than asking it again. */
const KEY_SET_RETRY_MS = 10_000;

/** However short the key set's Cache-Control max-age, it is not fetched again sooner than this. */
export const KEY_SET_MIN_AGE_MS = 2_000;

/** The `max-age` of a Cache-Control header, in ms; undefined without one (`no-cache` and `no-store` say nothing of how soon keys change). */
function maxAgeMs(cacheControl: string | null): number | undefined {
  const m = /(?:^|[,\s])max-age\s*=\s*"?(\d{1,10})"?/i.exec(cacheControl ?? '');
  return m === null ? undefined : Number(m[1]) * 1000;
}

/** The issuer's key set could not be had (discovery or JWKS: network, status, not JSON, not a key set): no fault of the token. */
class KeySetUnavailable extends Error {}

/**
 * A trusted issuer whose keys come from its JWKS URI (or OpenID discovery when none is set).
 * Discovery runs once for every caller. The key set is fetched again for a token arriving
 * `jwks_max_age_s` after the last fetch (jose's cache age; its default of 10 min kept a revoked
 * key verifying that long), or after the key set's own Cache-Control max-age when shorter, but
 * not within `KEY_SET_MIN_AGE_MS` of the last fetch. After a failed discovery or key-set fetch the issuer is
 * not asked again for `KEY_SET_RETRY_MS`: tokens naming it (signed or not) cannot make Agate ask
 * it once each while it is down. In that pause a token is checked against the keys last fetched
 * while they are fresh (jose's cache age), and refused as unavailable otherwise.
 */
export function remoteIssuer(cfg: IssuerConfig): TrustedIssuer {
  const ceilingMs = cfg.jwks_max_age_s * 1000;
  let remote: Promise<RemoteKeySet> | undefined;
  let failedAt = -Infinity;
  let fetchedAt = -Infinity;
  let ageMs = ceilingMs;
  const fetchKeySet = async (url: string, init: RequestInit): Promise<Response> => {
    const res = await fetch(url, init);
    if (res.status === 200) {
      fetchedAt = Date.now();
      const hinted = maxAgeMs(res.headers.get('cache-control'));
      ageMs = Math.min(ceilingMs, Math.max(KEY_SET_MIN_AGE_MS, hinted ?? ceilingMs));
    }
    return res;
  };
  const unavailable = (cause: unknown) => {
    failedAt = Date.now();
    return new KeySetUnavailable('the issuer key set could not be fetched', { cause });
  };
  const keys: JWTVerifyGetKey = async (header, token) => {
    const paused = Date.now() - failedAt < KEY_SET_RETRY_MS;
    if (remote === undefined && paused) throw new KeySetUnavailable('the issuer key set failed moments ago');
    remote ??= (async () => createRemoteJWKSet(new URL(cfg.jwks_uri ?? (await discoverJwksUri(cfg.issuer))), { timeoutDuration: 5000, cooldownDuration: 30_000, cacheMaxAge: ceilingMs, [customFetch]: fetchKeySet }))();
    let set: RemoteKeySet;
    try {
      set = await remote;
    } catch (err) {
      remote = undefined;
      throw unavailable(err);
    }
    if (paused) {
      const last = set.jwks();
      if (last === undefined || !set.fresh) throw new KeySetUnavailable('the issuer key set failed moments ago');
      return createLocalJWKSet(last)(header, token);
    }
    try {
      // The Cache-Control age ran out before jose's: fetch now (one fetch for all waiting callers).
      if (set.fresh && Date.now() - fetchedAt >= ageMs) {
        try {
          await set.reload();
        } catch (err) {
          if (!isFetchFailure(err)) throw err;
          failedAt = Date.now(); // the keys last fetched stay good while jose's cache age lasts
        }
      }
      return await set(header, token);
    } catch (err) {
      throw isFetchFailure(err) ? unavailable(err) : err;
    }
  };
  return { issuer: cfg.issuer, audience: cfg.audience, algorithms: [...cfg.algorithms], clockToleranceS: cfg.clock_tolerance_s, maxLifetimeS: cfg.max_token_lifetime_s, subjectClaim: cfg.subject_claim, allowedAzp: cfg.allowed_azp ?? audiences(cfg.audience), keys };
}

const audiences = (audience: string | string[]): string[] => (Array.isArray(audience) ? audience : [audience]);

type RemoteKeySet = ReturnType<typeof createRemoteJWKSet>;

/**
 * Whether a key lookup failed for want of the key set rather than because of the token: a
 * timeout, a network or discovery error, or jose's plain `JOSEError` for a non-200 answer or a
 * body that is not JSON (its subclasses, such as no matching key, are the token's).
 */
function isFetchFailure(err: unknown): boolean {
  if (err instanceof joseErrors.JWKSTimeout || err instanceof joseErrors.JWKSInvalid) return true;
  if (err instanceof joseErrors.JOSEError) return err.constructor === joseErrors.JOSEError;
  return true;
}

/** An issuer with keys in hand (the dev issuer). Its tokens may live up to `maxLifetimeS` (a day by default). */
export function localIssuer(issuer: string, audience: string, publicJwks: JWK[], algorithms: string[], maxLifetimeS = 86_400): TrustedIssuer {
  return { issuer, audience, algorithms, clockToleranceS: 30, maxLifetimeS, subjectClaim: 'sub', allowedAzp: [audience], keys: createLocalJWKSet({ keys: publicJwks }) };
}

async function discoverJwksUri(issuer: string): Promise<string> {
  const url = `${issuer.replace(/\/$/, '')}/.well-known/openid-configuration`;
  const res = await fetch(url, { signal: AbortSignal.timeout(5000) });
  if (!res.ok) throw new Error(`OpenID discovery at ${url} answered ${res.status}`);
  const doc = (await res.json()) as { jwks_uri?: unknown };
  if (typeof doc.jwks_uri !== 'string') throw new Error(`OpenID discovery at ${url} has no jwks_uri`);
  return doc.jwks_uri;
}

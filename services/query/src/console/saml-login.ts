import { readFileSync } from 'node:fs';
import { inflateRawSync } from 'node:zlib';
import { SAML, ValidateInResponseTo, type CacheItem, type CacheProvider, type Profile } from '@node-saml/node-saml';
import type { ConsoleConfig } from '../../../../core/src/config.js';
import { AgateError, ErrorCode } from '../../../../core/src/errors.js';
import type { Identity } from '../../../../schemas/src/events.js';

export type SamlConfig = NonNullable<ConsoleConfig['saml']>;

/** How long an AuthnRequest may wait for its response (the IdP's login form sits in between). */
const REQUEST_TTL_MS = 10 * 60_000;
/** An assertion id is remembered at least this long, and until its NotOnOrAfter if later. */
const MIN_REMEMBER_MS = 10 * 60_000;
const MAX_REMEMBERED = 100_000;
/** Outstanding AuthnRequests kept at most; past it the oldest is forgotten (its answer is then refused). */
const MAX_REQUESTS = 10_000;
const PERSISTENT = 'urn:oasis:names:tc:SAML:2.0:nameid-format:persistent';

/** A verified SAML sign-in: who, and which of our requests it answers. */
export interface SamlSignIn {
  identity: Identity;
  inResponseTo: string;
}

/**
 * SAML 2.0 sign-in through `@node-saml/node-saml`: SP-initiated, the AuthnRequest by
 * HTTP-Redirect, the response by HTTP-POST to /ui/saml/acs. A response is accepted only when its
 * assertion is signed by a configured IdP certificate, comes from `idp_entity_id`, names
 * `sp_entity_id` as audience, is within its validity window, and answers (InResponseTo, once) a
 * request this service made in the last ten minutes; an assertion id seen before is refused.
 */
export class SamlLogin {
  readonly #saml: SAML;
  readonly #seen = new Map<string, number>();

  readonly #cfg: SamlConfig;
  readonly #now: () => number;

  constructor(cfg: SamlConfig, now: () => number = Date.now) {
    this.#cfg = cfg;
    this.#now = now;
    this.#saml = new SAML({
      entryPoint: cfg.idp_sso_url,
      issuer: cfg.sp_entity_id,
      audience: cfg.sp_entity_id,
      callbackUrl: cfg.acs_url,
      // Read at every check, so a rotated IdP certificate is picked up without a restart.
      idpCert: (done) => {
        try {
          done(null, pemCertificates(cfg.idp_cert_file));
        } catch (err) {
          done(err as Error);
        }
      },
      idpIssuer: cfg.idp_entity_id,
      wantAssertionsSigned: true,
      // The assertion's own signature is what binds identity to IdP; many IdPs sign only it.
      wantAuthnResponseSigned: false,
      validateInResponseTo: ValidateInResponseTo.always,
      requestIdExpirationPeriodMs: REQUEST_TTL_MS,
      cacheProvider: new OutstandingRequests(now),
      acceptedClockSkewMs: cfg.clock_skew_s * 1000,
      identifierFormat: PERSISTENT,
      // Leave the authentication method to the IdP (it may use MFA, passkeys, ...).
      disableRequestedAuthnContext: true,
    });
  }

  /** The IdP URL to send the browser to, and the id of the AuthnRequest it carries. */
  async begin(): Promise<{ url: URL; requestId: string }> {
    const url = new URL(await this.#saml.getAuthorizeUrlAsync('', undefined, {}));
    return { url, requestId: requestIdOf(url) };
  }

  /** Checks the base64 `SAMLResponse` the browser posted and returns who signed in. */
  async finish(samlResponse: string): Promise<SamlSignIn> {
    let profile: Profile | null;
    try {
      ({ profile } = await this.#saml.validatePostResponseAsync({ SAMLResponse: samlResponse }));
    } catch (cause) {
      // Our own certificate file unreadable is a server fault (logged, 500), not the IdP's.
      if (cause instanceof AgateError && (cause.code === ErrorCode.CONFIG_UNREADABLE || cause.code === ErrorCode.CONFIG_INVALID)) throw cause;
      throw new AgateError(ErrorCode.CONSOLE_SIGN_IN_FAILED, `the identity provider's SAML response was refused: ${(cause as Error).message}`, { cause });
    }
    if (profile === null || typeof profile.nameID !== 'string' || profile.nameID === '') throw refused('it names no subject (NameID)');
    // node-saml checks the Issuer of logout messages only; a sign-in must come from the configured IdP too.
    if (profile.issuer !== this.#cfg.idp_entity_id) throw refused(`its issuer ${String(profile.issuer)} is not ${this.#cfg.idp_entity_id}`);
    if (typeof profile.inResponseTo !== 'string') throw refused('it answers no request of ours (InResponseTo)');
    this.#remember(assertionOf(profile));
    return { identity: { issuer: profile.issuer, subject: profile.nameID, claims: claimsOf(profile) }, inResponseTo: profile.inResponseTo };
  }

  /** This service provider's metadata, for registering it at the IdP. */
  metadata(): string {
    return this.#saml.generateServiceProviderMetadata(null, null);
  }

  /** A replayed assertion (same ID, e.g. wrapped in a fresh response) is refused while it could still be valid. */
  #remember({ id, notOnOrAfter }: { id: string; notOnOrAfter: number }): void {
    const now = this.#now();
    for (const [k, until] of this.#seen) {
      if (until > now && this.#seen.size < MAX_REMEMBERED) break;
      this.#seen.delete(k);
    }
    if (this.#seen.has(id)) throw refused(`its assertion ${id} was already used`);
    this.#seen.set(id, Math.max(now + MIN_REMEMBER_MS, notOnOrAfter + this.#cfg.clock_skew_s * 1000));
  }
}

/**
 * The AuthnRequest ids awaiting an answer, bounded (anyone may start a sign-in, so a flood must
 * not grow memory) and expiring after REQUEST_TTL_MS. node-saml removes an id once answered.
 */
class OutstandingRequests implements CacheProvider {
  readonly #items = new Map<string, CacheItem>();

  readonly #now: () => number;

  constructor(now: () => number) {
    this.#now = now;
  }

  async saveAsync(key: string, value: string): Promise<CacheItem | null> {
    if (this.#items.has(key)) return null;
    for (const [k, item] of this.#items) {
      if (item.createdAt + REQUEST_TTL_MS > this.#now() && this.#items.size < MAX_REQUESTS) break;
      this.#items.delete(k);
    }
    const item = { createdAt: this.#now(), value };
    this.#items.set(key, item);
    return item;
  }

  async getAsync(key: string): Promise<string | null> {
    const item = this.#items.get(key);
    return item !== undefined && item.createdAt + REQUEST_TTL_MS > this.#now() ? item.value : null;
  }

  async removeAsync(key: string | null): Promise<string | null> {
    if (key === null) return null;
    const item = this.#items.get(key);
    this.#items.delete(key);
    return item?.value ?? null;
  }
}

function refused(why: string): AgateError {
  return new AgateError(ErrorCode.CONSOLE_SIGN_IN_FAILED, `the identity provider's SAML response was refused: ${why}`);
}

/** The signed assertion's ID and its latest NotOnOrAfter (Conditions), in ms. */
function assertionOf(profile: Profile): { id: string; notOnOrAfter: number } {
  const assertion = (profile.getAssertion?.() as { Assertion?: { $?: { ID?: string }; Conditions?: { $?: { NotOnOrAfter?: string } }[] } } | undefined)?.Assertion;
  const id = assertion?.$?.ID;
  if (id === undefined || id === '') throw refused('its assertion has no ID');
  const until = Date.parse(assertion?.Conditions?.[0]?.$?.NotOnOrAfter ?? '');
  return { id, notOnOrAfter: Number.isNaN(until) ? 0 : until };
}

type XmlNode = string | { _?: string; $?: Record<string, string> };
interface ParsedAssertion { Assertion?: { AttributeStatement?: { Attribute?: { $?: { Name?: string }; AttributeValue?: XmlNode[] }[] }[] } }

/**
 * Attributes as claims: one value as itself, several as a JSON list (roles.ts reads both). Read
 * from the signed assertion rather than `profile.attributes`, which keeps only the last of several
 * Attribute elements sharing a Name (how some IdPs, Keycloak among them, send one group each).
 */
function claimsOf(profile: Profile): Record<string, string> {
  const values = new Map<string, string[]>();
  for (const statement of (profile.getAssertion?.() as ParsedAssertion | undefined)?.Assertion?.AttributeStatement ?? []) {
    for (const attribute of statement.Attribute ?? []) {
      const name = attribute.$?.Name;
      if (name === undefined) continue;
      const list = values.get(name) ?? [];
      for (const v of attribute.AttributeValue ?? []) {
        const text = typeof v === 'string' ? v : v._;
        if (typeof text === 'string') list.push(text);
      }
      values.set(name, list);
    }
  }
  const claims: Record<string, string> = {};
  for (const [name, list] of values) if (list.length > 0) claims[name] = list.length === 1 ? list[0]! : JSON.stringify(list);
  if (profile.nameIDFormat !== undefined) claims.name_id_format = profile.nameIDFormat;
  if (profile.sessionIndex !== undefined) claims.session_index = profile.sessionIndex;
  return claims;
}

/** The ID of the deflated AuthnRequest in an HTTP-Redirect URL (SAML bindings §3.4.4.1). */
function requestIdOf(url: URL): string {
  const encoded = url.searchParams.get('SAMLRequest');
  const xml = encoded === null ? '' : inflateRawSync(Buffer.from(encoded, 'base64')).toString('utf8');
  const id = /<(?:\w+:)?AuthnRequest\b[^>]*\sID="([^"]+)"/.exec(xml)?.[1];
  if (id === undefined) throw new AgateError(ErrorCode.CONSOLE_SIGN_IN_FAILED, 'the SAML AuthnRequest built has no ID');
  return id;
}

function pemCertificates(file: string): string[] {
  let text: string;
  try {
    text = readFileSync(file, 'utf8');
  } catch (cause) {
    throw new AgateError(ErrorCode.CONFIG_UNREADABLE, `console.saml.idp_cert_file: cannot read ${file}: ${(cause as Error).message}`, { cause });
  }
  const certs = text.match(/-----BEGIN CERTIFICATE-----[\s\S]+?-----END CERTIFICATE-----/g) ?? [];
  if (certs.length === 0) throw new AgateError(ErrorCode.CONFIG_INVALID, `console.saml.idp_cert_file: ${file} holds no PEM CERTIFICATE`);
  return certs;
}

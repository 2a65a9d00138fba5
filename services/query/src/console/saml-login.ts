import { readFileSync } from 'node:fs';
import { inflateRawSync } from 'node:zlib';
import { DOMParser } from '@xmldom/xmldom';
import { SAML, ValidateInResponseTo, type CacheItem, type CacheProvider, type Profile } from '@node-saml/node-saml';
import { readSecret, type ConsoleConfig } from '../../../../core/src/config.js';
import { AgateError, ErrorCode } from '../../../../core/src/errors.js';
import { silentLogger, type Logger } from '../../../../core/src/log.js';
import type { Identity } from '../../../../schemas/src/events.js';
import { SamlIdp } from './saml-idp.js';

export type SamlConfig = NonNullable<ConsoleConfig['saml']>;

/** How long an AuthnRequest (or LogoutRequest) may wait for its response (the IdP's form sits in between). */
const REQUEST_TTL_MS = 10 * 60_000;
/** An assertion id is remembered at least this long, and until its NotOnOrAfter if later. */
const MIN_REMEMBER_MS = 10 * 60_000;
const MAX_REMEMBERED = 100_000;
/** Outstanding requests kept at most; past it the oldest is forgotten (its answer is then refused). */
const MAX_REQUESTS = 10_000;
const PERSISTENT = 'urn:oasis:names:tc:SAML:2.0:nameid-format:persistent';

/** Who the IdP signed in, as a LogoutRequest must name them (SAML core §3.7.1). */
export interface SamlSubject {
  nameID: string;
  nameIDFormat?: string;
  nameQualifier?: string;
  spNameQualifier?: string;
  sessionIndex?: string;
}

/** A verified SAML sign-in: who, and which of our requests it answers. */
interface SamlSignIn {
  identity: Identity;
  subject: SamlSubject;
  inResponseTo: string;
}

/** A logout message the IdP sent to /ui/saml/slo, verified. */
type LogoutMessage =
  /** The IdP ends this person's sessions; `reply` (HTTP-Redirect only) carries our signed LogoutResponse back. */
  | { kind: 'request'; subject: SamlSubject; reply?: URL }
  /** The IdP confirms a logout we asked for. */
  | { kind: 'response' };

/**
 * SAML 2.0 sign-in and single logout through `@node-saml/node-saml`: SP-initiated sign-in, the
 * AuthnRequest by HTTP-Redirect, the response by HTTP-POST to /ui/saml/acs. A response is
 * accepted only when its assertion is signed by a trusted IdP certificate, comes from
 * `idp_entity_id`, names `sp_entity_id` as audience, is within its validity window, and answers
 * (InResponseTo, once) a request this service made in the last ten minutes; an assertion id seen
 * before is refused. With `slo_url`, logout messages go both ways at /ui/saml/slo, signed.
 */
export class SamlLogin {
  readonly #seen = new Map<string, number>();
  readonly #requests: OutstandingRequests;
  readonly #idp: SamlIdp;
  readonly #now: () => number;

  readonly #cfg: SamlConfig;

  constructor(cfg: SamlConfig, opts: { logger?: Logger; now?: () => number; fetch?: typeof fetch } = {}) {
    this.#cfg = cfg;
    this.#now = opts.now ?? Date.now;
    this.#requests = new OutstandingRequests(this.#now);
    this.#idp = new SamlIdp(cfg, opts.logger ?? silentLogger, opts.fetch);
  }

  /** Fetches the IdP metadata when configured by URL; a failure is a start error (CONSOLE_SAML_METADATA). */
  start(): Promise<void> {
    return this.#idp.start();
  }

  /** Fetches the IdP metadata again now (also done every `metadata_refresh_s`); a failure keeps the last good one. */
  refreshMetadata(): Promise<void> {
    return this.#idp.refresh();
  }

  close(): void {
    this.#idp.close();
  }

  /** Whether single logout is on: our SLO endpoint, a signing key and the IdP's SLO location are all known. */
  get singleLogout(): boolean {
    return this.#cfg.slo_url !== undefined && this.#idp.sloUrl !== undefined;
  }

  /** node-saml with the IdP as known now (metadata may have been refreshed); the outstanding requests live outside it. */
  #saml(): SAML {
    const signing = this.#cfg.sp_signing;
    const slo = this.#idp.sloUrl;
    return new SAML({
      entryPoint: this.#idp.ssoUrl,
      ...(slo === undefined ? {} : { logoutUrl: slo }),
      ...(this.#cfg.slo_url === undefined ? {} : { logoutCallbackUrl: this.#cfg.slo_url }),
      issuer: this.#cfg.sp_entity_id,
      audience: this.#cfg.sp_entity_id,
      callbackUrl: this.#cfg.acs_url,
      // Read at every check, so a rotated pinned certificate or refreshed metadata is used without a restart.
      idpCert: (done) => {
        try {
          done(null, this.#idp.certs());
        } catch (err) {
          done(err as Error);
        }
      },
      idpIssuer: this.#cfg.idp_entity_id,
      ...(signing === undefined ? {} : { privateKey: readSecret(signing.key, 'console.saml.sp_signing.key'), signatureAlgorithm: 'sha256' as const }),
      wantAssertionsSigned: true,
      // The assertion's own signature is what binds identity to IdP; many IdPs sign only it.
      wantAuthnResponseSigned: false,
      validateInResponseTo: ValidateInResponseTo.always,
      requestIdExpirationPeriodMs: REQUEST_TTL_MS,
      cacheProvider: this.#requests,
      acceptedClockSkewMs: this.#cfg.clock_skew_s * 1000,
      identifierFormat: PERSISTENT,
      // Leave the authentication method to the IdP (it may use MFA, passkeys, ...).
      disableRequestedAuthnContext: true,
    });
  }

  /** The IdP URL to send the browser to, and the id of the AuthnRequest it carries. */
  async begin(): Promise<{ url: URL; requestId: string }> {
    const url = new URL(await this.#saml().getAuthorizeUrlAsync('', undefined, {}));
    return { url, requestId: rootAttribute(url, 'SAMLRequest', 'AuthnRequest', 'ID') };
  }

  /** Checks the base64 `SAMLResponse` the browser posted and returns who signed in. */
  async finish(samlResponse: string): Promise<SamlSignIn> {
    let profile: Profile | null;
    try {
      ({ profile } = await this.#saml().validatePostResponseAsync({ SAMLResponse: samlResponse }));
    } catch (cause) {
      // Our own certificate file unreadable, or no metadata, is a server fault (logged, 500), not the IdP's.
      if (cause instanceof AgateError) throw cause;
      throw new AgateError(ErrorCode.CONSOLE_SIGN_IN_FAILED, `the identity provider's SAML response was refused: ${(cause as Error).message}`, { cause });
    }
    if (profile === null || typeof profile.nameID !== 'string' || profile.nameID === '') throw refused('it names no subject (NameID)');
    // node-saml checks the Issuer of logout messages only; a sign-in must come from the configured IdP too.
    if (profile.issuer !== this.#cfg.idp_entity_id) throw refused(`its issuer ${String(profile.issuer)} is not ${this.#cfg.idp_entity_id}`);
    if (typeof profile.inResponseTo !== 'string') throw refused('it answers no request of ours (InResponseTo)');
    const assertion = assertionOf(profile);
    this.#remember(`assertion ${assertion.id}`, assertion.notOnOrAfter, () => refused(`its assertion ${assertion.id} was already used`));
    return { identity: { issuer: profile.issuer, subject: profile.nameID, claims: claimsOf(profile) }, subject: subjectOf(profile), inResponseTo: profile.inResponseTo };
  }

  /**
   * SP-initiated single logout: the IdP URL carrying our signed LogoutRequest (HTTP-Redirect) for
   * `subject`, its id remembered for the LogoutResponse. Undefined when single logout is off.
   */
  async logoutUrl(subject: SamlSubject): Promise<URL | undefined> {
    if (!this.singleLogout) return undefined;
    const user = { issuer: this.#cfg.idp_entity_id, ...subject } as Profile;
    return new URL(await this.#saml().getLogoutUrlAsync(user, '', {}));
  }

  /**
   * A LogoutRequest or LogoutResponse the browser brings by HTTP-Redirect. Accepted only when it
   * is signed (a Signature over the query by a trusted IdP key: node-saml alone would take an
   * unsigned one), comes from `idp_entity_id` and, for a response, reports success for a
   * LogoutRequest of ours, once. A request gets our signed LogoutResponse as `reply`.
   */
  async acceptRedirect(url: URL): Promise<LogoutMessage> {
    if (!this.singleLogout) throw new AgateError(ErrorCode.API_NOT_FOUND, 'SAML single logout is not configured (console.saml.slo_url)');
    const q = url.searchParams;
    const isResponse = q.has('SAMLResponse');
    if (q.has('SAMLRequest') === isResponse) throw logoutRefused('expected exactly one of SAMLRequest and SAMLResponse');
    if (!q.has('Signature') || !q.has('SigAlg')) throw logoutRefused('it is not signed (HTTP-Redirect Signature and SigAlg)');
    const saml = this.#saml();
    let profile: Profile | null;
    try {
      ({ profile } = await saml.validateRedirectAsync(Object.fromEntries(q), url.search.slice(1)));
    } catch (cause) {
      if (cause instanceof AgateError) throw cause;
      throw logoutRefused((cause as Error).message, cause);
    }
    if (isResponse) {
      // node-saml checks InResponseTo only when present; ours must answer a request we made, once.
      const answered = rootAttribute(url, 'SAMLResponse', 'LogoutResponse', 'InResponseTo');
      if ((await this.#requests.removeAsync(answered)) === null) throw logoutRefused(`it answers no logout request of ours (${answered})`);
      return { kind: 'response' };
    }
    const subject = logoutSubject(profile);
    this.#takeLogoutRequestOnce(inflateRawSync(Buffer.from(q.get('SAMLRequest')!, 'base64')).toString('utf8'));
    return { kind: 'request', subject, reply: new URL(await saml.getLogoutResponseUrlAsync(profile!, q.get('RelayState') ?? '', {}, true)) };
  }

  /**
   * A LogoutRequest by HTTP-POST (the IdP's back channel, server to server): accepted only with a
   * valid enveloped signature by a trusted IdP key and the configured issuer.
   */
  async acceptPost(samlRequest: string): Promise<LogoutMessage> {
    if (!this.singleLogout) throw new AgateError(ErrorCode.API_NOT_FOUND, 'SAML single logout is not configured (console.saml.slo_url)');
    let profile: Profile;
    try {
      ({ profile } = await this.#saml().validatePostRequestAsync({ SAMLRequest: samlRequest }));
    } catch (cause) {
      if (cause instanceof AgateError) throw cause;
      throw logoutRefused((cause as Error).message, cause);
    }
    if (profile.issuer !== this.#cfg.idp_entity_id) throw logoutRefused(`its issuer ${String(profile.issuer)} is not ${this.#cfg.idp_entity_id}`);
    const subject = logoutSubject(profile);
    this.#takeLogoutRequestOnce(Buffer.from(samlRequest, 'base64').toString('utf8'));
    return { kind: 'request', subject };
  }

  /** This service provider's metadata, for registering it at the IdP. */
  metadata(): string {
    const cert = this.#cfg.sp_signing === undefined ? null : readFileSync(this.#cfg.sp_signing.cert_file, 'utf8');
    return this.#saml().generateServiceProviderMetadata(null, cert);
  }

  /**
   * A verified LogoutRequest is taken once, and only within REQUEST_TTL_MS (plus clock skew) of its
   * IssueInstant: IdPs seldom give one a NotOnOrAfter, so a captured, validly signed request would
   * otherwise sign the person out again each time it is replayed.
   */
  #takeLogoutRequestOnce(xml: string): void {
    const root = new DOMParser().parseFromString(xml, 'text/xml').documentElement;
    const id = root?.getAttribute('ID') ?? '';
    const issued = Date.parse(root?.getAttribute('IssueInstant') ?? '');
    if (id === '' || Number.isNaN(issued)) throw logoutRefused('the LogoutRequest has no ID or IssueInstant');
    const now = this.#now();
    const skew = this.#cfg.clock_skew_s * 1000;
    if (issued > now + skew) throw logoutRefused(`it was issued in the future (${new Date(issued).toISOString()})`);
    if (issued + REQUEST_TTL_MS + skew < now) throw logoutRefused(`it was issued ${Math.round((now - issued) / 1000)} s ago; at most ${REQUEST_TTL_MS / 1000} s are accepted`);
    this.#remember(`logout ${id}`, issued + REQUEST_TTL_MS + skew, () => logoutRefused(`its LogoutRequest ${id} was already used`));
  }

  /** A replayed assertion or LogoutRequest (same ID, e.g. wrapped in a fresh response) is refused while it could still be valid. */
  #remember(key: string, notOnOrAfter: number, replayed: () => AgateError): void {
    const now = this.#now();
    for (const [k, until] of this.#seen) {
      if (until > now && this.#seen.size < MAX_REMEMBERED) break;
      this.#seen.delete(k);
    }
    if (this.#seen.has(key)) throw replayed();
    this.#seen.set(key, Math.max(now + MIN_REMEMBER_MS, notOnOrAfter + this.#cfg.clock_skew_s * 1000));
  }
}


/**
 * The AuthnRequest and LogoutRequest ids awaiting an answer, bounded (anyone may start a sign-in,
 * so a flood must not grow memory) and expiring after REQUEST_TTL_MS. node-saml removes an
 * AuthnRequest id once answered; SamlLogin removes a LogoutRequest id.
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

function logoutRefused(why: string, cause?: unknown): AgateError {
  return new AgateError(ErrorCode.CONSOLE_LOGOUT_REFUSED, `the SAML logout message was refused: ${why}`, { cause });
}

/** What a later LogoutRequest of ours must say about this person. */
function subjectOf(p: Profile): SamlSubject {
  const s: SamlSubject = { nameID: p.nameID };
  if (p.nameIDFormat !== undefined) s.nameIDFormat = p.nameIDFormat;
  if (p.nameQualifier !== undefined) s.nameQualifier = p.nameQualifier;
  if (p.spNameQualifier !== undefined) s.spNameQualifier = p.spNameQualifier;
  if (p.sessionIndex !== undefined) s.sessionIndex = p.sessionIndex;
  return s;
}

function logoutSubject(p: Profile | null): SamlSubject {
  if (p === null || typeof p.nameID !== 'string' || p.nameID === '') throw logoutRefused('it names no subject (NameID)');
  return subjectOf(p);
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

/**
 * An attribute of the root element of a deflated message in an HTTP-Redirect URL (SAML bindings
 * §3.4.4.1): the ID of our AuthnRequest, or the InResponseTo of a LogoutResponse.
 */
function rootAttribute(url: URL, param: 'SAMLRequest' | 'SAMLResponse', element: string, attribute: string): string {
  const encoded = url.searchParams.get(param);
  const xml = encoded === null ? '' : inflateRawSync(Buffer.from(encoded, 'base64')).toString('utf8');
  const value = new RegExp(`<(?:\\w+:)?${element}\\b[^>]*\\s${attribute}="([^"]+)"`).exec(xml)?.[1];
  if (value === undefined) throw new AgateError(element === 'AuthnRequest' ? ErrorCode.CONSOLE_SIGN_IN_FAILED : ErrorCode.CONSOLE_LOGOUT_REFUSED, `the SAML ${element} has no ${attribute}`);
  return value;
}

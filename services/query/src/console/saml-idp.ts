import { readFileSync } from 'node:fs';
import { DOMParser } from '@xmldom/xmldom';
import { AgateError, ErrorCode } from '../../../../core/src/errors.js';
import type { Logger } from '../../../../core/src/log.js';
import type { SamlConfig } from './saml-login.js';

const MD = 'urn:oasis:names:tc:SAML:2.0:metadata';
const DS = 'http://www.w3.org/2000/09/xmldsig#';
const REDIRECT = 'urn:oasis:names:tc:SAML:2.0:bindings:HTTP-Redirect';
/** IdP metadata is a few KiB; a far larger answer is refused before parsing. */
const MAX_METADATA_BYTES = 1024 * 1024;
const FETCH_TIMEOUT_MS = 10_000;

/** What the console needs to know of the IdP: where to send people, and whose signatures to trust. */
interface IdpDescription {
  entityId: string;
  ssoUrl?: string;
  sloUrl?: string;
  /** PEM certificates of the IdP's signing keys. */
  certs: string[];
}

/**
 * The IdP's SAML metadata (an EntityDescriptor, or an EntitiesDescriptor holding it) for
 * `entityId`: its IDPSSODescriptor's HTTP-Redirect SSO and SLO locations and its signing
 * certificates (KeyDescriptors with `use="signing"` or no `use`). Anything missing or malformed
 * is an Error naming what.
 */
function parseIdpMetadata(xml: string, entityId: string): IdpDescription {
  const problems: string[] = [];
  const doc = new DOMParser({ errorHandler: (level: string, message: unknown) => void (level !== 'warning' && problems.push(String(message))) }).parseFromString(xml, 'text/xml');
  if (problems.length > 0 || doc.documentElement === null) throw new Error(`it is not well-formed XML: ${problems[0] ?? 'no document element'}`);
  const entity = elements(doc.documentElement, MD, 'EntityDescriptor', true).find((e) => e.getAttribute('entityID') === entityId);
  if (entity === undefined) throw new Error(`it describes no EntityDescriptor with entityID ${entityId}`);
  const idp = elements(entity, MD, 'IDPSSODescriptor')[0];
  if (idp === undefined) throw new Error('its EntityDescriptor has no IDPSSODescriptor');
  const certs: string[] = [];
  for (const key of elements(idp, MD, 'KeyDescriptor')) {
    const use = key.getAttribute('use');
    if (use !== null && use !== '' && use !== 'signing') continue;
    for (const c of elements(key, DS, 'X509Certificate', true)) certs.push(pem(c.textContent ?? ''));
  }
  if (certs.length === 0) throw new Error('its IDPSSODescriptor has no signing certificate (KeyDescriptor/X509Certificate)');
  const location = (name: string) => elements(idp, MD, name).find((e) => e.getAttribute('Binding') === REDIRECT)?.getAttribute('Location') ?? undefined;
  return { entityId, ssoUrl: location('SingleSignOnService'), sloUrl: location('SingleLogoutService'), certs };
}

/**
 * The IdP as configured: endpoints and certificates from `idp_metadata_url` (fetched by
 * `start()`, whose failure is a start error, then every `metadata_refresh_s`, a failed refresh
 * keeping the last good metadata and logging why), overridden by `idp_sso_url`, `idp_slo_url`
 * and a pinned `idp_cert_file` when those are set.
 */
export class SamlIdp {
  #metadata: IdpDescription | undefined;
  #timer: NodeJS.Timeout | undefined;

  constructor(private readonly cfg: SamlConfig, private readonly logger: Logger, private readonly fetchFn: typeof fetch = fetch) {}

  async start(): Promise<void> {
    const url = this.cfg.idp_metadata_url;
    if (url === undefined) return;
    try {
      this.#metadata = await this.#fetch(url);
    } catch (cause) {
      throw new AgateError(ErrorCode.CONSOLE_SAML_METADATA, `console.saml.idp_metadata_url: the IdP metadata at ${url} cannot be used: ${(cause as Error).message}`, { cause });
    }
    this.#timer = setInterval(() => void this.refresh(), this.cfg.metadata_refresh_s * 1000);
    this.#timer.unref();
  }

  /** Fetches the metadata again; on failure the last good one stays in use. */
  async refresh(): Promise<void> {
    const url = this.cfg.idp_metadata_url;
    if (url === undefined) return;
    try {
      this.#metadata = await this.#fetch(url);
    } catch (err) {
      this.logger.warn('SAML IdP metadata refresh failed; the last good metadata stays in use', { url, error: (err as Error).message });
    }
  }

  close(): void {
    clearInterval(this.#timer);
  }

  get ssoUrl(): string {
    const url = this.cfg.idp_sso_url ?? this.#started().ssoUrl;
    if (url === undefined) throw new AgateError(ErrorCode.CONFIG_INVALID, 'console.saml: the IdP metadata names no HTTP-Redirect SingleSignOnService; set idp_sso_url');
    return url;
  }

  /** Where LogoutRequests and LogoutResponses go; undefined when neither config nor metadata names it. */
  get sloUrl(): string | undefined {
    return this.cfg.idp_slo_url ?? (this.cfg.idp_metadata_url === undefined ? undefined : this.#started().sloUrl);
  }

  /** The certificates whose signatures are trusted: the pinned file's (read now), else the metadata's. */
  certs(): string[] {
    return this.cfg.idp_cert_file !== undefined ? pemCertificates(this.cfg.idp_cert_file) : this.#started().certs;
  }

  #started(): IdpDescription {
    if (this.#metadata === undefined) throw new AgateError(ErrorCode.CONSOLE_SAML_METADATA, 'console.saml: the IdP metadata has not been fetched (the console is not started)');
    return this.#metadata;
  }

  async #fetch(url: string): Promise<IdpDescription> {
    const res = await this.fetchFn(url, { signal: AbortSignal.timeout(FETCH_TIMEOUT_MS), redirect: 'error', headers: { accept: 'application/samlmetadata+xml, application/xml, text/xml' } });
    if (!res.ok) throw new Error(`HTTP ${res.status}`);
    const length = Number(res.headers.get('content-length') ?? 0);
    if (length > MAX_METADATA_BYTES) throw new Error(`it is ${length} bytes, more than ${MAX_METADATA_BYTES}`);
    const body = Buffer.from(await res.arrayBuffer());
    if (body.length > MAX_METADATA_BYTES) throw new Error(`it is ${body.length} bytes, more than ${MAX_METADATA_BYTES}`);
    return parseIdpMetadata(body.toString('utf8'), this.cfg.idp_entity_id);
  }
}

/** The CERTIFICATE blocks of a PEM file; none, or an unreadable file, is a config error naming the key. */
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

/** Child elements (or, `deep`, descendants and the element itself) with this namespace and local name. */
function elements(parent: Element, ns: string, name: string, deep = false): Element[] {
  if (deep) {
    const all = Array.from(parent.getElementsByTagNameNS(ns, name));
    return parent.namespaceURI === ns && parent.localName === name ? [parent, ...all] : all;
  }
  return (Array.from(parent.childNodes) as Node[]).filter((n): n is Element => n.nodeType === 1 && (n as Element).namespaceURI === ns && (n as Element).localName === name);
}

function pem(base64: string): string {
  const body = base64.replace(/\s+/g, '');
  if (!/^[A-Za-z0-9+/]+={0,2}$/.test(body)) throw new Error('an X509Certificate is not base64');
  return `-----BEGIN CERTIFICATE-----\n${body.replace(/(.{64})/g, '$1\n').replace(/\n$/, '')}\n-----END CERTIFICATE-----`;
}

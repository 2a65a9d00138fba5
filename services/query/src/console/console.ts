import type { IncomingMessage, ServerResponse } from 'node:http';
import type { Bus } from '../../../../core/src/bus/bus.js';
import type { ConsoleConfig } from '../../../../core/src/config.js';
import { AgateError, ErrorCode, describeError } from '../../../../core/src/errors.js';
import type { Logger } from '../../../../core/src/log.js';
import type { Store } from '../../../../core/src/store/store.js';
import type { ApprovalRequested, Identity } from '../../../../schemas/src/events.js';
import { allows, roleResolver, type Role } from '../roles.js';
import { readBody } from '../router.js';
import { ApprovalsFeed } from './approvals-feed.js';
import { loadAssets, REPLAY_CONTENT_SECURITY_POLICY, securityHeaders, type Asset } from './assets.js';
import { FLOW_COOKIE, SESSION_COOKIE, parseCookies, serializeCookie } from './cookies.js';
import { OidcLogin } from './oidc-login.js';
import { SamlLogin, type SamlSubject } from './saml-login.js';
import { csrfMatches, SessionStore, type ConsoleSession } from './session-store.js';

/** Runs one query API route (`/v1/...`) for an already signed-in person; QueryApi provides it. */
type ServeRoute = (req: IncomingMessage, res: ServerResponse, path: string, query: URLSearchParams, who: { identity: Identity; roles: ReadonlySet<Role> }, body?: Buffer) => Promise<void>;

interface ConsoleOptions {
  config: ConsoleConfig;
  store: Store;
  logger: Logger;
  /** Where new holds are seen first (the ledger lingers before storing); without it the store alone feeds the inbox. */
  bus?: Bus;
  /** Served over TLS (or behind a TLS terminator, by an https redirect URL): cookies get Secure. */
  secure: boolean;
  serveRoute: ServeRoute;
}

const ANSWER_PATH = /^\/v1\/approvals\/[^/]+\/(approve|deny)$/;
const MAX_ANSWER_BODY = 16 * 1024;
/** A SAML response with a few certificates and attributes is a few KiB; refuse anything far larger. */
const MAX_SAML_BODY = 256 * 1024;
const HEARTBEAT_MS = 15_000;

/**
 * The web console under /ui/: static assets, OIDC and SAML sign-in, and the query API behind a session
 * cookie (`/ui/api/v1/...` runs the same routes, permissions and approval rules as `/v1/...`).
 * A bearer token is never looked at here: an agent's token cannot open the console, and the
 * console's cookie does not open `/v1/`.
 */
export class Console {
  readonly #assets: Map<string, Asset>;
  readonly #sessions: SessionStore;
  readonly #login: OidcLogin | undefined;
  readonly #saml: SamlLogin | undefined;
  readonly #roles: (identity: Identity) => Set<Role>;
  readonly #feed: ApprovalsFeed;
  readonly #headers: Record<string, string>;
  /** The inbox streams open per session id, ended with the session. */
  readonly #streams = new Map<string, Set<ServerResponse>>();

  readonly #options: ConsoleOptions;

  constructor(options: ConsoleOptions) {
    this.#options = options;
    this.#assets = loadAssets();
    this.#sessions = new SessionStore(options.config.session_ttl_s * 1000);
    this.#login = options.config.oidc === undefined ? undefined : new OidcLogin(options.config.oidc);
    this.#saml = options.config.saml === undefined ? undefined : new SamlLogin(options.config.saml, { logger: options.logger });
    this.#roles = roleResolver(options.config.roles);
    this.#feed = new ApprovalsFeed(options.store, options.logger, options.bus);
    this.#headers = securityHeaders(options.secure);
  }

  /** A hold the inbox has shown from the bus before the ledger stored it (answers may arrive that early). */
  unstoredRequest(approvalId: string): ApprovalRequested | undefined {
    return this.#feed.unstoredRequest(approvalId);
  }

  /** Starts the inbox feed, and fetches the SAML IdP's metadata when configured by URL (a failure stops the start). */
  async start(): Promise<void> {
    await this.#saml?.start();
    await this.#feed.start();
  }

  close(): Promise<void> {
    this.#saml?.close();
    return this.#feed.close();
  }

  async handle(req: IncomingMessage, res: ServerResponse, url: URL): Promise<void> {
    for (const [k, v] of Object.entries(this.#headers)) res.setHeader(k, v);
    const path = url.pathname;
    const method = req.method ?? 'GET';
    try {
      if (method === 'GET' && (path === '/ui' || path === '/ui/' || path === '/ui/index.html')) return this.#asset(res, path === '/ui' ? undefined : 'index.html');
      if (method === 'GET' && path.startsWith('/ui/assets/')) return this.#asset(res, path.slice('/ui/assets/'.length));
      if (method === 'GET' && path === '/ui/replay') {
        // The asciicast player's WebAssembly terminal needs 'wasm-unsafe-eval'; this page alone gets it.
        res.setHeader('content-security-policy', REPLAY_CONTENT_SECURITY_POLICY);
        return this.#asset(res, 'replay.html');
      }
      if (method === 'GET' && path === '/ui/providers') return json(res, 200, { oidc: this.#login !== undefined, saml: this.#saml !== undefined });
      if (method === 'GET' && path === '/ui/login') return await this.#begin(res);
      if (method === 'GET' && path === '/ui/callback') return await this.#callback(req, res, url);
      if (method === 'GET' && path === '/ui/login/saml') return await this.#samlBegin(res);
      if (method === 'POST' && path === '/ui/saml/acs') return await this.#samlAcs(req, res);
      if (method === 'GET' && path === '/ui/saml/finish') return this.#samlFinish(req, res, url);
      if (method === 'GET' && path === '/ui/saml/metadata') return this.#samlMetadata(res);
      if (method === 'GET' && path === '/ui/saml/slo') return await this.#samlSloRedirect(res, url);
      if (method === 'POST' && path === '/ui/saml/slo') return await this.#samlSloPost(req, res);
      if (!path.startsWith('/ui/api/') && path !== '/ui/logout') throw new AgateError(ErrorCode.API_NOT_FOUND, `no console page ${path}`);
      const session = this.#session(req);
      if (method !== 'GET' && method !== 'HEAD') this.#checkCsrf(req, session);
      if (path === '/ui/logout' && method === 'POST') return await this.#signOut(res, session);
      if (path === '/ui/api/me' && method === 'GET') return json(res, 200, me(session));
      if (path === '/ui/api/approvals/stream' && method === 'GET') return this.#stream(req, res, session);
      if (path.startsWith('/ui/api/v1/')) return await this.#api(req, res, url, session);
      throw new AgateError(ErrorCode.API_NOT_FOUND, `no console route ${method} ${path}`);
    } catch (err) {
      this.#fail(res, path, err);
    }
  }

  #asset(res: ServerResponse, name: string | undefined): void {
    if (name === undefined) {
      res.writeHead(308, { location: '/ui/' });
      return void res.end();
    }
    const asset = this.#assets.get(name);
    if (asset === undefined) throw new AgateError(ErrorCode.API_NOT_FOUND, `no console asset ${name}`);
    res.writeHead(200, { 'content-type': asset.type, 'content-length': asset.body.length });
    res.end(asset.body);
  }

  async #begin(res: ServerResponse): Promise<void> {
    if (this.#login === undefined) throw new AgateError(ErrorCode.API_NOT_FOUND, 'OIDC sign-in is not configured (console.oidc)');
    let started;
    try {
      started = await this.#login.begin();
    } catch (cause) {
      throw new AgateError(ErrorCode.API_UNAVAILABLE, `the identity provider cannot be reached: ${(cause as Error).message}`, { cause });
    }
    this.#redirectWithFlow(res, this.#sessions.startFlow({ kind: 'oidc', oidc: started.flow }), started.url);
  }

  async #callback(req: IncomingMessage, res: ServerResponse, url: URL): Promise<void> {
    const flow = this.#takeFlow(req, res);
    if (this.#login === undefined || flow?.kind !== 'oidc') throw new AgateError(ErrorCode.CONSOLE_SIGN_IN_FAILED, 'this sign-in is unknown or expired; start again');
    const providerError = url.searchParams.get('error');
    if (providerError !== null) throw new AgateError(ErrorCode.CONSOLE_SIGN_IN_FAILED, `the identity provider refused the sign-in: ${providerError}`);
    this.#signedIn(res, await this.#login.finish(url, flow.oidc));
  }

  async #samlBegin(res: ServerResponse): Promise<void> {
    if (this.#saml === undefined) throw new AgateError(ErrorCode.API_NOT_FOUND, 'SAML sign-in is not configured (console.saml)');
    const { url, requestId } = await this.#saml.begin();
    this.#redirectWithFlow(res, this.#sessions.startFlow({ kind: 'saml', requestId }), url);
  }

  /**
   * The IdP's HTTP-POST binding: a form auto-submitted from the IdP's origin, so a cross-site POST
   * that carries none of our SameSite cookies (Lax cookies go only with cross-site top-level GETs).
   * The assertion is checked here (signature, issuer, audience, time, InResponseTo once), then
   * parked under a one-use ticket; this same-origin page sends the browser on to /ui/saml/finish,
   * a same-site navigation that does carry the flow cookie, so the sign-in completes only in the
   * browser that started it (an assertion for someone else, posted by a hostile page, signs no
   * one in). No session cookie is set on the cross-site response, and none needs SameSite=None.
   */
  async #samlAcs(req: IncomingMessage, res: ServerResponse): Promise<void> {
    if (this.#saml === undefined) throw new AgateError(ErrorCode.API_NOT_FOUND, 'SAML sign-in is not configured (console.saml)');
    const samlResponse = (await readForm(req)).get('SAMLResponse');
    if (samlResponse === null || samlResponse === '') throw new AgateError(ErrorCode.API_BAD_REQUEST, 'the form carries no SAMLResponse');
    const signIn = await this.#saml.finish(samlResponse);
    const ticket = this.#sessions.putTicket(signIn);
    const next = `/ui/saml/finish?ticket=${encodeURIComponent(ticket)}`;
    page(res, 200, 'Signing in', `<meta http-equiv="refresh" content="0;url=${escapeHtml(next)}">`, `<p>Signing in. <a href="${escapeHtml(next)}">Continue</a>.</p>`);
  }

  #samlFinish(req: IncomingMessage, res: ServerResponse, url: URL): void {
    const flow = this.#takeFlow(req, res);
    const ticket = this.#sessions.takeTicket(url.searchParams.get('ticket'));
    if (flow?.kind !== 'saml' || ticket === undefined) throw new AgateError(ErrorCode.CONSOLE_SIGN_IN_FAILED, 'this sign-in is unknown or expired; start again');
    if (ticket.inResponseTo !== flow.requestId) throw new AgateError(ErrorCode.CONSOLE_SIGN_IN_FAILED, 'this SAML response answers a sign-in started in another browser');
    this.#signedIn(res, ticket.identity, ticket.subject);
  }

  /**
   * Ends the console session at once (whatever the IdP does next), and for a SAML session with
   * single logout on, answers with the IdP URL carrying our signed LogoutRequest for the page to
   * go to; the IdP ends its own session and sends the browser back to /ui/saml/slo.
   */
  async #signOut(res: ServerResponse, session: ConsoleSession): Promise<void> {
    this.#sessions.delete(session.id);
    this.#endStreams(session.id);
    res.setHeader('set-cookie', serializeCookie(SESSION_COOKIE, '', { sameSite: 'Strict', secure: this.#options.secure, maxAge: 0 }));
    const redirect = session.saml === undefined ? undefined : await this.#saml?.logoutUrl(session.saml);
    return json(res, 200, { signed_out: true, ...(redirect === undefined ? {} : { redirect: redirect.href }) });
  }

  /**
   * HTTP-Redirect at /ui/saml/slo: the IdP's LogoutResponse to our sign-out (the session is
   * already gone; this confirms the IdP's is too), or the IdP's own LogoutRequest, which ends the
   * person's console sessions and is answered with our signed LogoutResponse.
   */
  async #samlSloRedirect(res: ServerResponse, url: URL): Promise<void> {
    if (this.#saml === undefined) throw new AgateError(ErrorCode.API_NOT_FOUND, 'SAML sign-in is not configured (console.saml)');
    const message = await this.#saml.acceptRedirect(url);
    if (message.kind === 'response') return page(res, 200, 'Signed out', '<meta http-equiv="refresh" content="0;url=/ui/">', '<p id="signed-out">Signed out of the console and of the identity provider. <a href="/ui/">Sign in again</a>.</p>');
    this.#endSamlSessions(message.subject, 'front channel');
    res.writeHead(302, { location: message.reply!.href });
    res.end();
  }

  /** HTTP-POST at /ui/saml/slo: the IdP's back-channel LogoutRequest (server to server, no cookie). */
  async #samlSloPost(req: IncomingMessage, res: ServerResponse): Promise<void> {
    if (this.#saml === undefined) throw new AgateError(ErrorCode.API_NOT_FOUND, 'SAML sign-in is not configured (console.saml)');
    const samlRequest = (await readForm(req)).get('SAMLRequest');
    if (samlRequest === null || samlRequest === '') throw new AgateError(ErrorCode.API_BAD_REQUEST, 'the form carries no SAMLRequest (a LogoutRequest by HTTP-POST)');
    const message = await this.#saml.acceptPost(samlRequest);
    if (message.kind !== 'request') throw new AgateError(ErrorCode.API_BAD_REQUEST, 'expected a LogoutRequest');
    const ended = this.#endSamlSessions(message.subject, 'back channel');
    json(res, 200, { signed_out: ended });
  }

  /** The IdP ended this person's session there: every console session of the same NameID (and SessionIndex, when named) ends. */
  #endSamlSessions(subject: SamlSubject, channel: string): number {
    const issuer = this.#options.config.saml!.idp_entity_id;
    const ended = this.#sessions.deleteWhere((s) => s.saml !== undefined && s.identity.issuer === issuer && s.saml.nameID === subject.nameID
      && (subject.sessionIndex === undefined || s.saml.sessionIndex === subject.sessionIndex));
    this.#options.logger.info('console SAML logout by the identity provider', { issuer, subject: subject.nameID, channel, sessions_ended: ended });
    return ended;
  }

  #samlMetadata(res: ServerResponse): void {
    if (this.#saml === undefined) throw new AgateError(ErrorCode.API_NOT_FOUND, 'SAML sign-in is not configured (console.saml)');
    const xml = this.#saml.metadata();
    res.writeHead(200, { 'content-type': 'application/samlmetadata+xml; charset=utf-8', 'content-length': Buffer.byteLength(xml) });
    res.end(xml);
  }

  #redirectWithFlow(res: ServerResponse, flowId: string, to: URL): void {
    // Lax: the provider's redirect back (OIDC) and our own page's hop to /ui/saml/finish are top-level GETs.
    res.setHeader('set-cookie', serializeCookie(FLOW_COOKIE, flowId, { sameSite: 'Lax', secure: this.#options.secure, maxAge: 600 }));
    res.writeHead(302, { location: to.href });
    res.end();
  }

  /** The flow the browser's cookie names, once; the cookie is cleared with whatever answer follows. */
  #takeFlow(req: IncomingMessage, res: ServerResponse) {
    res.setHeader('set-cookie', serializeCookie(FLOW_COOKIE, '', { sameSite: 'Lax', secure: this.#options.secure, maxAge: 0 }));
    return this.#sessions.takeFlow(parseCookies(req.headers.cookie).get(FLOW_COOKIE));
  }

  /** Opens a console session for a verified identity holding at least one role. */
  #signedIn(res: ServerResponse, identity: Identity, saml?: SamlSubject): void {
    const roles = this.#roles(identity);
    if (roles.size === 0) throw new AgateError(ErrorCode.API_FORBIDDEN, `${identity.subject} signed in but holds no console role (claim ${this.#options.config.roles.claim})`);
    const session = this.#sessions.create(identity, roles, saml);
    this.#options.logger.info('console sign-in', { issuer: identity.issuer, subject: identity.subject, roles: [...roles] });
    const clearFlow = res.getHeader('set-cookie');
    res.setHeader('set-cookie', [...(typeof clearFlow === 'string' ? [clearFlow] : []), serializeCookie(SESSION_COOKIE, session.id, { sameSite: 'Strict', secure: this.#options.secure, maxAge: this.#options.config.session_ttl_s })]);
    // A Strict cookie set by a cross-site redirect chain is not sent on that chain's next hop, so
    // the browser goes on to /ui/ from this same-site page instead of from a 302.
    page(res, 200, 'Signed in', '<meta http-equiv="refresh" content="0;url=/ui/">', '<p>Signed in. <a href="/ui/">Open the console</a>.</p>');
  }

  #session(req: IncomingMessage): ConsoleSession {
    const session = this.#sessions.get(parseCookies(req.headers.cookie).get(SESSION_COOKIE));
    if (session === undefined) throw new AgateError(ErrorCode.API_UNAUTHORIZED, 'not signed in to the console (GET /ui/login)');
    return session;
  }

  /** A state-changing request must come from the console's own page: same-site, with the session's CSRF token. */
  #checkCsrf(req: IncomingMessage, session: ConsoleSession): void {
    const site = req.headers['sec-fetch-site'];
    if (site !== undefined && site !== 'same-origin') throw new AgateError(ErrorCode.CONSOLE_CSRF, `a cross-site request (${site}) may not change anything`);
    const origin = req.headers.origin;
    if (origin !== undefined && origin !== 'null' && !sameOrigin(origin, req.headers.host)) throw new AgateError(ErrorCode.CONSOLE_CSRF, 'the request comes from another origin');
    const token = req.headers['x-csrf-token'];
    if (!csrfMatches(session, typeof token === 'string' ? token : undefined)) throw new AgateError(ErrorCode.CONSOLE_CSRF, 'the request lacks the session\'s CSRF token (x-csrf-token)');
  }

  async #api(req: IncomingMessage, res: ServerResponse, url: URL, session: ConsoleSession): Promise<void> {
    const path = url.pathname.slice('/ui/api'.length);
    let body: Buffer | undefined;
    if (req.method === 'POST' && ANSWER_PATH.test(path)) body = justified(await readBody(req, MAX_ANSWER_BODY));
    await this.#options.serveRoute(req, res, path, url.searchParams, session, body);
  }

  /** Server-sent events: the inbox now, then again whenever it changes, while the session lasts. */
  #stream(req: IncomingMessage, res: ServerResponse, session: ConsoleSession): void {
    if (!allows(session.roles, 'approvals')) throw new AgateError(ErrorCode.API_FORBIDDEN, `${session.identity.subject} has no role that may see approvals`);
    res.writeHead(200, { 'content-type': 'text/event-stream; charset=utf-8', connection: 'keep-alive', 'x-accel-buffering': 'no' });
    res.write('retry: 2000\n\n');
    const open = this.#streams.get(session.id) ?? new Set<ServerResponse>();
    this.#streams.set(session.id, open.add(res));
    // A session that ended (expired, signed out, logged out at the IdP) gets nothing more.
    const ended = () => this.#sessions.get(session.id) === undefined;
    const unsubscribe = this.#feed.subscribe((items) => (ended() ? res.end() : res.write(`event: inbox\ndata: {"server_time":${Date.now()},"items":${items}}\n\n`)));
    const heartbeat = setInterval(() => (ended() ? res.end() : res.write(': keep-alive\n\n')), HEARTBEAT_MS);
    res.on('close', () => {
      clearInterval(heartbeat);
      unsubscribe();
      open.delete(res);
      if (open.size === 0 && this.#streams.get(session.id) === open) this.#streams.delete(session.id);
    });
    req.on('error', () => res.destroy());
  }

  /** Ends the inbox streams a session has open (signing out). */
  #endStreams(sessionId: string): void {
    for (const res of this.#streams.get(sessionId) ?? []) res.end();
  }

  #fail(res: ServerResponse, path: string, err: unknown): void {
    const code = err instanceof AgateError ? err.code : 'INTERNAL';
    const status = STATUS[code] ?? 500;
    if (status >= 500) this.#options.logger.error('console request failed', { path, error: describeError(err) });
    // The IdP's logout messages come without a person watching (the back channel): say why one was refused.
    if (code === ErrorCode.CONSOLE_LOGOUT_REFUSED) this.#options.logger.warn('SAML logout message refused', { path, error: (err as Error).message });
    const message = status >= 500 && status !== 503 ? 'internal error; see the service log' : (err as Error).message;
    if (res.headersSent) return void res.destroy();
    if (path.startsWith('/ui/api/') || path === '/ui/logout') return json(res, status, { error: { code, message } });
    page(res, status, 'Agate console', '', `<p class="error">${escapeHtml(message)}</p><p><a href="/ui/login">Sign in again</a></p>`);
  }
}

const STATUS: Record<string, number> = {
  [ErrorCode.API_UNAUTHORIZED]: 401, [ErrorCode.API_FORBIDDEN]: 403, [ErrorCode.API_NOT_FOUND]: 404, [ErrorCode.API_BAD_REQUEST]: 400,
  [ErrorCode.API_UNAVAILABLE]: 503, [ErrorCode.CONSOLE_SIGN_IN_FAILED]: 401, [ErrorCode.CONSOLE_CSRF]: 403, [ErrorCode.CONSOLE_LOGOUT_REFUSED]: 400,
};

/** A SAML HTTP-POST binding body: a form, bounded. */
async function readForm(req: IncomingMessage): Promise<URLSearchParams> {
  if (!/^application\/x-www-form-urlencoded\b/i.test(req.headers['content-type'] ?? '')) throw new AgateError(ErrorCode.API_BAD_REQUEST, 'expected the SAML HTTP-POST binding (an application/x-www-form-urlencoded form)');
  return new URLSearchParams((await readBody(req, MAX_SAML_BODY)).toString('utf8'));
}

/** An approve/deny from the console must say why: `{"comment": "<non-blank>"}`. */
function justified(body: Buffer): Buffer {
  let comment: unknown;
  try {
    comment = (JSON.parse(body.toString('utf8')) as { comment?: unknown }).comment;
  } catch {
    throw new AgateError(ErrorCode.API_BAD_REQUEST, 'the body must be JSON: {"comment": "..."}');
  }
  if (typeof comment !== 'string' || comment.trim() === '') throw new AgateError(ErrorCode.API_BAD_REQUEST, 'a justification is required to approve or deny');
  return body;
}

function me(s: ConsoleSession): Record<string, unknown> {
  const c = s.identity.claims;
  return {
    issuer: s.identity.issuer, subject: s.identity.subject, name: c.name ?? c.preferred_username ?? c.email ?? s.identity.subject,
    roles: [...s.roles], csrf_token: s.csrf, expires_at: new Date(s.expiresAt).toISOString(),
  };
}

function json(res: ServerResponse, status: number, body: unknown): void {
  const text = JSON.stringify(body);
  res.writeHead(status, { 'content-type': 'application/json; charset=utf-8', 'content-length': Buffer.byteLength(text) });
  res.end(text);
}

function page(res: ServerResponse, status: number, title: string, head: string, body: string): void {
  const html = `<!doctype html><html lang="en"><head><meta charset="utf-8"><title>${escapeHtml(title)}</title>${head}<link rel="stylesheet" href="/ui/assets/style.css"></head><body class="plain">${body}</body></html>`;
  res.writeHead(status, { 'content-type': 'text/html; charset=utf-8', 'content-length': Buffer.byteLength(html) });
  res.end(html);
}

function escapeHtml(s: string): string {
  return s.replace(/[&<>"']/g, (c) => `&#${c.charCodeAt(0)};`);
}

/** Whether a request's Origin header names this host; one that is not a URL at all is another origin. */
export function sameOrigin(origin: string, host: string | undefined): boolean {
  if (host === undefined || !URL.canParse(origin)) return false;
  return new URL(origin).host === host;
}

import { randomUUID } from 'node:crypto';
import type { IncomingMessage, ServerResponse } from 'node:http';
import { createServer, request, type Server } from 'node:https';
import type { AddressInfo, Socket } from 'node:net';
import type { TLSSocket } from 'node:tls';
import type { Bus } from '../../../../core/src/bus/bus.js';
import { AuthenticationError, ErrorCode, describeError } from '../../../../core/src/errors.js';
import { TokenVerifier } from '../../../../core/src/identity/oidc.js';
import { abandonedMessage, type LoginGuard, type PendingLogin } from '../../../../core/src/logins/pending.js';
import { sourceAddress, throttledMessage } from '../../../../core/src/logins/throttle.js';
import type { Logger } from '../../../../core/src/log.js';
import { nowMicros, type Command } from '../../../../schemas/src/events.js';
import { listenOn } from '../listen.js';
import { clientMasker, decide, DEADLINE_RULE } from '../decide.js';
import { SessionEvents } from '../session-events.js';
import type { Masker } from '../pg/masking/masker.js';
import { accessQuestion, combineAccess, questionAttributes, reviewKind, rulesReview, selfReview, type PolicyAnswer, type Question } from './access-review.js';
import { impersonates, upstreamHeaders } from './headers.js';
import { bodySample, refusedEvent, sha256, type K8sRecording } from './recording.js';
import { classifyRequest, normalizedTarget, requestAttributes, requestText, type RequestInfo } from './request-info.js';
import { KubeSession } from './session.js';
import { failure, forbidden, maskedWrite, statusBody, type Status } from './status.js';
import { maskMarkers, readBody as readRequestBody, type ReadBody } from './request-body.js';
import { relayMasked, relayStream, relayWatch, sendStatus } from './relay.js';
import { privilegeFacts } from './privilege.js';
import { relayUpgrade } from './upgrade.js';
import type { KubeUpstream } from './upstream.js';

export interface KubeProxyTarget {
  name: string;
  upstream: KubeUpstream;
  /** The certificate and key Agate serves to kubectl. */
  tls: { cert: Buffer; key: Buffer };
  recording: K8sRecording;
  /** Every configured mask set by name (verdicts and the target name them). */
  maskers: ReadonlyMap<string, Masker>;
  /** The set every client response of this target is masked with; undefined: only when policy says. */
  maskClient: string | undefined;
  /** A request body larger than this is refused (413). */
  maxBodyBytes: number;
  /** A response that must be masked is buffered up to this size, and refused beyond (fail closed). */
  maxBufferBytes: number;
  /** Discovery (`GET /api`, `/apis/…`, `/version`, `/openapi/…`) is recorded and allowed by a built-in rule. */
  allowDiscovery: boolean;
  /** Client connections beyond this are not accepted (each may hold a watch and an upstream socket). */
  maxConnections: number;
}

export interface KubeProxyOptions {
  bus: Bus;
  verifier: TokenVerifier;
  proxyId: string;
  verdictTimeoutMs: number;
  logger: Logger;
  target: KubeProxyTarget;
  /** This listener's connections still logging in, and the process's failed-login throttle. */
  logins: LoginGuard;
}

/** How often a drain looks again at the requests in flight; a request ending is not announced. */
const DRAIN_POLL_MS = 20;

/** The built-in rule that allows discovery without asking policy (it is still recorded). */
export const DISCOVERY_RULE = 'agate.k8s-discovery';
const DISCOVERY = /^\/(api|apis(\/[^/]+){0,2}|api\/v1|version|openapi\/.*|livez|readyz|healthz)\/?$/;

/** Verbs whose body is stored: a mask marker in it would replace the real value. */
const WRITE_VERBS = new Set(['create', 'update', 'patch']);

type Decision = { kind: 'run'; client: Masker | undefined } | { kind: 'refuse'; status: Status; code: string };

/** A reply channel: an HTTP response, or the raw socket of an upgrade request. */
export interface Reply {
  status(s: Status): void;
}

interface Conn {
  session: KubeSession | undefined;
  address: string;
  /** Pending until the first request with a valid token (or one that needs none). */
  login: PendingLogin | undefined;
}

/**
 * The Kubernetes API proxy for one target: an HTTPS server kubectl talks to with its OIDC token
 * as bearer token. Every request is classified like the API server does, recorded as a Command,
 * decided by policy, then forwarded with Agate's own cluster credential; responses are recorded
 * (kinds, names, sizes, digest, masked sample) and masked for the client where policy says so.
 */
export class KubeProxyServer {
  readonly #server: Server;
  readonly #conns = new Map<Socket, Conn>();
  /** TCP connections not yet past TLS, by `ip:port`, with their pending login. */
  readonly #admitted = new Map<string, PendingLogin>();
  #open = 0;
  readonly #closing = new Set<Promise<void>>();
  /** Requests not yet fully answered (a watch until it ends), and upgraded connections (exec, attach). */
  readonly #inflight = new Set<ServerResponse>();
  readonly #upgraded = new Set<Socket>();
  /** Aborted when a drain starts: watches end cleanly, answers close their connection. */
  readonly #draining = new AbortController();
  readonly #log: Logger;
  /** Refusals before any session exists are recorded through this one ordered sink. */
  readonly #authEvents: SessionEvents;

  constructor(private readonly options: KubeProxyOptions) {
    this.#log = options.logger.child({ component: 'k8s-proxy', target: options.target.name });
    this.#authEvents = new SessionEvents(options.bus, this.#log);
    const { logins } = options;
    // Header slowloris after login is cut by Node (checked every second); before it, by the login deadline.
    this.#server = createServer(
      { cert: options.target.tls.cert, key: options.target.tls.key, headersTimeout: logins.pending.options.timeoutMs, connectionsCheckingInterval: 1000 },
      (req, res) => void this.#onRequest(req, res),
    );
    this.#server.prependListener('connection', (socket: Socket) => this.#admit(socket));
    this.#server.on('secureConnection', (socket: TLSSocket) => {
      const key = `${socket.remoteAddress}:${socket.remotePort}`;
      const login = this.#admitted.get(key);
      this.#admitted.delete(key);
      login?.progressed(); // past the TLS handshake
      const conn: Conn = { session: undefined, address: `${socket.remoteAddress ?? 'unknown'}:${socket.remotePort ?? 0}`, login };
      this.#conns.set(socket, conn);
      socket.on('close', () => {
        this.#conns.delete(socket);
        this.#endSession(conn, 'client disconnected');
      });
    });
    this.#server.on('upgrade', (req: IncomingMessage, socket: Socket, head: Buffer) => void this.#onUpgrade(req, socket, head));
    this.#server.on('tlsClientError', (err) => this.#log.debug('client TLS error', { error: err.message }));
  }

  listen(host: string, port: number): Promise<AddressInfo> {
    return listenOn(this.#server, host, port);
  }

  /**
   * Graceful stop: stops accepting connections; ends every watch cleanly (its stream terminated,
   * recorded as ended by Agate) so kubectl can watch again through another proxy; lets requests
   * in flight (deciding, held, being answered) and upgraded streams finish, each answer closing
   * its connection, for up to `timeoutMs`; then cuts off the rest and records the sessions' ends.
   */
  async drain(timeoutMs: number): Promise<void> {
    const closed = new Promise<void>((r) => this.#server.close(() => r()));
    this.#draining.abort();
    const deadline = Date.now() + timeoutMs;
    for (const res of this.#inflight) if (!res.headersSent) res.setHeader('Connection', 'close');
    // A keep-alive connection between two requests is closed as soon as it is idle.
    while ((this.#inflight.size > 0 || this.#upgraded.size > 0) && Date.now() < deadline) {
      this.#server.closeIdleConnections();
      await new Promise((r) => setTimeout(r, Math.min(DRAIN_POLL_MS, Math.max(1, deadline - Date.now()))));
    }
    const cutOff = this.#inflight.size + this.#upgraded.size;
    this.#server.closeAllConnections();
    for (const socket of [...this.#conns.keys(), ...this.#upgraded]) socket.destroy();
    await closed;
    await Promise.all(this.#closing);
    this.options.target.upstream.close();
    this.#log.info('drained', { requests_cut_off: cutOff });
  }

  /** Stops accepting, ends every connection, and waits until each session's end is recorded. */
  async shutdown(): Promise<void> {
    const closed = new Promise<void>((r) => this.#server.close(() => r()));
    this.#server.closeAllConnections(); // including those still in their TLS handshake
    for (const socket of this.#conns.keys()) socket.destroy();
    await closed;
    await Promise.all(this.#closing);
    this.options.target.upstream.close();
  }

  /**
   * Every TCP connection before TLS: a throttled address is dropped (recorded once per block);
   * `maxConnections` counts logged-in connections only, and one still logging in holds one of
   * `logins.max_pending` slots until its first authenticated request, within `logins.timeout_ms`.
   */
  #admit(socket: Socket): void {
    socket.on('error', () => {});
    const { logins } = this.options;
    const address = sourceAddress(socket.remoteAddress);
    const clientAddress = `${socket.remoteAddress ?? 'unknown'}:${socket.remotePort ?? 0}`;
    const check = logins.throttle.check(address);
    if (check.kind === 'blocked') {
      if (check.record) this.#recordRefusal(clientAddress, ErrorCode.AUTH_THROTTLED, throttledMessage(check, logins.throttle.windowMs));
      return void socket.destroy();
    }
    if (this.#open - logins.pending.size >= this.options.target.maxConnections) {
      this.#log.warn('refusing a connection: too many connections', { limit: this.options.target.maxConnections });
      return void socket.destroy();
    }
    this.#open += 1;
    const key = `${socket.remoteAddress}:${socket.remotePort}`;
    const login = logins.pending.admit(address, (why) => {
      logins.throttle.failed(address);
      this.#recordRefusal(clientAddress, why === 'timeout' ? ErrorCode.AUTH_TIMEOUT : ErrorCode.AUTH_EVICTED, abandonedMessage(why, logins.pending.options));
      socket.destroy();
    });
    this.#admitted.set(key, login);
    socket.once('close', () => {
      this.#open -= 1;
      this.#admitted.delete(key);
      login.done();
    });
  }

  #recordRefusal(clientAddress: string, code: string, message: string): void {
    void this.#authEvents.emitLogged({
      type: 'AuthenticationFailed', event_id: randomUUID(), time: nowMicros(), session_id: randomUUID(), proxy_id: this.options.proxyId,
      protocol: 'kubernetes', target: this.options.target.name, client_address: clientAddress, reason_code: code, message, claimed_issuer: null, claimed_subject: null,
    });
  }

  #endSession(conn: Conn, reason: string): void {
    const s = conn.session;
    if (s === undefined) return;
    conn.session = undefined;
    const p = s.close(reason);
    this.#closing.add(p);
    void p.finally(() => this.#closing.delete(p));
  }

  // ---- authentication ------------------------------------------------------------------------

  /** The request's session, opened on its first valid token; undefined after a refusal was sent. */
  async #authenticate(req: IncomingMessage, reply: Reply): Promise<KubeSession | undefined> {
    const conn = this.#conns.get(req.socket) ?? { session: undefined, address: `${req.socket.remoteAddress}:${req.socket.remotePort}`, login: undefined };
    const { throttle } = this.options.logins;
    const address = sourceAddress(req.socket.remoteAddress);
    const check = throttle.check(address);
    if (check.kind === 'blocked') {
      const message = throttledMessage(check, throttle.windowMs);
      if (check.record) this.#recordRefusal(conn.address, ErrorCode.AUTH_THROTTLED, message);
      reply.status(failure('TooManyRequests', `Agate refused the request: ${message}`));
      return undefined;
    }
    const header = req.headers.authorization ?? '';
    const token = /^Bearer\s+(\S+)\s*$/i.exec(header)?.[1] ?? '';
    const current = conn.session;
    if (current !== undefined && current.token === token && Date.now() / 1000 < current.expiresAt) return current;
    const { bus, verifier, proxyId } = this.options;
    const target = this.options.target.name;
    let identity;
    try {
      if (token === '') throw new AuthenticationError(ErrorCode.AUTH_TOKEN_MALFORMED, 'no bearer token: present an OIDC id-token as the kubeconfig user token');
      identity = await verifier.verify(token);
    } catch (err) {
      const e = err instanceof AuthenticationError ? err : new AuthenticationError(ErrorCode.AUTH_TOKEN_MALFORMED, 'the token could not be verified', { cause: err });
      this.#log.info('request refused: authentication failed', { reason_code: e.code });
      throttle.failed(address);
      const claimed = TokenVerifier.peek(token);
      await (current?.events ?? this.#authEvents).emitLogged({
        type: 'AuthenticationFailed', event_id: randomUUID(), time: nowMicros(), session_id: current?.id ?? randomUUID(), proxy_id: proxyId,
        protocol: 'kubernetes', target, client_address: conn.address, reason_code: e.code, message: e.message,
        claimed_issuer: claimed.issuer, claimed_subject: claimed.subject,
      });
      reply.status(failure('Unauthorized', `Agate authentication failed (${e.code}): ${e.message}`));
      return undefined;
    }
    if (current !== undefined) this.#endSession(conn, 'the client presented another token');
    const exp = Number(identity.claims.exp ?? 0);
    const session = new KubeSession(token, identity, exp, bus, proxyId, target, this.#log);
    try {
      // A user agent is client-chosen text like any other recorded value: detectors apply.
      await session.open(conn.address, { user_agent: this.options.target.recording.audit.maskText(String(req.headers['user-agent'] ?? '').slice(0, 200)).text });
    } catch (err) {
      this.#log.error('cannot record session start; refusing the request', { error: describeError(err) });
      reply.status(failure('ServiceUnavailable', 'Agate cannot record this session (audit log unavailable); refused'));
      return undefined;
    }
    conn.session = session;
    conn.login?.done();
    return session;
  }

  // ---- requests ------------------------------------------------------------------------------

  async #onRequest(req: IncomingMessage, res: ServerResponse): Promise<void> {
    let info: RequestInfo | undefined;
    const reply: Reply = { status: (s) => sendStatus(res, s, info) };
    res.on('error', (err) => this.#log.debug('client response error', { error: err.message }));
    this.#inflight.add(res);
    res.once('close', () => this.#inflight.delete(res));
    // A request on a kept-alive connection during a drain is answered, then the connection closed.
    if (this.#draining.signal.aborted) res.setHeader('Connection', 'close');
    try {
      const session = await this.#authenticate(req, reply);
      if (session === undefined) return void req.resume();
      const method = req.method ?? 'GET';
      const classified = classifyRequest(method, req.url ?? '/');
      if (classified.kind === 'invalid') return void (req.resume(), reply.status(failure('BadRequest', classified.message)));
      info = classified;
      const body = await readBody(req, this.options.target.maxBodyBytes);
      const read = body === undefined || body.length === 0 ? undefined : readRequestBody(body, req.headers['content-type']);
      // Before the sample is masked: masking writes the very marker looked for.
      const marked = read === undefined || !WRITE_VERBS.has(info.verb) ? [] : maskMarkers(read, body!);
      const command = this.#command(session, method, req, info, body, read);
      if (body === undefined) {
        return this.#refuse(session, command, reply, failure('RequestEntityTooLarge', `the request body is larger than ${this.options.target.maxBodyBytes} bytes, the most Agate records`, info), 'refused', ErrorCode.PROTOCOL_FRAME_TOO_LARGE, true);
      }
      if (marked.length > 0) return this.#refuse(session, command, reply, maskedWrite(info, marked), 'refused', ErrorCode.MASKED_VALUE_WRITE, true);
      const decision = await this.#decide(session, command, info, req);
      if (decision.kind === 'refuse') return this.#refuse(session, command, reply, decision.status, 'refused', decision.code, false);
      await this.#forward(session, command, info, req, res, body, decision.client, this.#review(session, info, req));
    } catch (err) {
      this.#log.error('request failed', { error: describeError(err) });
      if (!res.headersSent) reply.status(failure('InternalError', 'Agate could not process the request'));
      else res.destroy();
    }
  }

  #command(session: KubeSession, method: string, req: IncomingMessage, info: RequestInfo, body: Buffer | undefined, read: ReadBody | undefined): Command {
    const { recording } = this.options.target;
    const attributes = requestAttributes(info);
    const parameters: string[] = [];
    if (body === undefined) attributes.body_bytes = `>${this.options.target.maxBodyBytes}`;
    else if (body.length > 0 && read !== undefined) {
      attributes.body_bytes = String(body.length);
      attributes.body_digest = sha256(body);
      parameters.push(bodySample(read, info, recording));
    }
    if (req.headers['content-type'] !== undefined && body !== undefined && body.length > 0) attributes.content_type = req.headers['content-type'];
    if (impersonates(req.headers)) attributes.impersonate = 'refused';
    const privilege = privilegeFacts(info, req.headers, read, body);
    if (privilege.length > 0) attributes.privilege = privilege.join(',');
    // A token in a query string (`?token=`) must never reach the bus.
    return session.command(recording.audit.maskText(requestText(method, req.url ?? '/')).text, parameters, attributes, req.headers.traceparent);
  }

  /** Publishes the command (write-ahead) and waits for its verdict; fails closed. */
  async #decide(session: KubeSession, command: Command, info: RequestInfo, req: IncomingMessage): Promise<Decision> {
    const { bus, verdictTimeoutMs, target } = this.options;
    const unrecorded: Decision = { kind: 'refuse', code: ErrorCode.BUS_UNAVAILABLE, status: failure('ServiceUnavailable', 'Agate refused the request: the audit log is unavailable, so it cannot be recorded', info) };
    const recorded = () => session.events.emit(command).then(() => true, (err: unknown) => {
      this.#log.error('cannot record a command; refusing it', { command_id: command.event_id, error: describeError(err) });
      session.events.recordUnrecordable(command, verdictTimeoutMs);
      return false;
    });
    if (impersonates(req.headers)) {
      // Impersonation would act as someone else with Agate's credential: refused before policy.
      if (!(await recorded())) return unrecorded;
      return { kind: 'refuse', code: 'IMPERSONATION_REFUSED', status: failure('Forbidden', 'Agate refused the request: impersonation headers (kubectl --as) are not allowed through Agate', info) };
    }
    if (target.allowDiscovery && info.kind === 'non-resource' && info.verb === 'get' && DISCOVERY.test(info.path)) {
      if (!(await recorded())) return unrecorded;
      void session.events.emitLogged({
        type: 'Verdict', event_id: randomUUID(), time: nowMicros(), session_id: session.id, command_id: command.event_id, decision: 'allow',
        rule_id: DISCOVERY_RULE, reason: 'API discovery is allowed by the built-in rule (targets[].allow_discovery)', source: 'policy',
        policy_revision: 'builtin', mask_set: null, approval_id: null, hold_expires_at: null,
      });
      return { kind: 'run', client: undefined };
    }
    const d = await decide(command, { bus, verdictTimeoutMs, events: session.events, log: this.#log }, {
      // kubectl has no channel for a notice: the request simply waits (see README).
      onHold: (v) => this.#log.info('request held for approval', { command_id: command.event_id, approval_id: v.approval_id }),
    });
    switch (d.kind) {
      case 'unrecorded':
        return unrecorded;
      case 'deadline':
        return { kind: 'refuse', code: ErrorCode.VERDICT_TIMEOUT, status: forbidden(info, DEADLINE_RULE, d.reason) };
      case 'denied':
        return { kind: 'refuse', code: 'POLICY_DENIED', status: forbidden(info, d.verdict.rule_id, d.verdict.reason) };
      case 'run': {
        const mask = clientMasker(d, target.maskers, target.maskClient);
        if (mask.ok) return { kind: 'run', client: mask.masker };
        return { kind: 'refuse', code: ErrorCode.MASKING_FAILED, status: failure('Forbidden', `Agate refused the request: mask set "${mask.missing}" is not configured, so the response cannot be masked`, info) };
      }
    }
  }

  #refuse(session: KubeSession, command: Command, reply: Reply, status: Status, kind: 'refused' | 'error', code: string, publishCommand: boolean): void {
    // Refused before policy: nothing runs, so the command may wait for the bus like a response.
    const record = publishCommand ? session.events.emitLogged(command) : Promise.resolve();
    void record.then(() => session.events.emitLogged(refusedEvent(command, kind, code, status.message)));
    reply.status(status);
  }

  // ---- forwarding ----------------------------------------------------------------------------

  /**
   * How a self-review's answer is rewritten for the agent (see access-review.ts). The question of
   * an access review is read from the API server's answer, which repeats it as the API server
   * decoded it (kubectl asks in protobuf).
   */
  #review(session: KubeSession, info: RequestInfo, req: IncomingMessage): ((doc: unknown) => Promise<void>) | undefined {
    const kind = reviewKind(info);
    if (kind === 'self') return async (doc) => selfReview(doc, session.identity);
    if (kind === 'rules') return async (doc) => rulesReview(doc);
    if (kind !== 'access') return undefined;
    return async (doc) => {
      const q = accessQuestion(doc);
      const answer: PolicyAnswer = q === undefined ? { kind: 'unknown', reason: 'the question could not be read' } : await this.#askPolicy(session, q, req);
      combineAccess(doc, answer);
    };
  }

  /**
   * Policy's verdict on a request the agent only asks about: recorded as a Command marked
   * `access_review` (never run; a hold creates no approval), decided like the request itself.
   */
  async #askPolicy(session: KubeSession, q: Question, req: IncomingMessage): Promise<PolicyAnswer> {
    const { bus, verdictTimeoutMs } = this.options;
    const text = this.options.target.recording.audit.maskText(q.text).text; // names in it are the agent's words
    const command = session.command(text, [], questionAttributes(q, privilegeFacts(q.info, {}, undefined, undefined)), req.headers.traceparent);
    try {
      // The policy service answers a question's hold without an expiry: the hold is the answer.
      const outcome = await bus.requestVerdict(command, verdictTimeoutMs);
      if (outcome.kind === 'timeout') {
        session.events.recordRefusal(command, outcome.published, verdictTimeoutMs); // the question stays in the record
        return { kind: 'unknown', reason: `policy gave no answer within ${verdictTimeoutMs} ms` };
      }
      const v = outcome.verdict;
      if (v.decision === 'allow' || v.decision === 'mask') return { kind: 'allow', reason: v.reason };
      return { kind: v.decision, rule: v.rule_id, reason: v.reason };
    } catch (err) {
      this.#log.warn('cannot ask policy about an access review', { error: describeError(err), user_agent: String(req.headers['user-agent'] ?? '').slice(0, 80) });
      return { kind: 'unknown', reason: 'the question could not be recorded' };
    }
  }

  async #forward(session: KubeSession, command: Command, info: RequestInfo, req: IncomingMessage, res: ServerResponse, body: Buffer, client: Masker | undefined, rewrite?: (doc: unknown) => Promise<void>): Promise<void> {
    const { upstream } = this.options.target;
    const started = nowMicros();
    let credential: Record<string, string>;
    try {
      credential = await upstream.headers();
    } catch (err) {
      return this.#credentialFailed(session, command, { status: (s) => sendStatus(res, s, info) }, info, err);
    }
    const up = request({
      host: upstream.server.hostname, port: upstream.server.port || 443, method: req.method, path: normalizedTarget(req.url ?? '/'), agent: upstream.agent,
      headers: upstreamHeaders(req.headers, credential, body.length),
    });
    let clientGone = false;
    res.once('close', () => {
      clientGone = !res.writableFinished;
      up.destroy();
    });
    up.on('error', (err) => {
      if (res.writableEnded) return; // the response was complete, or withheld on purpose
      if (clientGone && !res.headersSent) {
        void session.events.emitLogged(refusedEvent(command, 'error', 'CLIENT_GONE', 'the client closed the connection before the API server answered'));
        return;
      }
      const message = upstreamFailure(err, this.options.target.name);
      this.#log.warn('upstream request failed', { error: describeError(err) });
      void session.events.emitLogged(refusedEvent(command, 'error', ErrorCode.UPSTREAM_UNREACHABLE, message));
      if (!res.headersSent) sendStatus(res, failure('ServiceUnavailable', message, info, 502), info);
      else res.destroy();
    });
    up.on('response', (upRes) => {
      const watch = info.kind === 'resource' && (info.verb === 'watch' || /[?&]watch=(1|t|true)\b/i.test(req.url ?? '')) && upRes.statusCode === 200;
      const relay = watch ? relayWatch : client !== undefined || rewrite !== undefined ? relayMasked : relayStream;
      relay({ session, command, upRes, res, client, rewrite, started, info, target: this.options.target, log: this.#log, stop: this.#draining.signal });
    });
    up.end(body);
  }

  /** Agate's own credential could not be produced (an exec plugin failed): refused, recorded, never retried with another. */
  #credentialFailed(session: KubeSession, command: Command, reply: Reply, info: RequestInfo, err: unknown): void {
    this.#log.error('cannot produce the cluster credential', { error: describeError(err) });
    const message = `Agate cannot authenticate to the API server of target "${this.options.target.name}": its credential plugin failed`;
    void session.events.emitLogged(refusedEvent(command, 'error', ErrorCode.UPSTREAM_AUTH_FAILED, message));
    reply.status(failure('ServiceUnavailable', message, info, 502));
  }

  // ---- upgrades (exec, attach, port-forward) ------------------------------------------------

  async #onUpgrade(req: IncomingMessage, socket: Socket, head: Buffer): Promise<void> {
    socket.on('error', (err) => this.#log.debug('upgrade socket error', { error: err.message }));
    this.#upgraded.add(socket);
    socket.once('close', () => this.#upgraded.delete(socket));
    const reply: Reply = { status: (s) => writeRawStatus(socket, s) };
    try {
      const session = await this.#authenticate(req, reply);
      if (session === undefined) return;
      const method = req.method ?? 'GET';
      const info = classifyRequest(method, req.url ?? '/');
      if (info.kind === 'invalid') return reply.status(failure('BadRequest', info.message));
      // exec and attach are asked for with GET over WebSocket; RBAC (and so policy) sees `create`.
      const decided: RequestInfo = info.kind === 'resource' && info.verb === 'get' && ['exec', 'attach', 'portforward'].includes(info.subresource) ? { ...info, verb: 'create' } : info;
      const command = this.#command(session, method, req, decided, Buffer.alloc(0), undefined);
      command.attributes.upgrade = String(req.headers.upgrade ?? '').slice(0, 64);
      const decision = await this.#decide(session, command, decided, req);
      if (decision.kind === 'refuse') return this.#refuse(session, command, reply, decision.status, 'refused', decision.code, false);
      if (decision.client !== undefined) {
        // An upgraded connection is relayed as bytes: what must be masked cannot go through it.
        const status = failure('Forbidden', 'Agate refused the request: policy requires its response masked, which Agate cannot do over an upgraded (WebSocket or SPDY) connection', decided);
        return this.#refuse(session, command, reply, status, 'refused', ErrorCode.MASKING_FAILED, false);
      }
      const { upstream, name } = this.options.target;
      let credential: Record<string, string>;
      try {
        credential = await upstream.headers();
      } catch (err) {
        return this.#credentialFailed(session, command, reply, decided, err);
      }
      const outcome = await relayUpgrade(socket, head, req, upstream, credential);
      if (outcome.kind === 'unreachable') {
        const message = upstreamFailure(outcome.error, name);
        void session.events.emitLogged(refusedEvent(command, 'error', ErrorCode.UPSTREAM_UNREACHABLE, message));
        return reply.status(failure('ServiceUnavailable', message, decided, 502));
      }
      const ok = outcome.code === 101;
      void session.events.emitLogged({
        type: 'Response', event_id: randomUUID(), time: nowMicros(), session_id: session.id, command_id: command.event_id,
        status: ok ? 'ok' : 'error', command_tag: `${outcome.code} upgrade, ${outcome.bytesUp} bytes up, ${outcome.bytesDown} bytes down`,
        rows: 0, bytes: outcome.bytesDown, duration_us: outcome.durationUs, error_code: ok ? null : String(outcome.code),
        error_message: ok ? null : `the API server answered the upgrade with ${outcome.statusLine}`, digest: outcome.digest, columns: [], sample: [], masked_values: 0,
      });
    } catch (err) {
      this.#log.error('upgrade failed', { error: describeError(err) });
      socket.destroy();
    }
  }
}

/** Reads the whole request body, or undefined (the rest discarded) when it exceeds `max`. */
function readBody(req: IncomingMessage, max: number): Promise<Buffer | undefined> {
  return new Promise((resolve, reject) => {
    const parts: Buffer[] = [];
    let size = 0;
    let over = false;
    req.on('data', (chunk: Buffer) => {
      size += chunk.length;
      if (size > max) over = true;
      if (!over) parts.push(chunk);
      else parts.length = 0;
    });
    req.on('end', () => resolve(over ? undefined : Buffer.concat(parts)));
    req.on('error', reject);
  });
}

function writeRawStatus(socket: Socket, s: Status): void {
  const body = statusBody(s);
  socket.end(`HTTP/1.1 ${s.code} ${s.reason}\r\nContent-Type: application/json\r\nContent-Length: ${body.length}\r\nConnection: close\r\n\r\n${body.toString()}`);
}

/** What the client is told when the API server cannot be reached: names the cause, never the credential. */
function upstreamFailure(err: Error, target: string): string {
  const code = (err as NodeJS.ErrnoException).code ?? '';
  if (/CERT|SELF_SIGNED|UNABLE_TO_VERIFY|ERR_TLS_CERT_ALTNAME/.test(code)) {
    return `Agate refused the API server of target "${target}": its TLS certificate does not verify against the kubeconfig's certificate authority (${code})`;
  }
  return `Agate cannot reach the API server of target "${target}" (${code || err.message})`;
}

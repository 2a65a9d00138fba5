import type { IncomingMessage, ServerResponse } from 'node:http';
import { createServer, request, type Server } from 'node:https';
import type { AddressInfo, Socket } from 'node:net';
import type { TLSSocket } from 'node:tls';
import type { Bus } from '../../../../core/src/bus/bus.js';
import { ErrorCode, describeError } from '../../../../core/src/errors.js';
import type { TokenVerifier } from '../../../../core/src/identity/oidc.js';
import { abandonedMessage, type LoginGuard, type PendingLogin } from '../../../../core/src/logins/pending.js';
import { sourceAddress, throttledMessage } from '../../../../core/src/logins/throttle.js';
import type { Logger } from '../../../../core/src/log.js';
import { nowMicros } from '../../../../schemas/src/events.js';
import { listenOn } from '../listen.js';
import type { Masker } from '../masking/masker.js';
import { KubeEngine, type Forward } from './engine.js';
import { connOf, KubeLogin, type Conn } from './login.js';
import type { K8sRecording } from './recording.js';
import { relayMasked, relayStream, relayWatch, sendStatus } from './relay.js';
import type { KubeSession } from './session.js';
import { failure, statusBody, type Status } from './status.js';
import { channelTap } from './stream-tap.js';
import { relayUpgrade } from './upgrade.js';
import { endAtTokenExpiry } from '../token-expiry.js';
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

/**
 * The Kubernetes API proxy's transport for one target: an HTTPS server kubectl talks to with its
 * OIDC token as bearer token. It admits connections, reads each request (body bounded), asks
 * {@link KubeLogin} who is asking and {@link KubeEngine} what to do, then moves the bytes: a
 * Status back, or the request to the API server with Agate's own credential and its answer
 * back through a relay (relay.ts, upgrade.ts), which records it.
 */
export class KubeProxyServer {
  readonly #options: KubeProxyOptions;
  readonly #server: Server;
  readonly #engine: KubeEngine;
  readonly #login: KubeLogin;
  readonly #conns = new Map<Socket, Conn>();
  /** TCP connections not yet past TLS, by `ip:port`, with their pending login. */
  readonly #admitted = new Map<string, PendingLogin>();
  #open = 0;
  /** Requests not yet fully answered (a watch until it ends), and upgraded connections (exec, attach). */
  readonly #inflight = new Set<ServerResponse>();
  readonly #upgraded = new Set<Socket>();
  /** Aborted when a drain starts: watches end cleanly, answers close their connection. */
  readonly #draining = new AbortController();
  readonly #log: Logger;

  constructor(options: KubeProxyOptions) {
    this.#options = options;
    const { target, logins } = options;
    this.#log = options.logger.child({ component: 'k8s-proxy', target: target.name });
    this.#engine = new KubeEngine({
      bus: options.bus, verdictTimeoutMs: options.verdictTimeoutMs, log: this.#log, target,
      upstream: { host: target.upstream.server.host, credential: () => target.upstream.headers() },
    });
    this.#login = new KubeLogin({
      bus: options.bus, verifier: options.verifier, proxyId: options.proxyId, target: target.name, throttle: logins.throttle, audit: target.recording.audit, log: this.#log,
    });
    // Header slowloris after login is cut by Node (checked every second); before it, by the login deadline.
    this.#server = createServer(
      { cert: target.tls.cert, key: target.tls.key, headersTimeout: logins.pending.options.timeoutMs, connectionsCheckingInterval: 1000 },
      (req, res) => void this.#onRequest(req, res),
    );
    this.#server.prependListener('connection', (socket: Socket) => this.#admit(socket));
    this.#server.on('secureConnection', (socket: TLSSocket) => {
      const key = `${socket.remoteAddress}:${socket.remotePort}`;
      const login = this.#admitted.get(key);
      this.#admitted.delete(key);
      login?.progressed(); // past the TLS handshake
      const conn = connOf(socket.remoteAddress, socket.remotePort, login);
      this.#conns.set(socket, conn);
      socket.on('close', () => {
        this.#conns.delete(socket);
        this.#login.endSession(conn, 'client disconnected');
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
    await this.#login.closed();
    this.#options.target.upstream.close();
    this.#log.info('drained', { requests_cut_off: cutOff });
  }

  /** Stops accepting, ends every connection, and waits until each session's end is recorded. */
  async shutdown(): Promise<void> {
    const closed = new Promise<void>((r) => this.#server.close(() => r()));
    this.#server.closeAllConnections(); // including those still in their TLS handshake
    for (const socket of this.#conns.keys()) socket.destroy();
    await closed;
    await this.#login.closed();
    this.#options.target.upstream.close();
  }

  /**
   * Every TCP connection before TLS: a throttled address is dropped (recorded once per block);
   * `maxConnections` counts logged-in connections only, and one still logging in holds one of
   * `logins.max_pending` slots until its first authenticated request, within `logins.timeout_ms`.
   */
  #admit(socket: Socket): void {
    socket.on('error', () => {});
    const { logins, target } = this.#options;
    const address = sourceAddress(socket.remoteAddress);
    const clientAddress = `${socket.remoteAddress ?? 'unknown'}:${socket.remotePort ?? 0}`;
    const check = logins.throttle.check(address);
    if (check.kind === 'blocked') {
      if (check.record) this.#login.recordRefusal(clientAddress, ErrorCode.AUTH_THROTTLED, throttledMessage(check, logins.throttle.windowMs));
      return void socket.destroy();
    }
    if (this.#open - logins.pending.size >= target.maxConnections) {
      this.#log.warn('refusing a connection: too many connections', { limit: target.maxConnections });
      return void socket.destroy();
    }
    this.#open += 1;
    const key = `${socket.remoteAddress}:${socket.remotePort}`;
    const login = logins.pending.admit(address, (why) => {
      logins.throttle.failed(address);
      this.#login.recordRefusal(clientAddress, why === 'timeout' ? ErrorCode.AUTH_TIMEOUT : ErrorCode.AUTH_EVICTED, abandonedMessage(why, logins.pending.options));
      socket.destroy();
    });
    this.#admitted.set(key, login);
    socket.once('close', () => {
      this.#open -= 1;
      this.#admitted.delete(key);
      login.done();
    });
  }

  /** The session of the connection `socket` belongs to; undefined once the refusal was sent. */
  async #session(socket: Socket, headers: IncomingMessage['headers'], reply: (s: Status) => void): Promise<KubeSession | undefined> {
    const conn = this.#conns.get(socket) ?? connOf(socket.remoteAddress, socket.remotePort, undefined);
    const result = await this.#login.authenticate(conn, headers);
    if (result.kind === 'session') return result.session;
    reply(result.status);
    return undefined;
  }

  async #onRequest(req: IncomingMessage, res: ServerResponse): Promise<void> {
    res.on('error', (err) => this.#log.debug('client response error', { error: err.message }));
    this.#inflight.add(res);
    res.once('close', () => this.#inflight.delete(res));
    // A request on a kept-alive connection during a drain is answered, then the connection closed.
    if (this.#draining.signal.aborted) res.setHeader('Connection', 'close');
    try {
      const session = await this.#session(req.socket, req.headers, (s) => sendStatus(res, s));
      if (session === undefined) return void req.resume();
      const body = await readBody(req, this.#options.target.maxBodyBytes);
      const plan = await this.#engine.request(session, { method: req.method ?? 'GET', target: req.url ?? '/', headers: req.headers, body });
      if (plan.kind === 'refuse') return sendStatus(res, plan.status, plan.info);
      this.#forward(session, plan, res);
    } catch (err) {
      this.#log.error('request failed', { error: describeError(err) });
      if (!res.headersSent) sendStatus(res, failure('InternalError', 'Agate could not process the request'));
      else res.destroy();
    }
  }

  /** Sends the decided request to the API server and its answer back through the relay that fits. */
  #forward(session: KubeSession, plan: Forward, res: ServerResponse): void {
    const { upstream } = this.#options.target;
    const { command, info } = plan;
    const started = nowMicros();
    // A watch (or a log followed) lives no longer than the token: a watch ends cleanly, recorded
    // as ended by Agate because the token expired; any other answer still streaming is cut.
    const expiry = new AbortController();
    const stopExpiry = endAtTokenExpiry(this.#options.verifier, session.identity, () => (plan.watch ? expiry.abort('token expired') : res.destroy()));
    res.once('close', stopExpiry);
    const up = request({ host: upstream.server.hostname, port: upstream.server.port || 443, method: plan.method, path: plan.path, agent: upstream.agent, headers: plan.headers });
    let clientGone = false;
    res.once('close', () => {
      clientGone = !res.writableFinished;
      up.destroy();
    });
    up.on('error', (err) => {
      if (res.writableEnded) return; // the response was complete, or withheld on purpose
      if (clientGone && !res.headersSent) return this.#engine.clientGone(session, command);
      const status = this.#engine.upstreamFailed(session, command, info, err);
      if (!res.headersSent) sendStatus(res, status, info);
      else res.destroy();
    });
    up.on('response', (upRes) => {
      const relay = plan.watch && upRes.statusCode === 200 ? relayWatch : plan.client !== undefined || plan.rewrite !== undefined ? relayMasked : relayStream;
      relay({ session, command, upRes, res, client: plan.client, rewrite: plan.rewrite, started, info, target: this.#options.target, log: this.#log, stop: plan.watch ? AbortSignal.any([this.#draining.signal, expiry.signal]) : this.#draining.signal });
    });
    up.end(plan.body);
  }

  // ---- upgrades (exec, attach, port-forward) ------------------------------------------------

  async #onUpgrade(req: IncomingMessage, socket: Socket, head: Buffer): Promise<void> {
    socket.on('error', (err) => this.#log.debug('upgrade socket error', { error: err.message }));
    this.#upgraded.add(socket);
    socket.once('close', () => this.#upgraded.delete(socket));
    const reply = (s: Status) => writeRawStatus(socket, s);
    try {
      const session = await this.#session(req.socket, req.headers, reply);
      if (session === undefined) return;
      const plan = await this.#engine.upgrade(session, { method: req.method ?? 'GET', target: req.url ?? '/', headers: req.headers, rawHeaders: req.rawHeaders, body: Buffer.alloc(0) });
      if (plan.kind === 'refuse') return reply(plan.status);
      const tap = plan.read === undefined ? undefined : channelTap(session, plan.command, this.#options.target.recording, plan.read);
      // An exec, attach or port-forward stream is cut when the token expires.
      const stopExpiry = endAtTokenExpiry(this.#options.verifier, session.identity, () => socket.destroy());
      const outcome = await relayUpgrade(socket, head, plan.head, this.#options.target.upstream, tap).finally(stopExpiry);
      const status = this.#engine.upgraded(session, plan.command, plan.info, outcome, tap?.finish());
      if (status !== undefined) reply(status);
    } catch (err) {
      this.#log.error('upgrade failed', { error: describeError(err) });
      socket.destroy();
    }
  }
}

const NO_BODY = Buffer.alloc(0);

/** Reads the whole request body, or undefined (the rest discarded) when it exceeds `max`. */
function readBody(req: IncomingMessage, max: number): Promise<Buffer | undefined> | Buffer {
  // A request with neither header has no body (RFC 9112 §6.3), and Node's parser frames it so:
  // most requests (every get, list, watch) go on without waiting for the stream's end, a few
  // turns of the event loop on the critical path. Node discards the empty stream with the answer.
  const length = req.headers['content-length'];
  if (req.headers['transfer-encoding'] === undefined && (length === undefined || length === '0')) return NO_BODY;
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

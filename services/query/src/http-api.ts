import type { Bus } from '../../../core/src/bus/bus.js';
import { approvalRoutes } from './routes/approvals.js';
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import { createServer as createHttpsServer } from 'node:https';
import type { AddressInfo, Socket } from 'node:net';
import type { ConsoleConfig } from '../../../core/src/config.js';
import { AgateError, AuthenticationError, ErrorCode, describeError } from '../../../core/src/errors.js';
import { problemsOf, type Readiness } from '../../../core/src/ops/readiness.js';
import type { TokenVerifier } from '../../../core/src/identity/oidc.js';
import type { Logger } from '../../../core/src/log.js';
import { abandonedMessage, type LoginGuard, type PendingLogin } from '../../../core/src/logins/pending.js';
import { sourceAddress, throttledMessage } from '../../../core/src/logins/throttle.js';
import type { Store } from '../../../core/src/store/store.js';
import type { EventCodec } from '../../../schemas/src/codec.js';
import type { Identity } from '../../../schemas/src/events.js';
import type { ApiRefusal } from './auth-record.js';
import { Console } from './console/console.js';
import { allows, type Role } from './roles.js';
import { compileRoutes, formatOf, match, MethodNotAllowed, readBody, send, sendReply } from './router.js';
import { commandRoutes } from './routes/commands.js';
import { exportRoutes } from './routes/export.js';
import { FactsIndex } from './facts-index.js';
import { openApiText } from './openapi/document.js';
import { ledgerRoutes, type LedgerVerifySources } from './routes/ledger.js';
import { sessionRoutes } from './routes/sessions.js';
import { sqlRoutes } from './routes/sql.js';
import type { AnalystSql } from './sql-endpoint.js';
import { policyRoutes } from './routes/policy.js';
import { terminateRoutes } from './routes/terminate.js';
import type { LiveSessions } from '../../ingress-proxy/src/live-sessions.js';
import type { SessionEnds } from './session-ends.js';
import type { PolicyInForce } from '../../policy/src/in-force.js';

interface QueryApiOptions {
  store: Store;
  codec: EventCodec;
  verifier: TokenVerifier;
  /** Decides whether a verified identity may use the API at all (`query.require_claims`). */
  authorize: (identity: Identity) => boolean;
  /** The identity's roles (`query.roles`); routes need a role that grants their permission. */
  roles: (identity: Identity) => Set<Role>;
  /** Runs analyst SQL (`POST /v1/sql`): sandboxed on the embedded engine (sql-endpoint.ts). */
  analystSql: AnalystSql;
  logger: Logger;
  /** Where approvers' answers are published; without it the approval routes answer 503. */
  bus?: Bus;
  /** Serve HTTPS with this certificate and key instead of plain HTTP. */
  tls?: { cert: Buffer; key: Buffer };
  /** Connections still logging in (cap, deadline) and the process's failed-login throttle. */
  logins: LoginGuard;
  /** Records each refused login (a bad token, a throttled address, a connection that timed out). */
  recordRefusal: (refusal: ApiRefusal) => void;
  /** What /healthz and /readyz report on: the components of this process (without it, both are ok). */
  readiness?: Readiness;
  /** Checkpoints `GET /v1/ledger/verify` checks the store against (ledgerRoutes). */
  ledgerVerify?: LedgerVerifySources;
  /** The web console under /ui/ (`console:` in agate.yaml); without it /ui/ answers 404. */
  console?: ConsoleConfig;
  /** The policy in force, for /v1/policy (rules, try a command, backtest); without it those answer 503. */
  policy?: PolicyInForce;
  /** The live sessions of the proxies in this process, for POST /v1/sessions/:id/terminate; without it that answers 503. */
  liveSessions?: LiveSessions;
  /** Distributed mode: terminate sessions held by proxies in other processes over the bus (SessionTerminationRequested). */
  sessionEnds?: SessionEnds;
}

/** How often the statement facts behind agate.activity are brought level with the ledger. */
const FACTS_INTERVAL_MS = 5000;

/** Routes served to anyone, before any token is looked at. */
const PUBLIC_PATHS = ['/healthz', '/readyz', '/openapi.json'];

/**
 * The query service's HTTP API. Every route but /healthz, /readyz and /openapi.json needs a bearer OIDC
 * token from a trusted issuer; routes answer JSON, NDJSON or CSV (`?format=` or `Accept`).
 */
export class QueryApi {
  readonly #server: Server;
  readonly #routes;
  readonly #facts: FactsIndex;
  #stopFacts: (() => Promise<void>) | undefined;
  readonly #openapi: string;
  /** Each connection's pending login, until its first request that is authenticated or needs no token. */
  readonly #logins = new WeakMap<Socket, PendingLogin>();
  readonly #console: Console | undefined;

  constructor(private readonly options: QueryApiOptions) {
    const { store, codec } = options;
    this.#facts = new FactsIndex(store);
    // Generated from the routes' zod descriptions (openapi/operations.ts), as committed in services/query/openapi.json.
    this.#openapi = openApiText();
    this.#console = options.console === undefined ? undefined : new Console({
      config: options.console, store, logger: options.logger, bus: options.bus,
      secure: options.tls !== undefined || [options.console.oidc?.redirect_url, options.console.saml?.acs_url].some((u) => u?.startsWith('https:')),
      serveRoute: (req, res, path, query, who, body) => this.#serve(req, res, path, query, async () => who, body),
    });
    this.#routes = compileRoutes([...sessionRoutes(store), ...commandRoutes(store), ...sqlRoutes(options.analystSql, this.#facts), ...exportRoutes(store), ...ledgerRoutes(store, codec, options.ledgerVerify), ...approvalRoutes(store, options.bus, (id) => this.#console?.unstoredRequest(id)), ...policyRoutes(store, options.policy), ...terminateRoutes(options.liveSessions, options.bus === undefined || options.sessionEnds === undefined ? undefined : { bus: options.bus, ends: options.sessionEnds, store }, options.logger)]);
    const timeoutMs = options.logins.pending.options.timeoutMs;
    const handler = (req: IncomingMessage, res: ServerResponse) => void this.#handle(req, res);
    // Headers must arrive within the login deadline (checked every second), a whole request within a minute.
    const limits = { maxHeaderSize: 64 * 1024, headersTimeout: timeoutMs, requestTimeout: Math.max(60_000, timeoutMs), connectionsCheckingInterval: 1000 };
    this.#server = options.tls === undefined
      ? createServer(limits, handler)
      : createHttpsServer({ ...limits, cert: options.tls.cert, key: options.tls.key, minVersion: 'TLSv1.2' }, handler);
    // For HTTPS too, 'connection' is the TCP socket, before the TLS handshake: admitted like any login.
    this.#server.on('connection', (socket: Socket) => this.#admit(socket));
    // Node's default answer to an unparsable request destroys the socket while the client may
    // still be sending (seen as a reset); answer with a real status and close gracefully instead.
    this.#server.on('clientError', (err: NodeJS.ErrnoException, socket) => {
      if (!socket.writable) return void socket.destroy();
      const [status, code, message] = clientErrorAnswer(err.code);
      const body = JSON.stringify({ error: { code, message } });
      socket.end(`HTTP/1.1 ${status}\r\ncontent-type: application/json\r\ncontent-length: ${Buffer.byteLength(body)}\r\nconnection: close\r\n\r\n${body}`);
      socket.resume();
    });
  }

  /** Every method and path this API answers (the console's own /ui/ routes aside). */
  routeTable(): Array<{ method: string; path: string }> {
    return [...PUBLIC_PATHS.map((path) => ({ method: 'GET', path })), ...this.#routes.map(({ method, path }) => ({ method, path }))];
  }

  async listen(host: string, port: number): Promise<AddressInfo> {
    await this.#console?.start();
    const address = await new Promise<AddressInfo>((resolve, reject) => {
      this.#server.once('error', reject);
      this.#server.listen(port, host, () => resolve(this.#server.address() as AddressInfo));
    });
    // A store that grew while the service was down is indexed now, not by the first analyst query.
    this.#stopFacts ??= this.#facts.follow(FACTS_INTERVAL_MS, (err) => this.options.logger.warn('indexing statement facts failed; analyst SQL will retry', { error: describeError(err) }));
    return address;
  }

  async close(): Promise<void> {
    this.#server.closeAllConnections();
    await new Promise<void>((resolve) => this.#server.close(() => resolve()));
    await this.#console?.close();
    await this.#stopFacts?.();
  }

  /**
   * A throttled address is dropped; every other connection holds one of `logins.max_pending`
   * slots until its first request that logs in (or needs no token), within `logins.timeout_ms`.
   */
  #admit(socket: Socket): void {
    const { pending, throttle } = this.options.logins;
    const address = sourceAddress(socket.remoteAddress);
    const check = throttle.check(address);
    const clientAddress = `${address}:${socket.remotePort ?? 0}`;
    if (check.kind === 'blocked') {
      if (check.record) this.options.recordRefusal({ clientAddress, reasonCode: ErrorCode.AUTH_THROTTLED, message: throttledMessage(check, throttle.windowMs), request: '' });
      return void socket.destroy();
    }
    const login = pending.admit(address, (why) => {
      throttle.failed(address);
      const reasonCode = why === 'timeout' ? ErrorCode.AUTH_TIMEOUT : ErrorCode.AUTH_EVICTED;
      this.options.recordRefusal({ clientAddress, reasonCode, message: abandonedMessage(why, pending.options), request: '' });
      socket.destroy();
    });
    this.#logins.set(socket, login);
    socket.once('close', () => login.done());
  }

  async #handle(req: IncomingMessage, res: ServerResponse): Promise<void> {
    this.#logins.get(req.socket)?.progressed();
    const url = new URL(req.url ?? '/', 'http://agate');
    const path = url.pathname;
    const get = req.method === 'GET';
    // Requests that need no token, and the console (its own sign-in), end the pending login.
    const ui = this.#console !== undefined && (path === '/ui' || path.startsWith('/ui/'));
    if (ui || (get && PUBLIC_PATHS.includes(path))) this.#logins.get(req.socket)?.done();
    if (get && (path === '/healthz' || path === '/readyz')) {
      // Liveness fails only for components that stopped; readiness for any problem.
      const { readiness } = this.options;
      const report = readiness === undefined ? { ready: true, components: {} } : path === '/healthz' ? await readiness.liveness() : await readiness.report();
      const body = report.ready ? { status: 'ok' } : { status: 'unavailable', problems: problemsOf(report) };
      return send(res, report.ready ? 200 : 503, 'application/json; charset=utf-8', JSON.stringify(body));
    }
    if (get && path === '/openapi.json') return send(res, 200, 'application/json; charset=utf-8', this.#openapi);
    if (ui) return this.#console!.handle(req, res, url);
    await this.#serve(req, res, url.pathname, url.searchParams, async () => {
      const identity = await this.#authenticate(req);
      return { identity, roles: this.options.roles(identity) };
    });
  }

  /** Runs the route at `path` for whoever `who` names (a bearer token here, a console session there). */
  async #serve(req: IncomingMessage, res: ServerResponse, path: string, query: URLSearchParams, who: () => Promise<{ identity: Identity; roles: ReadonlySet<Role> }>, body?: Buffer): Promise<void> {
    const abort = new AbortController();
    res.on('close', () => abort.abort());
    try {
      if (PUBLIC_PATHS.includes(path)) throw new MethodNotAllowed(req.method ?? '', path, ['GET']);
      const { route, params } = match(this.#routes, req.method ?? 'GET', path);
      const { identity, roles } = await who();
      if (!allows(roles, route.permission)) {
        throw new AgateError(ErrorCode.API_FORBIDDEN, `identity ${identity.subject} has no role that may ${route.permission} (roles: ${[...roles].join(', ') || 'none'})`);
      }
      const format = formatOf(req, query);
      const contentType = req.headers['content-type']?.split(';')[0]?.trim().toLowerCase() || undefined;
      const readRequestBody = body === undefined ? (max: number) => readBody(req, max) : async () => body;
      const reply = await route.handler({ params, query, identity, roles, format, contentType, body: readRequestBody, signal: abort.signal });
      await sendReply(res, format, reply);
    } catch (err) {
      const status = statusOf(err);
      if (status >= 500) this.options.logger.error('query API request failed', { path, error: describeError(err) });
      const code = err instanceof AgateError ? err.code : 'INTERNAL';
      if (status === 401) res.setHeader('WWW-Authenticate', 'Bearer realm="agate"');
      if (err instanceof MethodNotAllowed) res.setHeader('Allow', err.allow.join(', '));
      if (res.headersSent) return void res.destroy();
      const message = status >= 500 ? 'internal error; see the service log' : (err as Error).message;
      send(res, status, 'application/json; charset=utf-8', JSON.stringify({ error: { code, message } }));
    }
  }

  async #authenticate(req: IncomingMessage): Promise<Identity> {
    const { throttle } = this.options.logins;
    const address = sourceAddress(req.socket.remoteAddress);
    const clientAddress = `${address}:${req.socket.remotePort ?? 0}`;
    const request = `${req.method ?? 'GET'} ${(req.url ?? '/').split('?')[0]}`;
    const check = throttle.check(address);
    if (check.kind === 'blocked') {
      const message = throttledMessage(check, throttle.windowMs);
      if (check.record) this.options.recordRefusal({ clientAddress, reasonCode: ErrorCode.AUTH_THROTTLED, message, request });
      throw new AgateError(ErrorCode.AUTH_THROTTLED, `Agate refused the request: ${message}`);
    }
    const header = req.headers.authorization ?? '';
    const m = /^Bearer\s+(\S+)$/i.exec(header);
    try {
      if (m === null) throw new AgateError(ErrorCode.API_UNAUTHORIZED, 'a bearer token is required (Authorization: Bearer <OIDC token>)');
      const identity = await this.options.verifier.verify(m[1]!);
      if (!this.options.authorize(identity)) throw new AgateError(ErrorCode.API_UNAUTHORIZED, `identity ${identity.subject} may not read the audit trail`);
      this.#logins.get(req.socket)?.done();
      return identity;
    } catch (err) {
      // A verifier outage (retriable) is not the client's failure.
      if (err instanceof AgateError && !err.retriable) {
        throttle.failed(address);
        this.options.recordRefusal({ clientAddress, reasonCode: err.code, message: err.message, request, token: m?.[1] });
      }
      throw err;
    }
  }
}

/**
 * What a request Node's parser refused gets: a method HTTP does not define (or not in upper case,
 * methods being case-sensitive) is 501 as RFC 9110 9.1 asks, never mistaken for a malformed request.
 */
function clientErrorAnswer(parserCode: string | undefined): [status: string, code: ErrorCode, message: string] {
  if (parserCode === 'HPE_HEADER_OVERFLOW') return ['431 Request Header Fields Too Large', ErrorCode.API_BAD_REQUEST, 'the request line or headers are too large (64 KiB at most)'];
  if (parserCode === 'HPE_INVALID_METHOD') return ['501 Not Implemented', ErrorCode.API_METHOD_NOT_ALLOWED, 'unknown request method; this API answers GET and POST'];
  return ['400 Bad Request', ErrorCode.API_BAD_REQUEST, 'malformed HTTP request'];
}

const STATUS: Partial<Record<ErrorCode, number>> = {
  [ErrorCode.API_UNAUTHORIZED]: 401,
  [ErrorCode.AUTH_THROTTLED]: 429,
  [ErrorCode.API_FORBIDDEN]: 403,
  [ErrorCode.API_NOT_FOUND]: 404,
  [ErrorCode.API_BAD_REQUEST]: 400,
  [ErrorCode.API_NOT_ACCEPTABLE]: 406,
  [ErrorCode.API_CONFLICT]: 409,
  [ErrorCode.API_METHOD_NOT_ALLOWED]: 405,
  [ErrorCode.API_UNAVAILABLE]: 503,
  [ErrorCode.API_TIMEOUT]: 504,
  [ErrorCode.SQL_INVALID]: 400,
  [ErrorCode.SQL_REFUSED]: 400,
  [ErrorCode.SQL_READ_ONLY]: 403,
  [ErrorCode.SQL_LIMIT_EXCEEDED]: 422,
  [ErrorCode.SQL_SANDBOX_UNAVAILABLE]: 503,
};

function statusOf(err: unknown): number {
  if (err instanceof AuthenticationError) return err.retriable ? 503 : 401;
  if (!(err instanceof AgateError)) return 500;
  return STATUS[err.code] ?? 500;
}

import type { Bus } from '../../../core/src/bus/bus.js';
import { approvalRoutes } from './routes/approvals.js';
import { readFileSync } from 'node:fs';
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import { createServer as createHttpsServer } from 'node:https';
import type { AddressInfo } from 'node:net';
import { join } from 'node:path';
import type { ConsoleConfig, QuerySqlConfig } from '../../../core/src/config.js';
import { AgateError, AuthenticationError, ErrorCode, describeError } from '../../../core/src/errors.js';
import type { TokenVerifier } from '../../../core/src/identity/oidc.js';
import type { Logger } from '../../../core/src/log.js';
import { packageRoot } from '../../../core/src/package-root.js';
import type { Store } from '../../../core/src/store/store.js';
import type { EventCodec } from '../../../schemas/src/codec.js';
import type { Identity } from '../../../schemas/src/events.js';
import { Console } from './console/console.js';
import { allows, type Role } from './roles.js';
import { compileRoutes, formatOf, match, readBody, send, sendReply } from './router.js';
import { commandRoutes } from './routes/commands.js';
import { exportRoutes } from './routes/export.js';
import { ledgerRoutes } from './routes/ledger.js';
import { sessionRoutes } from './routes/sessions.js';
import { sqlRoutes } from './routes/sql.js';

export interface QueryApiOptions {
  store: Store;
  codec: EventCodec;
  verifier: TokenVerifier;
  /** Decides whether a verified identity may use the API at all (`query.require_claims`). */
  authorize: (identity: Identity) => boolean;
  /** The identity's roles (`query.roles`); routes need a role that grants their permission. */
  roles: (identity: Identity) => Set<Role>;
  sqlLimits: QuerySqlConfig;
  logger: Logger;
  /** Where approvers' answers are published; without it the approval routes answer 503. */
  bus?: Bus;
  /** Serve HTTPS with this certificate and key instead of plain HTTP. */
  tls?: { cert: Buffer; key: Buffer };
  /** The web console under /ui/ (`console:` in agate.yaml); without it /ui/ answers 404. */
  console?: ConsoleConfig;
}

/** The OpenAPI document, kept in the repository and served as-is at /openapi.json. */
export const OPENAPI_PATH = join('services', 'query', 'openapi.json');

/**
 * The query service's HTTP API. Every route but /healthz and /openapi.json needs a bearer OIDC
 * token from a trusted issuer; routes answer JSON, NDJSON or CSV (`?format=` or `Accept`).
 */
export class QueryApi {
  readonly #server: Server;
  readonly #routes;
  readonly #openapi: string;
  readonly #console: Console | undefined;

  constructor(private readonly options: QueryApiOptions) {
    const { store, codec } = options;
    this.#openapi = readFileSync(join(packageRoot(), OPENAPI_PATH), 'utf8');
    this.#console = options.console === undefined ? undefined : new Console({
      config: options.console, store, logger: options.logger, bus: options.bus,
      secure: options.tls !== undefined || options.console.oidc.redirect_url.startsWith('https:'),
      serveRoute: (req, res, path, query, who, body) => this.#serve(req, res, path, query, async () => who, body),
    });
    this.#routes = compileRoutes([...sessionRoutes(store), ...commandRoutes(store), ...sqlRoutes(store, options.sqlLimits), ...exportRoutes(store), ...ledgerRoutes(store, codec), ...approvalRoutes(store, options.bus, (id) => this.#console?.unstoredRequest(id))]);
    const handler = (req: IncomingMessage, res: ServerResponse) => void this.#handle(req, res);
    this.#server = options.tls === undefined
      ? createServer({ maxHeaderSize: 64 * 1024 }, handler)
      : createHttpsServer({ maxHeaderSize: 64 * 1024, cert: options.tls.cert, key: options.tls.key, minVersion: 'TLSv1.2' }, handler);
    // Node's default answer to an unparsable request destroys the socket while the client may
    // still be sending (seen as a reset); answer with a real status and close gracefully instead.
    this.#server.on('clientError', (err: NodeJS.ErrnoException, socket) => {
      if (!socket.writable) return void socket.destroy();
      const tooLarge = err.code === 'HPE_HEADER_OVERFLOW';
      const body = JSON.stringify({ error: { code: ErrorCode.API_BAD_REQUEST, message: tooLarge ? 'the request line or headers are too large (64 KiB at most)' : 'malformed HTTP request' } });
      socket.end(`HTTP/1.1 ${tooLarge ? '431 Request Header Fields Too Large' : '400 Bad Request'}\r\ncontent-type: application/json\r\ncontent-length: ${Buffer.byteLength(body)}\r\nconnection: close\r\n\r\n${body}`);
      socket.resume();
    });
  }

  async listen(host: string, port: number): Promise<AddressInfo> {
    await this.#console?.start();
    return new Promise((resolve, reject) => {
      this.#server.once('error', reject);
      this.#server.listen(port, host, () => resolve(this.#server.address() as AddressInfo));
    });
  }

  async close(): Promise<void> {
    this.#server.closeAllConnections();
    await new Promise<void>((resolve) => this.#server.close(() => resolve()));
    await this.#console?.close();
  }

  async #handle(req: IncomingMessage, res: ServerResponse): Promise<void> {
    const url = new URL(req.url ?? '/', 'http://agate');
    if (url.pathname === '/healthz' && req.method === 'GET') return send(res, 200, 'application/json; charset=utf-8', '{"status":"ok"}');
    if (url.pathname === '/openapi.json' && req.method === 'GET') return send(res, 200, 'application/json; charset=utf-8', this.#openapi);
    if ((url.pathname === '/ui' || url.pathname.startsWith('/ui/')) && this.#console !== undefined) return this.#console.handle(req, res, url);
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
      const { route, params } = match(this.#routes, req.method ?? 'GET', path);
      const { identity, roles } = await who();
      if (!allows(roles, route.permission)) {
        throw new AgateError(ErrorCode.API_FORBIDDEN, `identity ${identity.subject} has no role that may ${route.permission} (roles: ${[...roles].join(', ') || 'none'})`);
      }
      const format = formatOf(req, query);
      const readRequestBody = body === undefined ? (max: number) => readBody(req, max) : async () => body;
      const reply = await route.handler({ params, query, identity, roles, format, body: readRequestBody, signal: abort.signal });
      await sendReply(res, format, reply);
    } catch (err) {
      const status = statusOf(err);
      if (status >= 500) this.options.logger.error('query API request failed', { path, error: describeError(err) });
      const code = err instanceof AgateError ? err.code : 'INTERNAL';
      if (status === 401) res.setHeader('WWW-Authenticate', 'Bearer realm="agate"');
      if (res.headersSent) return void res.destroy();
      const message = status >= 500 ? 'internal error; see the service log' : (err as Error).message;
      send(res, status, 'application/json; charset=utf-8', JSON.stringify({ error: { code, message } }));
    }
  }

  async #authenticate(req: IncomingMessage): Promise<Identity> {
    const header = req.headers.authorization ?? '';
    const m = /^Bearer\s+(\S+)$/i.exec(header);
    if (m === null) throw new AgateError(ErrorCode.API_UNAUTHORIZED, 'a bearer token is required (Authorization: Bearer <OIDC token>)');
    const identity = await this.options.verifier.verify(m[1]!);
    if (!this.options.authorize(identity)) throw new AgateError(ErrorCode.API_UNAUTHORIZED, `identity ${identity.subject} may not read the audit trail`);
    return identity;
  }
}

const STATUS: Partial<Record<ErrorCode, number>> = {
  [ErrorCode.API_UNAUTHORIZED]: 401,
  [ErrorCode.API_FORBIDDEN]: 403,
  [ErrorCode.API_NOT_FOUND]: 404,
  [ErrorCode.API_BAD_REQUEST]: 400,
  [ErrorCode.API_NOT_ACCEPTABLE]: 406,
  [ErrorCode.API_CONFLICT]: 409,
  [ErrorCode.API_UNAVAILABLE]: 503,
  [ErrorCode.SQL_INVALID]: 400,
  [ErrorCode.SQL_REFUSED]: 400,
  [ErrorCode.SQL_READ_ONLY]: 403,
  [ErrorCode.SQL_LIMIT_EXCEEDED]: 422,
};

function statusOf(err: unknown): number {
  if (err instanceof AuthenticationError) return err.retriable ? 503 : 401;
  if (!(err instanceof AgateError)) return 500;
  return STATUS[err.code] ?? 500;
}

import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { AgateError, AuthenticationError, ErrorCode, describeError } from '../../../core/src/errors.js';
import type { TokenVerifier } from '../../../core/src/identity/oidc.js';
import type { Logger } from '../../../core/src/log.js';
import type { Store } from '../../../core/src/store/store.js';
import type { EventCodec } from '../../../schemas/src/codec.js';
import type { Identity } from '../../../schemas/src/events.js';
import { ledgerRoutes } from '../../ledger/src/api.js';
import { listChains, verifyChain } from '../../ledger/src/verify.js';
import { getSession, listAuthFailures, listSessions, sessionTimeline } from './queries.js';

export interface QueryApiOptions {
  store: Store;
  codec: EventCodec;
  verifier: TokenVerifier;
  /** Decides whether a verified identity may read the audit trail. */
  authorize: (identity: Identity) => boolean;
  logger: Logger;
}

type Handler = (params: Record<string, string>, query: URLSearchParams) => Promise<unknown>;

/**
 * The query service's HTTP API (JSON). Every route needs a bearer OIDC token from a trusted
 * issuer whose claims satisfy `query.require_claims`.
 */
export class QueryApi {
  readonly #server: Server;
  readonly #routes: { method: string; pattern: RegExp; keys: string[]; handler: Handler }[] = [];

  constructor(private readonly options: QueryApiOptions) {
    const { store, codec } = options;
    this.#route('GET', '/v1/sessions', async (_p, q) => {
      const limit = intParam(q, 'limit', 100, 1, 1000);
      const sessions = await listSessions(store, { limit, subject: q.get('subject') ?? undefined, target: q.get('target') ?? undefined, before: q.get('before') ?? undefined });
      return { sessions, next_before: sessions.length === limit ? sessions[sessions.length - 1]!.opened_at : null };
    });
    this.#route('GET', '/v1/sessions/:id', async ({ id }) => {
      const session = await getSession(store, id!);
      if (session === undefined) throw new AgateError(ErrorCode.API_NOT_FOUND, `no session ${id}`);
      return { session, commands: await sessionTimeline(store, id!) };
    });
    this.#route('GET', '/v1/sessions/:id/commands', async ({ id }) => ({ commands: await sessionTimeline(store, id!) }));
    this.#route('GET', '/v1/auth-failures', async (_p, q) => ({ auth_failures: await listAuthFailures(store, intParam(q, 'limit', 100, 1, 1000)) }));
    this.#route('GET', '/v1/ledger/verify', async () => {
      const chains = await Promise.all((await listChains(store)).map((c) => verifyChain(store, codec, c)));
      return { ok: chains.every((c) => c.ok), chains };
    });
    for (const r of ledgerRoutes(store)) this.#route('GET', r.path, r.handler);
    this.#server = createServer((req, res) => void this.#handle(req, res));
  }

  listen(host: string, port: number): Promise<AddressInfo> {
    return new Promise((resolve, reject) => {
      this.#server.once('error', reject);
      this.#server.listen(port, host, () => resolve(this.#server.address() as AddressInfo));
    });
  }

  close(): Promise<void> {
    this.#server.closeAllConnections();
    return new Promise((resolve) => this.#server.close(() => resolve()));
  }

  #route(method: string, path: string, handler: Handler): void {
    const keys: string[] = [];
    const pattern = new RegExp('^' + path.replace(/:(\w+)/g, (_m, k: string) => (keys.push(k), '([^/]+)')) + '$');
    this.#routes.push({ method, pattern, keys, handler });
  }

  async #handle(req: IncomingMessage, res: ServerResponse): Promise<void> {
    const url = new URL(req.url ?? '/', 'http://agate');
    try {
      if (url.pathname === '/healthz') return send(res, 200, { status: 'ok' });
      const route = this.#routes.find((r) => r.method === req.method && r.pattern.test(url.pathname));
      if (route === undefined) throw new AgateError(ErrorCode.API_NOT_FOUND, `no route ${req.method} ${url.pathname}`);
      await this.#authenticate(req);
      const match = route.pattern.exec(url.pathname)!;
      const params = Object.fromEntries(route.keys.map((k, i) => [k, decodeURIComponent(match[i + 1]!)]));
      send(res, 200, await route.handler(params, url.searchParams));
    } catch (err) {
      const status = statusOf(err);
      if (status >= 500) this.options.logger.error('query API request failed', { path: url.pathname, error: describeError(err) });
      const code = err instanceof AgateError ? err.code : 'INTERNAL';
      if (status === 401) res.setHeader('WWW-Authenticate', 'Bearer realm="agate"');
      send(res, status, { error: { code, message: status >= 500 ? 'internal error; see the service log' : (err as Error).message } });
    }
  }

  async #authenticate(req: IncomingMessage): Promise<void> {
    const header = req.headers.authorization ?? '';
    const m = /^Bearer\s+(\S+)$/i.exec(header);
    if (m === null) throw new AgateError(ErrorCode.API_UNAUTHORIZED, 'a bearer token is required (Authorization: Bearer <OIDC token>)');
    const identity = await this.options.verifier.verify(m[1]!);
    if (!this.options.authorize(identity)) throw new AgateError(ErrorCode.API_UNAUTHORIZED, `identity ${identity.subject} may not read the audit trail`);
  }
}

function statusOf(err: unknown): number {
  if (err instanceof AuthenticationError) return 401;
  if (!(err instanceof AgateError)) return 500;
  switch (err.code) {
    case ErrorCode.API_UNAUTHORIZED:
      return 401;
    case ErrorCode.API_NOT_FOUND:
      return 404;
    case ErrorCode.API_BAD_REQUEST:
      return 400;
    default:
      return 500;
  }
}

function intParam(q: URLSearchParams, name: string, fallback: number, min: number, max: number): number {
  const raw = q.get(name);
  if (raw === null) return fallback;
  const n = Number(raw);
  if (!Number.isInteger(n) || n < min || n > max) throw new AgateError(ErrorCode.API_BAD_REQUEST, `${name} must be an integer from ${min} to ${max}`);
  return n;
}

function send(res: ServerResponse, status: number, body: unknown): void {
  const text = JSON.stringify(body);
  res.writeHead(status, { 'content-type': 'application/json; charset=utf-8', 'content-length': Buffer.byteLength(text), 'cache-control': 'no-store' });
  res.end(text);
}

import type { IncomingMessage, ServerResponse } from 'node:http';
import { AgateError, ErrorCode } from '../../../core/src/errors.js';
import type { Identity } from '../../../schemas/src/events.js';
import { mediaType, negotiate, toCsv, toNdjson, type Format } from './render.js';
import type { Permission, Role } from './roles.js';

/** What a handler sees of one authenticated request. */
export interface RouteContext {
  params: Record<string, string>;
  query: URLSearchParams;
  identity: Identity;
  roles: ReadonlySet<Role>;
  format: Format;
  /** The request's media type (`Content-Type` without parameters, lower case), if it sent one. */
  contentType: string | undefined;
  /** The request body, refused past `maxBytes`. */
  body(maxBytes: number): Promise<Buffer>;
  /** Aborted when the client goes away, so long work can stop. */
  signal: AbortSignal;
}

/** A list of rows that renders as JSON (`{key: rows, next_cursor}`), NDJSON or CSV. */
interface RowsReply {
  kind: 'rows';
  key: string;
  rows: readonly Record<string, unknown>[];
  next_cursor: string | null;
  /** Header for CSV when no rows came back. */
  columns?: readonly string[];
  /** Extra top-level JSON fields (ignored by NDJSON and CSV). */
  extra?: Record<string, unknown>;
}

interface JsonReply {
  kind: 'json';
  body: unknown;
}

/** A response the handler writes itself (long NDJSON streams). */
interface StreamReply {
  kind: 'stream';
  write(res: ServerResponse): Promise<void>;
}

type Reply = RowsReply | JsonReply | StreamReply;

export interface Route {
  method: 'GET' | 'POST';
  /** Path with `:name` segments, e.g. `/v1/sessions/:id`. */
  path: string;
  permission: Permission;
  handler(ctx: RouteContext): Promise<Reply>;
}

interface Compiled extends Route {
  pattern: RegExp;
  keys: string[];
}

export function compileRoutes(routes: readonly Route[]): Compiled[] {
  return routes.map((r) => {
    const keys: string[] = [];
    const pattern = new RegExp('^' + r.path.replace(/:(\w+)/g, (_m, k: string) => (keys.push(k), '([^/]+)')) + '$');
    return { ...r, pattern, keys };
  });
}

/** A method the path does not answer: HTTP 405 with the methods it does answer in `Allow`. */
export class MethodNotAllowed extends AgateError {
  constructor(method: string, path: string, readonly allow: readonly string[]) {
    super(ErrorCode.API_METHOD_NOT_ALLOWED, `${method} is not supported on ${path}; use ${allow.join(', ')}`);
  }
}

export function match(routes: readonly Compiled[], method: string, path: string): { route: Compiled; params: Record<string, string> } {
  const onPath = routes.filter((r) => r.pattern.test(path));
  if (onPath.length === 0) throw new AgateError(ErrorCode.API_NOT_FOUND, `no route ${path}`);
  const route = onPath.find((r) => r.method === method);
  if (route === undefined) throw new MethodNotAllowed(method, path, [...new Set(onPath.map((r) => r.method))]);
  const m = route.pattern.exec(path)!;
  const params: Record<string, string> = {};
  for (const [i, k] of route.keys.entries()) {
    try {
      params[k] = decodeURIComponent(m[i + 1]!);
    } catch {
      throw new AgateError(ErrorCode.API_BAD_REQUEST, `path segment ${k} is not valid percent-encoding`);
    }
  }
  return { route, params };
}

export function formatOf(req: IncomingMessage, query: URLSearchParams): Format {
  return negotiate(query, req.headers.accept);
}

export function readBody(req: IncomingMessage, maxBytes: number): Promise<Buffer> {
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    let size = 0;
    // Past the cap the rest is read and dropped, so the client still gets an answer.
    req.on('data', (c: Buffer) => {
      size += c.length;
      if (size <= maxBytes) chunks.push(c);
    });
    req.on('end', () => {
      if (size > maxBytes) reject(new AgateError(ErrorCode.API_BAD_REQUEST, `the request body is larger than ${maxBytes} bytes`));
      else resolve(Buffer.concat(chunks));
    });
    req.on('error', reject);
  });
}

export async function sendReply(res: ServerResponse, format: Format, reply: Reply): Promise<void> {
  if (reply.kind === 'stream') return reply.write(res);
  if (reply.kind === 'json') return send(res, 200, 'application/json; charset=utf-8', JSON.stringify(reply.body));
  if (reply.next_cursor !== null) res.setHeader('x-next-cursor', reply.next_cursor);
  if (format === 'ndjson') return send(res, 200, mediaType('ndjson'), toNdjson(reply.rows));
  if (format === 'csv') return send(res, 200, mediaType('csv'), toCsv(reply.rows, reply.columns));
  send(res, 200, mediaType('json'), JSON.stringify({ [reply.key]: reply.rows, next_cursor: reply.next_cursor, ...reply.extra }));
}

export function send(res: ServerResponse, status: number, contentType: string, text: string): void {
  res.writeHead(status, { 'content-type': contentType, 'content-length': Buffer.byteLength(text), 'cache-control': 'no-store' });
  res.end(text);
}

import { request } from 'node:http';
import { connect } from 'node:net';
import { suite } from '../../../../test/harness/suite.js';
import * as assert from 'uvu/assert';
import { parseConfig } from '../../../../core/src/config.js';
import { TokenVerifier } from '../../../../core/src/identity/oidc.js';
import { silentLogger } from '../../../../core/src/log.js';
import { loginGuard, loginThrottle } from '../../../../core/src/logins/from-config.js';
import type { Store } from '../../../../core/src/store/store.js';
import { QueryApi } from '../http-api.js';
import { roleResolver } from '../roles.js';
import { openApiDocument, openApiPath, openApiText } from './document.js';
import { OPERATIONS } from './operations.js';

/*
 * The OpenAPI document against the running API: every route the server answers is in it with
 * its method, nothing in it is unserved, and a method a path does not take answers 405 with the
 * methods it does take. The store is never reached: no request here gets past the router.
 */
interface Ctx { api: QueryApi; base: string }
const served = suite<Ctx>('OpenAPI document and the served routes');

const emptyStore = new Proxy({}, { get: () => async () => [] }) as Store;

served.before(async (ctx) => {
  const cfg = parseConfig('identity: { dev_issuer: { enabled: true } }\n', 'agate.yaml');
  ctx.api = new QueryApi({
    store: emptyStore, codec: undefined as never, verifier: new TokenVerifier([]), authorize: () => true, roles: roleResolver(cfg.query.roles),
    analystSql: async () => { throw new Error('not reached') }, logger: silentLogger, logins: loginGuard(cfg.logins, loginThrottle(cfg.logins)), recordRefusal: () => undefined,
  });
  const addr = await ctx.api.listen('127.0.0.1', 0);
  ctx.base = `http://127.0.0.1:${addr.port}`;
});

served.after(async (ctx) => {
  await ctx.api?.close();
});

const key = (method: string, path: string) => `${method.toUpperCase()} ${openApiPath(path)}`;

served('every served route is documented, and every documented one is served', (ctx) => {
  const routes = new Set(ctx.api.routeTable().map((r) => key(r.method, r.path)));
  const doc = openApiDocument() as { paths: Record<string, Record<string, unknown>> };
  const documented = new Set(Object.entries(doc.paths).flatMap(([p, ops]) => Object.keys(ops).map((m) => key(m, p))));
  for (const r of routes) assert.ok(documented.has(r), `${r} is served but not in the OpenAPI document`);
  for (const d of documented) assert.ok(routes.has(d), `${d} is documented but not served`);
  for (const p of ['/v1/ledger/checkpoint', '/v1/ledger/checkpoints', '/v1/ledger/consistency', '/v1/ledger/proof/{event_id}']) assert.ok(doc.paths[p]?.get, p);
});

served('the served document is the generated one, and operation ids are unique', async (ctx) => {
  const res = await fetch(`${ctx.base}/openapi.json`);
  assert.is(res.status, 200);
  assert.is(await res.text(), openApiText());
  const ids = OPERATIONS.map((o) => o.operationId);
  assert.is(new Set(ids).size, ids.length);
});

served('path parameters are documented exactly as the router names them', () => {
  for (const op of OPERATIONS) {
    const inPath = [...op.path.matchAll(/:(\w+)/g)].map((m) => m[1]);
    assert.equal(Object.keys(op.params?.shape ?? {}), inPath, `${op.method} ${op.path}`);
  }
});

/** Sends one request as written, without a token; resolves with the status and the Allow header. */
function send(base: string, method: string, path: string): Promise<{ status: number; allow: string | undefined }> {
  return new Promise((resolve, reject) => {
    const req = request(`${base}${path}`, { method }, (res) => {
      res.resume();
      res.on('end', () => resolve({ status: res.statusCode ?? 0, allow: res.headers.allow }));
    });
    req.on('error', reject);
    req.end();
  });
}

served('a method a path does not take answers 405 naming the ones it does, before any token is asked for', async (ctx) => {
  const byPath = new Map<string, Set<string>>();
  for (const r of ctx.api.routeTable()) (byPath.get(r.path) ?? byPath.set(r.path, new Set()).get(r.path)!).add(r.method);
  for (const [path, methods] of byPath) {
    const concrete = path.replace(/:(\w+)/g, 'x1');
    for (const method of ['GET', 'POST', 'PUT', 'DELETE', 'PATCH']) {
      if (methods.has(method)) continue;
      const { status, allow } = await send(ctx.base, method, concrete);
      assert.is(status, 405, `${method} ${concrete}`);
      assert.equal(allow?.split(', ').sort(), [...methods].sort(), `Allow of ${concrete}`);
    }
  }
});

served('a method HTTP does not define answers 501, not 400 (methods are case-sensitive)', async (ctx) => {
  const port = Number(new URL(ctx.base).port);
  for (const method of ['FOO', 'get']) {
    const statusLine = await new Promise<string>((resolve, reject) => {
      const socket = connect(port, '127.0.0.1', () => socket.write(`${method} /v1/sessions HTTP/1.1\r\nHost: agate\r\nConnection: close\r\n\r\n`));
      let text = '';
      socket.on('data', (d: Buffer) => (text += d.toString('latin1')));
      socket.on('close', () => resolve(text.split('\r\n')[0]!));
      socket.on('error', reject);
    });
    assert.is(statusLine, 'HTTP/1.1 501 Not Implemented', method);
  }
});

served.run();

import type { JWK } from 'jose';
import { loginGuard, loginThrottle } from '../../../../core/src/logins/from-config.js';
import { request } from 'node:http';
import { suite } from '../../../../test/harness/suite.js';
import * as assert from 'uvu/assert';
import { parseConfig } from '../../../../core/src/config.js';
import { localIssuer, TokenVerifier } from '../../../../core/src/identity/oidc.js';
import { silentLogger } from '../../../../core/src/log.js';
import type { Store } from '../../../../core/src/store/store.js';
import { startOidcIssuer, type OidcIssuer } from '../../../../test/harness/oidc-issuer.js';
import { QueryApi } from '../http-api.js';
import { unconfinedAnalystSql } from '../sql-endpoint.js';
import { roleResolver } from '../roles.js';
import { CONTENT_SECURITY_POLICY, REPLAY_CONTENT_SECURITY_POLICY } from './assets.js';
import { sameOrigin } from './console.js';

/*
 * The console's gate without an identity provider behind it (the sign-in itself is proven
 * against a real Keycloak in test/e2e/console.test.ts): what it serves to anyone, and that
 * nothing but its own session opens it. The store is never reached by these requests.
 */
const gate = suite<{ issuer: OidcIssuer; api: QueryApi; base: string; analystToken: string }>('console gate');

// An empty store that counts its use: the console's refusals must come before any read.
let storeCalls = 0;
const emptyStore = new Proxy({}, { get: () => async () => (storeCalls++, []) }) as Store;

gate.before(async (ctx) => {
  ctx.issuer = await startOidcIssuer();
  const cfg = parseConfig(`
identity: { issuers: [{ issuer: "${ctx.issuer.issuer}", audience: "${ctx.issuer.audience}", jwks_uri: "${ctx.issuer.jwksUri}" }] }
console:
  oidc: { issuer: "http://127.0.0.1:1/realms/nowhere", client_id: agate-console, redirect_url: "http://127.0.0.1:7480/ui/callback" }
`, 'agate.yaml');
  const jwks = ((await (await fetch(ctx.issuer.jwksUri)).json()) as { keys: JWK[] }).keys;
  const verifier = new TokenVerifier([localIssuer(ctx.issuer.issuer, ctx.issuer.audience, jwks, ['RS256', 'ES256'])]);
  ctx.api = new QueryApi({
    store: emptyStore, codec: undefined as never, verifier, authorize: () => true, roles: roleResolver(cfg.query.roles),
    analystSql: unconfinedAnalystSql(emptyStore, cfg.query.sql), logger: silentLogger, console: cfg.console,
    logins: loginGuard(cfg.logins, loginThrottle(cfg.logins)), recordRefusal: () => undefined,
  });
  const addr = await ctx.api.listen('127.0.0.1', 0);
  ctx.base = `http://127.0.0.1:${addr.port}`;
  ctx.analystToken = await ctx.issuer.mint({ sub: 'agent-with-role', agate_role: 'admin' });
});

gate.after(async (ctx) => {
  await ctx.api?.close();
  await ctx.issuer?.close();
});

gate('the page is served with a strict CSP and loads only its own script, no inline code', async (ctx) => {
  const res = await fetch(`${ctx.base}/ui/`);
  assert.is(res.status, 200);
  assert.is(res.headers.get('content-security-policy'), CONTENT_SECURITY_POLICY);
  assert.match(CONTENT_SECURITY_POLICY, "script-src 'self'");
  assert.not.match(CONTENT_SECURITY_POLICY, 'unsafe-inline');
  assert.is(res.headers.get('x-frame-options'), 'DENY');
  assert.is(res.headers.get('x-content-type-options'), 'nosniff');
  const html = await res.text();
  const scripts = [...html.matchAll(/<script([^>]*)>([\s\S]*?)<\/script>/g)];
  assert.is(scripts.length, 1);
  assert.match(scripts[0]![1]!, 'src="/ui/assets/app.js"');
  assert.is(scripts[0]![2]!.trim(), '', 'no inline script');
  assert.not.match(html, /https?:\/\//, 'no asset from another origin');
  const js = await fetch(`${ctx.base}/ui/assets/app.js`);
  assert.is(js.status, 200);
  assert.match(js.headers.get('content-type') ?? '', 'text/javascript');
});

gate('the shell replay page alone may compile WebAssembly (the player\'s terminal); the player is served by Agate', async (ctx) => {
  const res = await fetch(`${ctx.base}/ui/replay`);
  assert.is(res.status, 200);
  assert.is(res.headers.get('content-security-policy'), REPLAY_CONTENT_SECURITY_POLICY);
  // Exactly one source more than the other pages: WebAssembly, never JavaScript eval or inline code.
  assert.is(REPLAY_CONTENT_SECURITY_POLICY.replace(" 'wasm-unsafe-eval'", ''), CONTENT_SECURITY_POLICY);
  assert.not.match(CONTENT_SECURITY_POLICY, 'wasm-unsafe-eval');
  assert.not.match(REPLAY_CONTENT_SECURITY_POLICY, /'unsafe-eval'|'unsafe-inline'/);
  const html = await res.text();
  assert.not.match(html, /https?:\/\//, 'no asset from another origin');
  const [script] = [...html.matchAll(/<script[^>]*src="([^"]+)"[^>]*><\/script>/g)].map((m) => m[1]);
  assert.is(script, '/ui/assets/shell-replay.js');
  // The page's module imports the player, whose chunks import each other: every one is served.
  const pending = ['/ui/assets/shell-replay.js'];
  const seen = new Set<string>();
  while (pending.length > 0) {
    const url = pending.pop()!;
    if (seen.has(url)) continue;
    seen.add(url);
    const js = await fetch(`${ctx.base}${url}`);
    assert.is(js.status, 200, url);
    const text = await js.text();
    for (const m of text.matchAll(/(?:^|\n)\s*import\s[^'"]*['"](\.\/[^'"]+)['"]/g)) pending.push(new URL(m[1]!, `http://x${url}`).pathname);
  }
  assert.ok(seen.has('/ui/assets/asciinema-player/index.js'), [...seen].join(' '));
  assert.ok(seen.size >= 5, `the player's chunks are served (${[...seen].join(' ')})`);
  const css = await fetch(`${ctx.base}/ui/assets/asciinema-player/asciinema-player.css`);
  assert.is(css.status, 200);
  assert.match(css.headers.get('content-type') ?? '', 'text/css');
  assert.match(await css.text(), '.ap-term');
});

gate('only shipped assets are served: no path reaches the file system', async (ctx) => {
  // Sent as written (fetch would normalise the dots away).
  for (const p of ['/ui/assets/..%2f..%2fpackage.json', '/ui/assets/../../package.json', '/ui/assets/../console.ts', '/ui/assets/%2e%2e%2fconsole.ts', '/ui/assets/nope.js', '/ui/assets/']) {
    assert.is(await rawStatus(ctx.base, p), 404, p);
  }
});

gate('an agent token never opens the console, and the console answers 401 without its session', async (ctx) => {
  const before = storeCalls;
  for (const path of ['/ui/api/me', '/ui/api/v1/approvals', '/ui/api/approvals/stream']) {
    const res = await fetch(`${ctx.base}${path}`, { headers: { authorization: `Bearer ${ctx.analystToken}` } });
    assert.is(res.status, 401, path);
    assert.is(((await res.json()) as { error: { code: string } }).error.code, 'API_UNAUTHORIZED');
  }
  assert.is(storeCalls, before, 'refused before reading anything');
  // The same token does open the API it was made for, so the refusal above is the console's.
  const api = await fetch(`${ctx.base}/v1/approvals`, { headers: { authorization: `Bearer ${ctx.analystToken}` } });
  assert.is(api.status, 200);
});

gate('a forged session cookie is refused, and a state change without a session is refused before CSRF is even looked at', async (ctx) => {
  const me = await fetch(`${ctx.base}/ui/api/me`, { headers: { cookie: 'agate_console=forged' } });
  assert.is(me.status, 401);
  const post = await fetch(`${ctx.base}/ui/api/v1/approvals/x/approve`, { method: 'POST', headers: { cookie: 'agate_console=forged', 'content-type': 'application/json' }, body: '{"comment":"x"}' });
  assert.is(post.status, 401);
});

gate('a callback without a started sign-in fails closed, and an unreachable provider is a 503', async (ctx) => {
  const cb = await fetch(`${ctx.base}/ui/callback?code=abc&state=def`, { redirect: 'manual' });
  assert.is(cb.status, 401);
  // The sign-in flow's own cookie may be cleared; a session cookie is never set.
  assert.not.match(cb.headers.get('set-cookie') ?? '', /(^|,\s*)agate_console=/, 'no session cookie');
  assert.match(await cb.text(), 'unknown or expired');
  const login = await fetch(`${ctx.base}/ui/login`, { redirect: 'manual' });
  assert.is(login.status, 503);
});

gate('an Origin that is not a URL, or names another host, is another origin (a CSRF refusal, not a server error)', () => {
  assert.ok(sameOrigin('http://127.0.0.1:7480', '127.0.0.1:7480'));
  assert.not.ok(sameOrigin('http://evil.example:7480', '127.0.0.1:7480'));
  assert.not.ok(sameOrigin('http://127.0.0.1:7481', '127.0.0.1:7480'));
  for (const malformed of ['not a url', 'http://[::1', '://127.0.0.1:7480', '']) assert.not.ok(sameOrigin(malformed, '127.0.0.1:7480'), malformed);
  assert.not.ok(sameOrigin('http://127.0.0.1:7480', undefined), 'no Host header');
});

function rawStatus(base: string, path: string): Promise<number | undefined> {
  return new Promise((resolve, reject) => {
    const req = request(`${base}/`, { path }, (res) => {
      res.resume();
      resolve(res.statusCode);
    });
    req.on('error', reject);
    req.end();
  });
}

gate.run();

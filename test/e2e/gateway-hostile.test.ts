// A hostile client of the gateway's own surface (tokens, the query API), seventh pass: what an
// issuer that is down does to the failed-login throttle. Real `agate start`, a real issuer whose
// key set answers 503, raw PostgreSQL and HTTP clients from another loopback address.
import { suite } from '../harness/suite.js';
import * as assert from 'uvu/assert';
import { connect } from 'node:net';
import { request } from 'node:http';
import { serialize } from 'pg-protocol';
import { Parser } from 'pg-protocol/dist/parser.js';
import { startAgate, waitForEvents, type AgateFixture } from './agate-fixture.js';
import type { AuthenticationFailed } from '../../schemas/src/events.js';

const test = suite<{ a: AgateFixture }>('e2e/gateway hostile client');

test.before(async (ctx) => {
  ctx.a = await startAgate({ extraYaml: 'logins: { throttle: { max_failures: 3, window_s: 60, block_s: 60, max_block_s: 60 } }\n' });
});
test.after((ctx) => ctx.a?.cleanup());

/** A PostgreSQL login from `localAddress`: 'ok', the SQLSTATE of the ErrorResponse, or 'closed'. */
async function login(a: AgateFixture, password: string, localAddress: string): Promise<string> {
  const socket = connect({ host: a.host, port: a.port, localAddress });
  socket.on('error', () => {});
  const parser = new Parser();
  return new Promise((resolve) => {
    const timer = setTimeout(() => done('timeout'), 15_000);
    const done = (o: string) => (clearTimeout(timer), socket.destroy(), resolve(o));
    socket.on('data', (chunk) => parser.parse(chunk, (m) => {
      const msg = m as { name: string; code?: string };
      if (msg.name === 'readyForQuery') done('ok');
      if (msg.name === 'error') done(msg.code ?? '');
    }));
    socket.once('close', () => done('closed'));
    socket.once('connect', () => {
      socket.write(serialize.startup({ user: 'agent', database: 'appdb' }));
      socket.write(serialize.password(password));
    });
  });
}

function apiGet(a: AgateFixture, token: string, localAddress: string): Promise<number | string> {
  return new Promise((resolve) => {
    const req = request(`${a.apiUrl}/v1/sessions`, { agent: false, localAddress, headers: { authorization: `Bearer ${token}` } }, (res) => (res.resume(), resolve(res.statusCode ?? 0)));
    req.on('error', (err: NodeJS.ErrnoException) => resolve(err.code ?? 'error'));
    req.end();
  });
}

test('an issuer whose key set is down does not get agents throttled: their valid tokens log in once it is back', async ({ a }) => {
  // Nothing has verified a token yet, so the key set is not cached: the first login fetches it.
  a.oidc.status = 503;
  const token = await a.token();
  const during: string[] = [];
  for (let i = 0; i < 5; i++) during.push(await login(a, token, '127.0.0.5'));
  for (let i = 0; i < 5; i++) during.push(String(await apiGet(a, token, '127.0.0.5')));
  // Refused while the issuer is down (PostgreSQL 28000 or 08006, HTTP 503), never as the client's fault.
  assert.ok(during.every((o) => o !== 'ok' && o !== '200'), during.join(','));
  const failures = (await waitForEvents(a, (ev) => ev.filter((e) => e.type === 'AuthenticationFailed' && e.client_address.startsWith('127.0.0.5:')).length >= 5))
    .filter((e): e is AuthenticationFailed => e.type === 'AuthenticationFailed' && e.client_address.startsWith('127.0.0.5:'));
  assert.equal([...new Set(failures.map((f) => f.reason_code))], ['AUTH_JWKS_UNAVAILABLE']);
  a.oidc.status = 200;
  // Agate asks the issuer again once its pause after a failure (10 s) is over.
  await new Promise((r) => setTimeout(r, 10_500));
  assert.is(await login(a, await a.token(), '127.0.0.5'), 'ok');
  // Authenticated (the token holds no query role: 403, not a refused login).
  assert.is(await apiGet(a, await a.token(), '127.0.0.5'), 403);
  assert.not.ok(a.events().some((e) => e.type === 'AuthenticationFailed' && e.client_address.startsWith('127.0.0.5:') && e.reason_code === 'AUTH_THROTTLED'));
});

test.run();

// The Kubernetes proxy in process, in front of a real kube-apiserver, where it must fail closed:
// no verdict in time, a response that must be masked but exceeds the buffer cap, a request body
// over its cap, impersonation. Events are read from the LocalBus the proxy publishes to.
import { suite } from '../harness/suite.js';
import * as assert from 'uvu/assert';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { Agent, request } from 'node:https';
import { connect } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { LocalBus } from '../../core/src/bus/local-bus.js';
import type { Subscription } from '../../core/src/bus/bus.js';
import { loginGuard, loginThrottle } from '../../core/src/logins/from-config.js';
import { PendingLogins } from '../../core/src/logins/pending.js';
import { LoginThrottle } from '../../core/src/logins/throttle.js';
import { parseConfig } from '../../core/src/config.js';
import { remoteIssuer, TokenVerifier } from '../../core/src/identity/oidc.js';
import { silentLogger } from '../../core/src/log.js';
import type { AgateEvent, AuthenticationFailed, Command, Response, Verdict } from '../../schemas/src/events.js';
import { MaskSets } from '../../services/ingress-proxy/src/masking/mask-sets.js';
import { KubeProxyServer, type KubeProxyOptions } from '../../services/ingress-proxy/src/k8s/server.js';
import { KubeUpstream } from '../../services/ingress-proxy/src/k8s/upstream.js';
import { CompiledPolicy } from '../../services/policy/src/engine.js';
import { PolicyService } from '../../services/policy/src/service.js';
import { startKubeApiServer, type KubeApiServer } from '../harness/kube-apiserver.js';
import { startOidcIssuer, type OidcIssuer } from '../harness/oidc-issuer.js';
import { until } from '../harness/until.js';

interface Ctx {
  kube: KubeApiServer;
  issuer: OidcIssuer;
  dir: string;
  bus: LocalBus;
  proxy: KubeProxyServer;
  port: number;
  agent: Agent;
  events: AgateEvent[];
  subscription: Subscription;
  policy?: PolicyService;
  options: KubeProxyOptions;
}

const VERDICT_TIMEOUT_MS = 800;
const BUFFER_CAP = 16 * 1024;
const BODY_CAP = 4 * 1024;

const test = suite<Ctx>('e2e/kubernetes proxy fails closed');

test.before(async (ctx) => {
  const [kube, issuer] = await Promise.all([startKubeApiServer(), startOidcIssuer({ audience: 'agate' })]);
  Object.assign(ctx, { kube, issuer, events: [] });
  ctx.dir = mkdtempSync(join(tmpdir(), 'agate-k8s-fc-'));
  ctx.bus = new LocalBus({ dir: join(ctx.dir, 'bus'), fsync: false, logger: silentLogger });
  ctx.subscription = await ctx.bus.subscribe({ group: 'test', types: ['Command', 'Verdict', 'Response', 'AuthenticationFailed'], handler: async (b) => void ctx.events.push(...b) });
  const config = parseConfig('identity: { dev_issuer: { enabled: true } }\n', 'k8s-fc.yaml');
  const masker = MaskSets.compile(config.masking, config.source).audit;
  ctx.options = {
    bus: ctx.bus, proxyId: 'k8s-fc', verdictTimeoutMs: VERDICT_TIMEOUT_MS, logger: silentLogger,
    verifier: new TokenVerifier([remoteIssuer({ issuer: issuer.issuer, audience: 'agate', algorithms: ['RS256', 'ES256'], clock_tolerance_s: 30, max_token_lifetime_s: 3600, subject_claim: 'sub', jwks_max_age_s: 60 })]),
    target: {
      name: 'cluster', upstream: await KubeUpstream.load(kube.adminKubeconfigPath, undefined, 'test'),
      tls: { cert: readFileSync(kube.other.certFile), key: readFileSync(kube.other.keyFile) },
      recording: { sampleRows: 5, valueChars: 200, audit: masker, fields: [] },
      // Every response of this target is masked for the client, so each must fit the buffer.
      maskers: new Map([['default', masker]]), maskClient: 'default',
      maxBodyBytes: BODY_CAP, maxBufferBytes: BUFFER_CAP, allowDiscovery: true, maxConnections: 100,
    },
    logins: loginGuard(config.logins, loginThrottle(config.logins)),
  };
  ctx.proxy = new KubeProxyServer(ctx.options);
  ctx.port = (await ctx.proxy.listen('127.0.0.1', 0)).port;
  ctx.agent = new Agent({ keepAlive: false, ca: readFileSync(kube.other.caFile) });
});

test.after(async (ctx) => {
  await ctx.proxy?.shutdown();
  await ctx.policy?.stop();
  await ctx.subscription?.close();
  await ctx.bus?.close();
  ctx.agent?.destroy();
  await ctx.issuer?.close();
  await ctx.kube?.stop();
  if (ctx.dir) rmSync(ctx.dir, { recursive: true, force: true });
});

interface Reply {
  status: number;
  body: string;
}

async function call(ctx: Ctx, method: string, path: string, body?: string, headers: Record<string, string> = {}): Promise<Reply> {
  const token = await ctx.issuer.mint(ctx.issuer.githubActionsClaims());
  return new Promise((resolve, reject) => {
    const req = request({ host: '127.0.0.1', port: ctx.port, method, path, agent: ctx.agent, headers: { authorization: `Bearer ${token}`, 'content-type': 'application/json', ...headers } }, (res) => {
      let text = '';
      res.setEncoding('utf8').on('data', (d: string) => (text += d));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, body: text }));
    });
    req.on('error', reject);
    req.end(body);
  });
}

const recorded = (ctx: Ctx, text: string) => until(`the response to ${text}`, () => {
  const c = ctx.events.find((e): e is Command => e.type === 'Command' && e.text === text);
  const r = c && ctx.events.find((e): e is Response => e.type === 'Response' && e.command_id === c.event_id);
  const v = c && ctx.events.find((e): e is Verdict => e.type === 'Verdict' && e.command_id === c.event_id);
  return c && r ? { command: c, response: r, verdict: v } : undefined;
});

const configMap = (name: string, size = 10) => JSON.stringify({ apiVersion: 'v1', kind: 'ConfigMap', metadata: { name }, data: { v: 'x'.repeat(size) } });

test('no policy answering: refused at the deadline, recorded, and nothing reaches the API server', async (ctx) => {
  const started = Date.now();
  const r = await call(ctx, 'POST', '/api/v1/namespaces/default/configmaps', configMap('never'));
  assert.is(r.status, 403);
  assert.ok(Date.now() - started >= VERDICT_TIMEOUT_MS);
  const status = JSON.parse(r.body);
  assert.equal([status.kind, status.reason], ['Status', 'Forbidden']);
  assert.match(status.message, `no verdict within ${VERDICT_TIMEOUT_MS} ms; refused (fail closed)`);
  const { verdict, response } = await recorded(ctx, 'POST /api/v1/namespaces/default/configmaps');
  assert.equal([verdict?.decision, verdict?.source, verdict?.rule_id], ['deny', 'deadline', 'agate.verdict-deadline']);
  assert.equal([response.status, response.error_code], ['refused', 'VERDICT_TIMEOUT']);
  const direct = await ctx.kube.kubectl(['get', 'configmap', 'never']);
  assert.match(direct.stderr, /not found/);
});

test('a masked response larger than the buffer cap is withheld; a small one is masked and delivered', async (ctx) => {
  ctx.policy = new PolicyService({ bus: ctx.bus, policy: new CompiledPolicy(parseConfig('identity: { dev_issuer: { enabled: true } }\npolicy: { default: allow }\n', 'p.yaml').policy), logger: silentLogger, staleAfterMs: 5000 });
  await ctx.policy.start();
  for (let i = 0; i < 6; i++) {
    const made = await call(ctx, 'POST', '/api/v1/namespaces/default/configmaps', configMap(`big-${i}`, 3000));
    assert.is(made.status, 201, made.body);
  }
  const big = await call(ctx, 'GET', '/api/v1/namespaces/default/configmaps');
  assert.is(big.status, 502);
  assert.match(JSON.parse(big.body).message, `Agate withheld the response: it is larger than ${BUFFER_CAP} bytes`);
  assert.not.match(big.body, 'xxxxxxxxxx');
  const { response } = await recorded(ctx, 'GET /api/v1/namespaces/default/configmaps');
  assert.equal([response.status, response.error_code], ['error', 'MASKING_FAILED']);

  const small = await call(ctx, 'GET', '/api/v1/namespaces/default/configmaps/big-0');
  assert.is(small.status, 200);
  assert.is(JSON.parse(small.body).metadata.name, 'big-0');
});

test('a request body over its cap is refused with 413 and recorded', async (ctx) => {
  const r = await call(ctx, 'POST', '/api/v1/namespaces/default/configmaps', configMap('huge', BODY_CAP + 100));
  assert.is(r.status, 413);
  assert.is(JSON.parse(r.body).reason, 'RequestEntityTooLarge');
  const { command, response } = await until('the refusal', () => {
    const cs = ctx.events.filter((e): e is Command => e.type === 'Command' && e.attributes.body_bytes === `>${BODY_CAP}`);
    const c = cs[0];
    const resp = c && ctx.events.find((e): e is Response => e.type === 'Response' && e.command_id === c.event_id);
    return c && resp ? { command: c, response: resp } : undefined;
  });
  assert.is(command.attributes.verb, 'create');
  assert.equal([response.status, response.error_code], ['refused', 'PROTOCOL_FRAME_TOO_LARGE']);
});

test('impersonation (kubectl --as) is refused and recorded', async (ctx) => {
  const r = await call(ctx, 'GET', '/api/v1/namespaces/kube-system/secrets', undefined, { 'impersonate-user': 'system:admin' });
  assert.is(r.status, 403);
  assert.match(JSON.parse(r.body).message, 'impersonation headers (kubectl --as) are not allowed');
  const { command, response } = await recorded(ctx, 'GET /api/v1/namespaces/kube-system/secrets');
  assert.is(command.attributes.impersonate, 'refused');
  assert.equal([response.status, response.error_code], ['refused', 'IMPERSONATION_REFUSED']);
});

test('logins: 200 idle sockets cannot starve a valid token; a silent one times out; repeated bad tokens are throttled (recorded once)', async (ctx) => {
  const logins = { pending: new PendingLogins({ timeoutMs: 1500, maxPending: 8 }), throttle: new LoginThrottle({ maxFailures: 3, windowMs: 60_000, blockMs: 5000, maxBlockMs: 20_000 }) };
  const upstream = await KubeUpstream.load(ctx.kube.adminKubeconfigPath, undefined, 'test');
  const guarded = new KubeProxyServer({ ...ctx.options, target: { ...ctx.options.target, upstream }, logins });
  const port = (await guarded.listen('127.0.0.1', 0)).port;
  const get = async (token: string, localAddress?: string) => new Promise<number | string>((resolve) => {
    const req = request({ host: '127.0.0.1', port, path: '/api', agent: ctx.agent, localAddress, headers: { authorization: `Bearer ${token}` } }, (res) => (res.resume(), resolve(res.statusCode ?? 0)));
    req.on('error', (err: NodeJS.ErrnoException) => resolve(err.code ?? 'error'));
    req.end();
  });
  const idle = await Promise.all(Array.from({ length: 200 }, () => new Promise<ReturnType<typeof connect>>((resolve) => {
    // From another address: its evictions count against it, not against the agent's 127.0.0.1.
    const s = connect({ port, host: '127.0.0.1', localAddress: '127.0.0.3' }, () => resolve(s));
    s.on('error', () => undefined);
  })));
  const failures = (code: string) => ctx.events.filter((e): e is AuthenticationFailed => e.type === 'AuthenticationFailed' && e.reason_code === code);
  try {
    assert.is(await get(await ctx.issuer.mint(ctx.issuer.githubActionsClaims())), 200);
    // The flood evicted its own oldest sockets until its address was throttled (recorded once).
    await until('evictions', () => (failures('AUTH_EVICTED').length >= 1 ? true : undefined));
    await until('the flood throttled', () => (failures('AUTH_THROTTLED').some((f) => f.client_address.startsWith('127.0.0.3:')) ? true : undefined));
    assert.is(failures('AUTH_THROTTLED').filter((f) => f.client_address.startsWith('127.0.0.3:')).length, 1);
    // A socket that stays silent is closed at the deadline and recorded.
    const silent = connect(port, '127.0.0.1');
    silent.on('error', () => undefined);
    const started = Date.now();
    await new Promise((r) => silent.once('close', r));
    assert.ok(Date.now() - started >= 1000, `closed after ${Date.now() - started} ms`);
    await until('the timeout record', () => (failures('AUTH_TIMEOUT').length >= 1 ? true : undefined));
    // Bad tokens from 127.0.0.2: 401 three times, then that address is refused, recorded once.
    for (let i = 0; i < 3; i++) assert.is(await get(`bad-${i}`, '127.0.0.2'), 401);
    const good = await ctx.issuer.mint(ctx.issuer.githubActionsClaims());
    for (let i = 0; i < 10; i++) assert.is(await get(good, '127.0.0.2'), 'ECONNRESET');
    assert.is(await get(good), 200, 'another address is not throttled');
    const throttled = await until('the throttle record', () => {
      const t = failures('AUTH_THROTTLED').filter((f) => f.client_address.startsWith('127.0.0.2:'));
      return t.length > 0 ? t : undefined;
    });
    await new Promise((r) => setTimeout(r, 200));
    assert.is(failures('AUTH_THROTTLED').filter((f) => f.client_address.startsWith('127.0.0.2:')).length, 1);
    assert.match(throttled[0]!.message, /3 failed logins from this address/);
  } finally {
    for (const s of idle) s.destroy();
    await guarded.shutdown();
  }
});

test.run();

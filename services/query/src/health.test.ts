import { suite } from '../../../test/harness/suite.js';
import * as assert from 'uvu/assert';
import { parseConfig } from '../../../core/src/config.js';
import { TokenVerifier } from '../../../core/src/identity/oidc.js';
import { silentLogger } from '../../../core/src/log.js';
import { loginGuard, loginThrottle } from '../../../core/src/logins/from-config.js';
import { OpsServer } from '../../../core/src/ops/ops-server.js';
import { problemProbe, READY, Readiness } from '../../../core/src/ops/readiness.js';
import type { Store } from '../../../core/src/store/store.js';
import { QueryApi } from './http-api.js';
import { roleResolver } from './roles.js';

/*
 * One health mechanism: the query API's /healthz and /readyz and the ops listener's answer from
 * the same Readiness registry, so a ledger refusing its store or a stopped consumer shows on both.
 */
interface Ctx { readiness: Readiness; api: QueryApi; ops: OpsServer; apiUrl: string; opsUrl: string; ledger?: string; consumers?: string }
const health = suite<Ctx>('health endpoints share one registry');

health.before(async (ctx) => {
  const cfg = parseConfig('identity: { dev_issuer: { enabled: true } }\n', 'agate.yaml');
  ctx.readiness = new Readiness();
  ctx.readiness.set('listener.query', READY);
  ctx.readiness.probe('ledger', problemProbe(() => ctx.ledger));
  ctx.readiness.probe('bus.consumers', problemProbe(() => ctx.consumers), { live: true });
  ctx.api = new QueryApi({
    store: new Proxy({}, { get: () => async () => [] }) as Store, codec: undefined as never, verifier: new TokenVerifier([]), authorize: () => true,
    roles: roleResolver(cfg.query.roles), analystSql: async () => { throw new Error('not reached') }, logger: silentLogger, logins: loginGuard(cfg.logins, loginThrottle(cfg.logins)),
    recordRefusal: () => undefined, readiness: ctx.readiness,
  });
  ctx.apiUrl = `http://127.0.0.1:${(await ctx.api.listen('127.0.0.1', 0)).port}`;
  ctx.ops = new OpsServer(ctx.readiness, silentLogger);
  ctx.opsUrl = `http://127.0.0.1:${(await ctx.ops.listen('127.0.0.1', 0)).port}`;
});

health.after(async (ctx) => {
  await ctx.api?.close();
  await ctx.ops?.close();
});

const get = async (url: string) => {
  const res = await fetch(url);
  return { status: res.status, body: (await res.json()) as Record<string, unknown> };
};

health('all well: both listeners ready and alive', async (ctx) => {
  for (const base of [ctx.apiUrl, ctx.opsUrl]) {
    assert.is((await get(`${base}/readyz`)).status, 200, base);
    assert.equal(await get(`${base}/healthz`), { status: 200, body: { status: 'ok' } }, base);
  }
});

health('a ledger refusing its store: not ready on both, still alive', async (ctx) => {
  ctx.ledger = 'LEDGER_STORE_BEHIND: the store holds 10 records';
  try {
    assert.equal(await get(`${ctx.apiUrl}/readyz`), { status: 503, body: { status: 'unavailable', problems: [{ component: 'ledger', problem: 'LEDGER_STORE_BEHIND: the store holds 10 records' }] } });
    const ops = await get(`${ctx.opsUrl}/readyz`);
    assert.is(ops.status, 503);
    assert.equal((ops.body.components as Record<string, unknown>).ledger, { ready: false, reason: 'LEDGER_STORE_BEHIND: the store holds 10 records' });
    for (const base of [ctx.apiUrl, ctx.opsUrl]) assert.is((await get(`${base}/healthz`)).status, 200, base);
  } finally {
    ctx.ledger = undefined;
  }
});

health('a consumer that stopped: neither ready nor alive, on both', async (ctx) => {
  ctx.consumers = 'consumer group "ledger" stopped at log position 7';
  try {
    assert.equal(await get(`${ctx.apiUrl}/healthz`), { status: 503, body: { status: 'unavailable', problems: [{ component: 'bus.consumers', problem: 'consumer group "ledger" stopped at log position 7' }] } });
    assert.is((await get(`${ctx.opsUrl}/healthz`)).status, 503);
    for (const base of [ctx.apiUrl, ctx.opsUrl]) assert.is((await get(`${base}/readyz`)).status, 503, base);
  } finally {
    ctx.consumers = undefined;
  }
});

health.run();

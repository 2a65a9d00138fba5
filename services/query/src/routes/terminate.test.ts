// The terminate route's bus path (a proxy in another process), over a real local bus: the
// request goes on the bus, the proxy holding the session ends it, and the route answers with the
// recorded reason; with no proxy acting, a 504 after the deadline and the request stays recorded.
import { suite } from '../../../../test/harness/suite.js';
import * as assert from 'uvu/assert';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { Subscription } from '../../../../core/src/bus/bus.js';
import { LocalBus } from '../../../../core/src/bus/local-bus.js';
import { AgateError, ErrorCode } from '../../../../core/src/errors.js';
import { silentLogger } from '../../../../core/src/log.js';
import type { Store } from '../../../../core/src/store/store.js';
import { nowMicros, type AgateEvent } from '../../../../schemas/src/events.js';
import { LiveSessions, type LiveSession } from '../../../ingress-proxy/src/live-sessions.js';
import { readTerminationRequests } from '../../../ingress-proxy/src/termination-requests.js';
import type { RouteContext } from '../router.js';
import { SessionEnds } from '../session-ends.js';
import { terminateRoutes } from './terminate.js';

interface Ctx { dir: string; bus: LocalBus; ends: SessionEnds; subs: Subscription[]; seen: AgateEvent[] }
const route = suite<Ctx>('terminate across processes: over the bus to the proxy holding the session');

const ADMIN = { issuer: 'https://idp.test', subject: 'root-admin', claims: {} };

/** A store that knows one live session, `s-live` (what getSession reads). */
const store = {
  async query(sql: string, params?: Record<string, unknown>) {
    const ids = (params?.ids as string[] | undefined) ?? [params?.id];
    if (!ids.includes('s-live')) return [];
    return sql.includes('q_session_stats') ? [{ session_id: 's-live', closed_at: null, commands: '1', denied: '0' }] : [{ session_id: 's-live' }];
  },
} as unknown as Store;

route.before.each(async (ctx) => {
  ctx.dir = mkdtempSync(join(tmpdir(), 'agate-terminate-'));
  ctx.bus = new LocalBus({ dir: ctx.dir, fsync: false, logger: silentLogger });
  ctx.ends = new SessionEnds(ctx.bus);
  await ctx.ends.start();
  ctx.seen = [];
  ctx.subs = [await ctx.bus.subscribe({ group: 'watch', types: ['SessionTerminationRequested', 'SessionClosed'], handler: async (b) => void ctx.seen.push(...b) })];
});

route.after.each(async (ctx) => {
  for (const s of ctx.subs) await s.close();
  await ctx.ends.close();
  await ctx.bus.close();
  rmSync(ctx.dir, { recursive: true, force: true });
});

function call(ctx: Ctx, sessionId: string, timeoutMs: number) {
  const [r] = terminateRoutes(undefined, { bus: ctx.bus, ends: ctx.ends, store, timeoutMs }, silentLogger);
  const body = Buffer.from(JSON.stringify({ reason: 'runaway  query' }));
  return r!.handler({ params: { id: sessionId }, identity: ADMIN, body: async () => body } as unknown as RouteContext);
}

async function failure(p: Promise<unknown>): Promise<AgateError> {
  try {
    await p;
  } catch (err) {
    return err as AgateError;
  }
  throw new Error('expected the route to fail');
}

route('the proxy holding the session ends it; the answer carries the recorded reason', async (ctx) => {
  // A proxy process: one live session whose end it records as a real proxy does.
  const live = new LiveSessions();
  let finish!: () => void;
  const session: LiveSession = {
    id: 's-live',
    terminate: (reason) => void ctx.bus.publish({ type: 'SessionClosed', event_id: 'closed-1', time: nowMicros(), session_id: 's-live', reason, commands: 1, duration_us: 5 }).then(() => finish()),
    finished: new Promise<void>((r) => (finish = r)),
  };
  live.add({ find: (id) => (id === 's-live' ? session : undefined) });
  ctx.subs.push(await readTerminationRequests(ctx.bus, live, silentLogger));
  const reply = (await call(ctx, 's-live', 5_000)) as { body: { reason: string; terminated: boolean } };
  const expected = 'terminated by administrator root-admin (https://idp.test): runaway query';
  assert.equal(reply.body, { session_id: 's-live', terminated: true, reason: expected });
  const request = ctx.seen.find((e) => e.type === 'SessionTerminationRequested');
  assert.ok(request && request.type === 'SessionTerminationRequested');
  assert.is(request.requested_by_subject, 'root-admin');
  assert.is(request.requested_by_issuer, 'https://idp.test');
  assert.is(request.reason, 'runaway query');
});

route('no proxy ends it in time: 504, and the request stays recorded', async (ctx) => {
  const started = Date.now();
  const err = await failure(call(ctx, 's-live', 300));
  assert.instance(err, AgateError);
  assert.is(err.code, ErrorCode.API_TIMEOUT);
  assert.match(err.message, 'is recorded');
  assert.ok(Date.now() - started >= 300);
  for (let i = 0; i < 50 && ctx.seen.length === 0; i++) await new Promise((r) => setTimeout(r, 20));
  assert.equal(ctx.seen.map((e) => e.type), ['SessionTerminationRequested']);
});

route('a session the record does not hold as live is a 404, and nothing is asked', async (ctx) => {
  const err = await failure(call(ctx, 's-gone', 300));
  assert.is(err.code, ErrorCode.API_NOT_FOUND);
  await new Promise((r) => setTimeout(r, 100));
  assert.is(ctx.seen.length, 0);
});

route.run();

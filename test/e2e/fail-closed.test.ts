// Fail closed, in process: the real PostgreSQL proxy on a real LocalBus, a real OIDC issuer and a
// real PostgreSQL, but no policy service. Without a verdict a statement is refused (and the
// refusal is recorded); without a writable audit log nothing is forwarded.
import { suite } from '../harness/suite.js';
import * as assert from 'uvu/assert';
import { randomUUID } from 'node:crypto';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import pg from 'pg';
import { parseConfig } from '../../core/src/config.js';
import { MaskSets } from '../../services/ingress-proxy/src/masking/mask-sets.js';
import { pgProxyConfigDeps } from '../../services/ingress-proxy/src/pg/from-config.js';
import { LocalBus } from '../../core/src/bus/local-bus.js';
import type { Subscription } from '../../core/src/bus/bus.js';
import { remoteIssuer, TokenVerifier } from '../../core/src/identity/oidc.js';
import { silentLogger } from '../../core/src/log.js';
import { nowMicros, type AgateEvent, type Command, type Response, type Verdict } from '../../schemas/src/events.js';
import { loginGuard, loginThrottle } from '../../core/src/logins/from-config.js';
import { PgProxyServer } from '../../services/ingress-proxy/src/pg/server.js';
import { startOidcIssuer, type OidcIssuer } from '../harness/oidc-issuer.js';
import { startPostgres, type PostgresServer } from '../harness/postgres.js';
import { loadParsers } from '../../services/policy/src/engine.js';
import { connectAgent } from '../harness/agent-client.js';
import { teardownAll } from '../harness/teardown.js';

const VERDICT_TIMEOUT_MS = 300;

interface Env {
  pg: PostgresServer;
  issuer: OidcIssuer;
  dir: string;
  bus: LocalBus;
  proxy: PgProxyServer;
  port: number;
  subscriptions: Subscription[];
  clients: pg.Client[];
}

/**
 * Starts everything a suite needs. Resources are registered in `into` as soon as they exist, so
 * `teardown` can release a half-built environment; a failed start fails every test (never skips).
 */
async function setup(into: Partial<Env>): Promise<Env> {
  into.subscriptions = [];
  into.clients = [];
  await loadParsers();
  into.dir = mkdtempSync(join(tmpdir(), 'agate-failclosed-'));
  // Started in parallel; whatever did start is registered for teardown even if the other failed.
  const [pgResult, issuerResult] = await Promise.allSettled([startPostgres(), startOidcIssuer({ audience: 'agate' })]);
  if (pgResult.status === 'fulfilled') into.pg = pgResult.value;
  if (issuerResult.status === 'fulfilled') into.issuer = issuerResult.value;
  for (const r of [pgResult, issuerResult]) if (r.status === 'rejected') throw r.reason;
  const pgServer = into.pg!;
  const issuer = into.issuer!;
  into.bus = new LocalBus({ dir: join(into.dir, 'bus'), fsync: true, logger: silentLogger });
  const verifier = new TokenVerifier([
    remoteIssuer({ issuer: issuer.issuer, audience: 'agate', algorithms: ['RS256', 'ES256'], clock_tolerance_s: 30, max_token_lifetime_s: 3600, subject_claim: 'sub', jwks_max_age_s: 60 }),
  ]);
  const cred = pgServer.users.scram;
  const config = parseConfig('identity: { dev_issuer: { enabled: true } }\n', 'fail-closed.yaml');
  into.proxy = new PgProxyServer({
    bus: into.bus, verifier, proxyId: 'e2e-fail-closed', verdictTimeoutMs: VERDICT_TIMEOUT_MS, maxMessageSize: 1 << 20, maxConnections: 50, logger: silentLogger,
    ...pgProxyConfigDeps(config, MaskSets.compile(config.masking, config.source)), logins: loginGuard(config.logins, loginThrottle(config.logins)),
    resolveTarget: (name) => (name === 'appdb' ? { host: pgServer.host, port: pgServer.port, database: pgServer.database, user: cred.user, password: cred.password } : undefined),
  });
  into.port = (await into.proxy.listen('127.0.0.1', 0)).port;
  return into as Env;
}

async function teardown(env: Partial<Env>): Promise<void> {
  await teardownAll(env.clients, [
    () => env.proxy?.shutdown(),
    ...(env.subscriptions ?? []).map((s) => () => s.close()),
    () => env.bus?.close(),
    () => env.issuer?.close(),
    () => env.pg?.stop(),
    async () => env.dir && rmSync(env.dir, { recursive: true, force: true }),
  ]);
}

async function connect(env: Env, sub: string): Promise<pg.Client> {
  const token = await env.issuer.mint(env.issuer.githubActionsClaims({ sub }));
  return connectAgent({ port: env.port, token, connectionTimeoutMillis: 10_000, track: env.clients });
}

/** The error a query rejects with; fails the test when it succeeds. */
async function queryError(client: pg.Client, sql: string): Promise<Error & { code?: string }> {
  try {
    const r = await client.query(sql);
    assert.unreachable(`"${sql}" should have been refused, but returned ${r.rowCount} rows`);
  } catch (err) {
    if ((err as Error).name === 'Assertion') throw err;
    return err as Error & { code?: string };
  }
  throw new Error('unreachable');
}

async function tableExists(env: Env, name: string): Promise<boolean> {
  return (await env.pg.psql(`SELECT to_regclass('public.${name}') IS NOT NULL`)) === 't';
}

/** Reads the bus log with a fresh consumer group until `done` holds (deadline 5 s). */
async function readLog(env: Env, done: (events: AgateEvent[]) => boolean): Promise<AgateEvent[]> {
  const events: AgateEvent[] = [];
  let finish!: () => void;
  const finished = new Promise<void>((r) => (finish = r));
  const sub = await env.bus.subscribe({
    group: `e2e-reader-${randomUUID()}`, types: ['Command', 'Verdict', 'Response'],
    handler: async (batch) => {
      events.push(...batch);
      if (done(events)) finish();
    },
  });
  env.subscriptions.push(sub);
  let timer: NodeJS.Timeout | undefined;
  const timedOut = await Promise.race([finished.then(() => false), new Promise<boolean>((r) => (timer = setTimeout(() => r(true), 5000)))]);
  clearTimeout(timer);
  await sub.close();
  if (timedOut) assert.unreachable(`the bus log did not hold the expected events within 5 s; it holds: ${JSON.stringify(events.map((e) => e.type))}`);
  return events;
}

/** The command with this text, and the verdict and response recorded for it. */
function trail(events: AgateEvent[], text: string): { command?: Command; verdicts: Verdict[]; responses: Response[] } {
  const command = events.find((e): e is Command => e.type === 'Command' && e.text === text);
  if (command === undefined) return { verdicts: [], responses: [] };
  return {
    command,
    verdicts: events.filter((e): e is Verdict => e.type === 'Verdict' && e.command_id === command.event_id),
    responses: events.filter((e): e is Response => e.type === 'Response' && e.command_id === command.event_id),
  };
}

/** A stand-in policy service that allows everything (to show the refusals are about the verdict). */
async function allowEverything(env: Env): Promise<void> {
  const sub = await env.bus.subscribe({
    group: 'e2e-allow-all', types: ['Command'],
    handler: async (batch) => {
      for (const c of batch) {
        if (c.type !== 'Command' || nowMicros() - c.time > VERDICT_TIMEOUT_MS * 1000) continue;
        await env.bus.publish({
          type: 'Verdict', event_id: randomUUID(), time: nowMicros(), session_id: c.session_id, command_id: c.event_id,
          decision: 'allow', rule_id: 'e2e-allow-all', reason: 'test stand-in', source: 'policy', policy_revision: 'e2e', mask_set: null, approval_id: null, hold_expires_at: null,
        });
      }
    },
  });
  env.subscriptions.push(sub);
}

// ---------------------------------------------------------------------------------------------

const deadline = suite('fail closed: no policy service, no verdict');
let deadlineEnv: Promise<Env>;
const deadlineParts: Partial<Env> = {};

deadline.before(() => {
  deadlineEnv = setup(deadlineParts);
  deadlineEnv.catch(() => {}); // reported by each test that awaits it
});
deadline.after(() => teardown(deadlineParts));

deadline('SELECT 1 is refused with 42501 "no verdict" after the verdict deadline', async () => {
  const env = await deadlineEnv;
  const client = await connect(env, 'repo:acme/app:ref:refs/heads/main');
  const started = Date.now();
  const err = await queryError(client, 'SELECT 1');
  const elapsed = Date.now() - started;
  assert.is(err.code, '42501', err.message);
  assert.match(err.message, 'no verdict');
  assert.match(err.message, `no verdict within ${VERDICT_TIMEOUT_MS} ms`);
  assert.ok(elapsed >= VERDICT_TIMEOUT_MS - 10, `refused after ${elapsed} ms, before the ${VERDICT_TIMEOUT_MS} ms deadline`);
  assert.ok(elapsed < VERDICT_TIMEOUT_MS + 3000, `refused only after ${elapsed} ms`);
});

deadline('the log holds the Command, a deadline Verdict (deny) and a refused Response', async () => {
  const env = await deadlineEnv;
  const events = await readLog(env, (evs) => {
    const t = trail(evs, 'SELECT 1');
    return t.verdicts.length > 0 && t.responses.length > 0;
  });
  const t = trail(events, 'SELECT 1');
  assert.ok(t.command, 'a Command event for SELECT 1');
  assert.is(t.command!.target, 'appdb');
  assert.is(t.command!.identity.subject, 'repo:acme/app:ref:refs/heads/main');
  assert.is(t.command!.sequence, 1);
  assert.is(t.verdicts.length, 1, 'exactly one verdict');
  const v = t.verdicts[0]!;
  assert.is(v.source, 'deadline');
  assert.is(v.decision, 'deny');
  assert.is(v.rule_id, 'agate.verdict-deadline');
  assert.is(v.session_id, t.command!.session_id);
  assert.is(t.responses.length, 1, 'exactly one response');
  const r = t.responses[0]!;
  assert.is(r.status, 'refused');
  assert.is(r.error_code, '42501');
  assert.is(r.rows, 0);
  // Write-ahead order: the command precedes its verdict and response in the log.
  const idx = (id: string) => events.findIndex((e) => e.event_id === id);
  assert.ok(idx(t.command!.event_id) < idx(v.event_id) && idx(v.event_id) < idx(r.event_id));
});

deadline('a statement without a verdict never reaches PostgreSQL', async () => {
  const env = await deadlineEnv;
  const client = await connect(env, 'repo:acme/app:ref:refs/heads/main');
  const err = await queryError(client, 'CREATE TABLE made_without_verdict ()');
  assert.is(err.code, '42501');
  assert.not.ok(await tableExists(env, 'made_without_verdict'), 'the CREATE ran although no verdict came');
  // The session stays usable: the next statement is decided (and refused) the same way.
  assert.is((await queryError(client, 'SELECT 2')).code, '42501');
});

deadline('control: once something answers with verdicts, the same statements run', async () => {
  const env = await deadlineEnv;
  await allowEverything(env);
  const client = await connect(env, 'repo:acme/app:ref:refs/heads/main');
  const r = await client.query('SELECT 1 AS one');
  assert.equal(r.rows, [{ one: 1 }]);
  await client.query('CREATE TABLE made_with_verdict ()');
  assert.ok(await tableExists(env, 'made_with_verdict'));
  await client.query('DROP TABLE made_with_verdict');
});

deadline.run();

// ---------------------------------------------------------------------------------------------

const busDown = suite('fail closed: the audit log cannot be written');
let busEnv: Promise<Env>;
const busParts: Partial<Env> = {};

busDown.before(() => {
  busEnv = setup(busParts);
  busEnv.catch(() => {});
});
busDown.after(() => teardown(busParts));

busDown('with a closed bus a statement is refused, not forwarded', async () => {
  const env = await busEnv;
  await allowEverything(env);
  const client = await connect(env, 'repo:acme/app:ref:refs/heads/main');
  // Works while the log is writable...
  assert.equal((await client.query('SELECT 40 + 2 AS n')).rows, [{ n: 42 }]);
  await env.bus.close();
  // ...and once publishing fails, nothing is forwarded.
  const err = await queryError(client, 'CREATE TABLE should_not_exist ()');
  assert.is(err.code, '58000', err.message);
  assert.match(err.message, 'audit log is unavailable');
  assert.not.ok(await tableExists(env, 'should_not_exist'), 'the statement ran although it could not be recorded');
  const again = await queryError(client, 'SELECT 1');
  assert.is(again.code, '58000');
});

busDown('with a closed bus a new session is refused (its start cannot be recorded)', async () => {
  const env = await busEnv;
  try {
    await connect(env, 'repo:acme/app:ref:refs/heads/main');
    assert.unreachable('a session opened although the audit log is closed');
  } catch (err) {
    if ((err as Error).name === 'Assertion') throw err;
    assert.is((err as { code?: string }).code, '58000', (err as Error).message);
    assert.match((err as Error).message, 'cannot record this session');
  }
});

busDown.run();

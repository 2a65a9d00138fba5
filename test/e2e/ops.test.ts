// The ops listener of a real `agate start` process: /healthz, /readyz with its components, and
// /metrics in valid Prometheus text format with the counts real clients caused; then a graceful
// drain on SIGTERM with psql and node-postgres connected, one of them mid-statement.
import { suite } from '../harness/suite.js';
import * as assert from 'uvu/assert';
import pg from 'pg';
import { spawn } from 'node:child_process';
import { connect } from 'node:net';
import { join } from 'node:path';
import { EventCodec } from '../../schemas/src/codec.js';
import type { AgateEvent } from '../../schemas/src/events.js';
import { startOidcIssuer, type OidcIssuer } from '../harness/oidc-issuer.js';
import { DEFAULT_PG_BIN, startPostgres, type PostgresServer } from '../harness/postgres.js';
import { parseExposition, sampleValue, type Exposition } from '../harness/prom-text.js';
import { agateConfig, cleanEnv, startAgateProcess, type AgateProcess } from './agate-process.js';
import { busLogBytes, logEvents } from './bus-log.js';
import { until } from '../harness/until.js';
import { connectAgent } from '../harness/agent-client.js';

interface Ctx { pg: PostgresServer; oidc: OidcIssuer; agate: AgateProcess; ops: string }
const ops = suite<Ctx>('ops listener: health, readiness, metrics, drain');

const DRAIN_MS = 8_000;
const POLICY = `policy:
  default: allow
  rules:
    - id: no-drop
      action: deny
      match: { sql: { statements: [DropStmt] } }
    - id: hold-truncate
      action: hold
      match: { sql: { statements: [TruncateStmt] } }
      approval: { approvers: { claims: { team: dba } }, timeout_s: 1.5 }
`;

ops.before(async (ctx) => {
  ctx.pg = await startPostgres();
  ctx.oidc = await startOidcIssuer();
  const base = agateConfig({ pg: ctx.pg, issuer: ctx.oidc, policy: POLICY });
  ctx.agate = await startAgateProcess({
    configYaml: (p) => `${base(p)}ops:\n  listen: 127.0.0.1:0\n  drain_timeout_ms: ${DRAIN_MS}\nledger:\n  checkpoint: { every_ms: 200 }\n`,
  });
  ctx.ops = String(ctx.agate.started.ops);
  assert.match(ctx.ops, /^http:\/\/127\.0\.0\.1:\d+$/, 'the started line names the ops address');
});

ops.after(async (ctx) => {
  await ctx.agate?.dispose();
  await ctx.oidc?.close();
  await ctx.pg?.stop();
});

// A session the drain closes: the drain test listens for it itself.
const client = async (ctx: Ctx, password?: string): Promise<pg.Client> =>
  connectAgent({ port: ctx.agate.pgPort, token: password ?? (await ctx.oidc.mint(ctx.oidc.githubActionsClaims())) });

async function scrape(ctx: Ctx): Promise<Exposition> {
  const res = await fetch(`${ctx.ops}/metrics`);
  assert.is(res.status, 200);
  assert.match(res.headers.get('content-type') ?? '', /^text\/plain; version=0\.0\.4/);
  return parseExposition(await res.text());
}

const fails = (p: Promise<unknown>): Promise<boolean> => p.then(() => false, () => true);

const events = (ctx: Ctx): AgateEvent[] => logEvents(busLogBytes(join(ctx.agate.dataDir, 'bus')), new EventCodec());

ops('/healthz is 200 and /readyz lists every component of the embedded process as ready', async (ctx) => {
  assert.equal(await (await fetch(`${ctx.ops}/healthz`)).json(), { status: 'ok' });
  const res = await fetch(`${ctx.ops}/readyz`);
  const body = (await res.json()) as { status: string; components: Record<string, { ready: boolean }> };
  assert.is(res.status, 200, JSON.stringify(body));
  assert.is(body.status, 'ready');
  for (const c of ['process', 'bus', 'store', 'consumer.policy', 'consumer.ledger', 'listener.postgres', 'listener.query']) {
    assert.equal(body.components[c], { ready: true }, `component ${c}`);
  }
  assert.is((await fetch(`${ctx.ops}/nothing`)).status, 404);
});

ops('/metrics counts decisions by rule, failed logins by reason, open sessions, latencies and the ledger', async (ctx) => {
  const c = await client(ctx);
  await c.query('SELECT 1');
  await c.query('SELECT 2');
  assert.ok(await fails(c.query('DROP TABLE nothing_here')), 'DROP is refused');
  const bad = new pg.Client({ host: '127.0.0.1', port: ctx.agate.pgPort, database: 'appdb', user: 'agent', password: 'not-a-token' });
  assert.ok(await fails(bad.connect()), 'a bad token is refused');
  await bad.end().catch(() => undefined);

  const during = await scrape(ctx);
  assert.is(sampleValue(during, 'agate_commands_total', { protocol: 'postgres', decision: 'allow', rule: 'none' }), 2);
  assert.is(sampleValue(during, 'agate_commands_total', { protocol: 'postgres', decision: 'deny', rule: 'no-drop' }), 1);
  assert.is(sampleValue(during, 'agate_verdict_latency_seconds_count', { protocol: 'postgres', decision: 'allow' }), 2);
  assert.is(sampleValue(during, 'agate_sessions_open', { protocol: 'postgres' }), 1);
  const authFailures = during.samples.filter((s) => s.name === 'agate_auth_failures_total' && s.labels.protocol === 'postgres');
  assert.is(authFailures.reduce((n, s) => n + s.value, 0), 1, 'one failed login');
  assert.match(authFailures[0]!.labels.reason!, /^[A-Z_]+$/, 'the reason is a stable code');
  assert.ok((sampleValue(during, 'agate_bus_publish_seconds_count', { type: 'Response', outcome: 'ok' }) ?? 0) >= 3);
  assert.ok((sampleValue(during, 'agate_process_resident_memory_bytes') ?? 0) > 0, 'process metrics are there');
  // The engine's own memory tracker: more than a MiB once it has taken inserts, less than the process.
  const engine = sampleValue(during, 'agate_store_engine_memory_bytes', { kind: 'tracked' }) ?? 0;
  assert.ok(engine > 2 ** 20 && engine < sampleValue(during, 'agate_process_resident_memory_bytes')!, `engine memory ${engine}`);
  assert.is(sampleValue(during, 'agate_ready'), 1);

  // A held statement: pending while it waits, counted with its final decision once it expires.
  const held = await client(ctx);
  const outcome = fails(held.query('TRUNCATE nothing_here'));
  const holding = await until('a hold to be pending', async () => {
    const e = await scrape(ctx);
    return sampleValue(e, 'agate_holds_pending', { protocol: 'postgres' }) === 1 ? e : undefined;
  });
  assert.is(sampleValue(holding, 'agate_verdict_latency_seconds_count', { protocol: 'postgres', decision: 'hold' }), 1);
  assert.ok(await outcome, 'refused once the hold expires');
  const released = await scrape(ctx);
  assert.is(sampleValue(released, 'agate_holds_pending', { protocol: 'postgres' }), 0);
  const final = released.samples.filter((s) => s.name === 'agate_commands_total' && s.labels.rule === 'hold-truncate');
  assert.is(final.length, 1);
  assert.is.not(final[0]!.labels.decision, 'hold', 'counted with the decision that ended the hold');
  await held.end();

  await c.end();
  const after = await until('the ledger to append and checkpoint', async () => {
    const e = await scrape(ctx);
    const appended = sampleValue(e, 'agate_consumer_events_total', { group: 'ledger' }) ?? 0;
    return appended >= 8 && sampleValue(e, 'agate_ledger_checkpoint_age_seconds') !== undefined && sampleValue(e, 'agate_sessions_open', { protocol: 'postgres' }) === 0 ? e : undefined;
  }, 60_000);
  const age = sampleValue(after, 'agate_ledger_checkpoint_age_seconds')!;
  assert.ok(age >= 0 && age < 60, `checkpoint age ${age}`);
  assert.ok((sampleValue(after, 'agate_consumer_lag_seconds', { group: 'ledger' }) ?? -1) >= 0);
});

ops('SIGTERM drains: the statement in flight finishes and is recorded, idle sessions close, new ones are refused, exit 0', async (ctx) => {
  // The statement in flight waits on a lock the test holds on PostgreSQL directly, so it is
  // certainly still running while the drain is looked at, and ends when the test says so.
  const { user, password } = ctx.pg.users.scram;
  const gate = new pg.Client({ host: ctx.pg.host, port: ctx.pg.port, database: ctx.pg.database, user, password });
  await gate.connect();
  await gate.query('CREATE TABLE IF NOT EXISTS drain_gate (id int)');
  await gate.query('BEGIN');
  await gate.query('LOCK TABLE drain_gate IN ACCESS EXCLUSIVE MODE');
  const idle = await client(ctx);
  const idleError = new Promise<Error & { code?: string }>((resolve) => idle.on('error', resolve));
  const env = cleanEnv({
    PGHOST: '127.0.0.1', PGPORT: String(ctx.agate.pgPort), PGDATABASE: 'appdb', PGUSER: 'agent', PGSSLMODE: 'disable',
    PGPASSWORD: await ctx.oidc.mint(ctx.oidc.githubActionsClaims()),
  });
  const psql = spawn(join(process.env.AGATE_PG_BIN ?? DEFAULT_PG_BIN, 'psql'), ['-X', '-At', '-v', 'ON_ERROR_STOP=1', '-c', "SELECT 'gate rows: ' || count(*) FROM drain_gate"], { env, stdio: ['ignore', 'pipe', 'pipe'] });
  let stdout = '';
  let stderr = '';
  psql.stdout.on('data', (b: Buffer) => (stdout += b.toString()));
  psql.stderr.on('data', (b: Buffer) => (stderr += b.toString()));
  const order: string[] = [];
  const psqlExit = new Promise<number | null>((resolve) => psql.on('close', (code) => (order.push('psql'), resolve(code))));
  try {
    const command = await until('the statement in the log', async () => events(ctx).find((e) => e.type === 'Command' && e.text.includes('drain_gate')));
    await until('the statement to wait on the lock', async () => ((await gate.query("SELECT 1 FROM pg_stat_activity WHERE wait_event_type = 'Lock' AND query LIKE '%drain_gate%'")).rowCount === 1 ? true : undefined));
    const stopped = ctx.agate.stop(DRAIN_MS + 15_000).then((exit) => (order.push('agate'), exit));

    // While the statement runs: not ready, still alive, and no new connection is accepted.
    const draining = await until('/readyz to say draining', async () => {
      const res = await fetch(`${ctx.ops}/readyz`);
      const body = (await res.json()) as { components: Record<string, { ready: boolean; reason?: string }> };
      return res.status === 503 && body.components.process?.reason === 'draining' ? body : undefined;
    });
    assert.equal(draining.components['listener.postgres'], { ready: false, reason: 'draining' });
    assert.is((await fetch(`${ctx.ops}/healthz`)).status, 200);
    const refused = await new Promise<string>((resolve) => {
      const s = connect(ctx.agate.pgPort, '127.0.0.1');
      s.on('connect', () => (s.destroy(), resolve('connected')));
      s.on('error', (err: NodeJS.ErrnoException) => resolve(err.code ?? 'error'));
    });
    assert.is(refused, 'ECONNREFUSED');
    const err = await idleError;
    assert.match(err.message, /Agate is shutting down/);
    assert.is(err.code, '57P01', 'the idle session is closed with admin_shutdown');
    assert.is(psql.exitCode, null, 'psql is still running its statement');
    assert.ok(ctx.agate.running, 'agate waits for it');

    await gate.query('COMMIT');
    assert.is(await psqlExit, 0, stderr);
    assert.is(stdout.trim(), 'gate rows: 0');
    assert.equal(await stopped, { code: 0, signal: null }, ctx.agate.stderr());
    assert.equal(order, ['psql', 'agate'], 'agate exits after the statement in flight finished');

    const recorded = events(ctx);
    const response = recorded.find((e) => e.type === 'Response' && e.command_id === command.event_id);
    assert.ok(response?.type === 'Response' && response.status === 'ok' && response.rows === 1, 'the statement that ran during the drain is recorded with its result');
    const opened = recorded.filter((e) => e.type === 'SessionOpened').map((e) => e.session_id);
    const closed = new Set(recorded.filter((e) => e.type === 'SessionClosed').map((e) => e.session_id));
    assert.ok(opened.length >= 3 && opened.every((id) => closed.has(id)), 'every session is recorded as closed');
    // The drain ended because the statement did, not at the timeout.
    assert.ok(ctx.agate.logs().some((l) => l.msg === 'drained' && l.sessions_cut_off === 0), 'no session was cut off');
  } finally {
    psql.kill();
    await idle.end().catch(() => undefined);
    await gate.end().catch(() => undefined);
  }
});

ops.run();

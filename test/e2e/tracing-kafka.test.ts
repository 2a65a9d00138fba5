// Trace export end to end, distributed: the proxy, policy and ledger each in a process of its own
// over a real Kafka broker (no schema registry: single-object encoding; the ledger on the embedded
// store, alone in its process), a real PostgreSQL and a real OpenTelemetry Collector. A psql
// statement yields one trace, proxy -> policy -> ledger, parent-linked across the processes, and
// the Command and Verdict records on Kafka carry it in their value and as a `traceparent` header.
import { suite } from '../harness/suite.js';
import * as assert from 'uvu/assert';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createSecretFile } from '../../core/src/secret-file.js';
import { parseTraceParent } from '../../core/src/tracing/traceparent.js';
import { EventCodec } from '../../schemas/src/codec.js';
import type { AgateEvent } from '../../schemas/src/events.js';
import { generateSignerKey } from '../../services/ledger/src/note.js';
import { startKafka, type KafkaBroker } from '../harness/kafka.js';
import { readTopic } from '../harness/kafka-topic-reader.js';
import { startOidcIssuer, type OidcIssuer } from '../harness/oidc-issuer.js';
import { startCollector, type Collector } from '../harness/otelcol.js';
import { findFreePort, psqlWith, startPostgres, type PostgresServer } from '../harness/postgres.js';
import { cleanEnv } from './agate-process.js';
import { startRole, type RoleProcess } from './role-process.js';
import { assertSpanLinks, spansOfTrace } from '../harness/span-links.js';

interface Ctx { pg: PostgresServer; issuer: OidcIssuer; broker: KafkaBroker; collector: Collector; dir: string; pgPort: number; procs: RoleProcess[] }
const tracing = suite<Ctx>('trace export over Kafka: proxy, policy and ledger processes in one trace');

function config(ctx: Ctx, instance: string, serviceName: string): string {
  const q = JSON.stringify;
  return `instance_id: ${instance}
data_dir: ${q(join(ctx.dir, instance))}
identity:
  issuers:
    - { issuer: ${q(ctx.issuer.issuer)}, audience: agate }
bus:
  kind: kafka
  brokers: [${q(ctx.broker.bootstrap)}]
  partitions: 1
  replication_factor: 1
proxy:
  postgres: { listen: "127.0.0.1:${ctx.pgPort}" }
  verdict_timeout_ms: 10000
targets:
  - name: appdb
    protocol: postgres
    upstream: { host: 127.0.0.1, port: ${ctx.pg.port}, database: appdb, user: ${q(ctx.pg.users.scram.user)}, password: { value: ${q(ctx.pg.users.scram.password)} } }
policy:
  default: allow
telemetry:
  otlp:
    endpoint: ${q(ctx.collector.endpoint)}
    service_name: ${serviceName}
`;
}

tracing.before(async (ctx) => {
  [ctx.pg, ctx.issuer, ctx.broker, ctx.collector] = await Promise.all([startPostgres(), startOidcIssuer(), startKafka(), startCollector()]);
  ctx.dir = mkdtempSync(join(tmpdir(), 'agate-trace-kafka-'));
  ctx.pgPort = await findFreePort();
  ctx.procs = [];
  const files = { proxy: join(ctx.dir, 'proxy.yaml'), policy: join(ctx.dir, 'policy.yaml'), ledger: join(ctx.dir, 'ledger.yaml') };
  writeFileSync(files.proxy, config(ctx, 'proxy-1', 'agate-proxy'));
  writeFileSync(files.policy, config(ctx, 'policy-1', 'agate-policy'));
  writeFileSync(files.ledger, config(ctx, 'ledger-1', 'agate-ledger'));
  // On Kafka a ledger generates no checkpoint key: it is made once, as `agate ledger-key` does.
  createSecretFile(join(ctx.dir, 'ledger-1', 'ledger', 'checkpoint.key'), generateSignerKey('agate.local/ledger') + '\n');
  ctx.procs.push(await startRole('ledger', files.ledger, 120_000));
  ctx.procs.push(await startRole('policy', files.policy, 120_000));
  ctx.procs.push(await startRole('proxy', files.proxy, 120_000));
});

tracing.after(async (ctx) => {
  for (const p of (ctx.procs ?? []).reverse()) await p.stop('SIGTERM').catch(() => undefined);
  await ctx.collector?.close();
  await ctx.broker?.stop();
  await ctx.issuer?.close();
  await ctx.pg?.stop();
  if (ctx.dir !== undefined) rmSync(ctx.dir, { recursive: true, force: true });
});

async function psql(ctx: Ctx, sql: string): Promise<string> {
  const env = { ...cleanEnv(), PGHOST: '127.0.0.1', PGPORT: String(ctx.pgPort), PGDATABASE: 'appdb', PGUSER: 'agent', PGPASSWORD: await ctx.issuer.mint(ctx.issuer.githubActionsClaims()), PGSSLMODE: 'disable' };
  return psqlWith(env, sql);
}

interface Record_ { event: AgateEvent; headers: Record<string, string> }

/** Every record of the events topic so far, decoded, with its headers. */
async function eventsTopic(ctx: Ctx, until: (records: Record_[]) => boolean): Promise<Record_[]> {
  const codec = new EventCodec();
  const records: Record_[] = [];
  // Decoded as read, so `until` looks at events.
  await readTopic(ctx.broker.bootstrap, 'agate.events', (rs) => {
    const r = rs[rs.length - 1]!; // called once per record read
    records.push({ event: codec.decode(r.value), headers: r.headers });
    return until(records);
  });
  return records;
}

tracing('a psql statement: one trace across the three processes; the Kafka records carry it', async (ctx) => {
  assert.is(await psql(ctx, 'SELECT 40 + 2 AS traced_over_kafka'), '42');

  const isCommand = (r: Record_) => r.event.type === 'Command' && r.event.text.includes('traced_over_kafka');
  const records = await eventsTopic(ctx, (rs) => {
    const c = rs.find(isCommand);
    return c !== undefined && rs.some((r) => r.event.type === 'Verdict' && r.event.command_id === c.event.event_id);
  });
  const command = records.find(isCommand)!;
  const verdict = records.find((r) => r.event.type === 'Verdict' && r.event.command_id === command.event.event_id)!;
  assert.ok(command.event.type === 'Command' && verdict.event.type === 'Verdict');
  const onCommand = parseTraceParent(command.event.trace_parent);
  const onVerdict = parseTraceParent(verdict.event.trace_parent);
  assert.ok(onCommand, 'the Command carries a trace context');
  assert.ok(onVerdict, 'the Verdict carries a trace context');
  assert.is(command.headers.traceparent, command.event.trace_parent, 'the Command record\'s traceparent header is its trace context');
  assert.is(verdict.headers.traceparent, verdict.event.trace_parent, 'the Verdict record\'s traceparent header is its trace context');
  assert.is(onVerdict.traceId, onCommand.traceId);
  const opened = records.find((r) => r.event.type === 'SessionOpened');
  assert.ok(opened, 'the session was recorded');
  assert.is(opened.headers.traceparent, undefined, 'an event about no command has no traceparent header');

  const spans = await spansOfTrace(ctx.collector, onCommand.traceId, ['postgres command', 'policy decide'], 30_000, 3);
  // Across processes: each link below crosses Kafka.
  const { proxy, policy, appendOf } = assertSpanLinks(spans, 'postgres command', { command: command.event, verdict: verdict.event }, { ledger: true });
  assert.is(proxy.service, 'agate-proxy');
  assert.is(policy.service, 'agate-policy');
  assert.is(appendOf(command.event)?.service, 'agate-ledger');
  assert.is(appendOf(command.event)?.attributes['agate.chain'], 'agate.events-0');
});

tracing.run();

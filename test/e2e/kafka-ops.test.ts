// Distributed operations against a real Kafka broker: `agate topics` creating and checking the
// topics (partitions, replication factor, min.insync.replicas, retention), and the readiness of a
// separate `agate policy` process following the broker going away and coming back.
import { suite } from '../harness/suite.js';
import * as assert from 'uvu/assert';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Admin, ConfigResourceTypes } from '@platformatic/kafka';
import { startKafka, type KafkaBroker } from '../harness/kafka.js';
import { findFreePort } from '../harness/postgres.js';
import { parseExposition, sampleValue } from '../harness/prom-text.js';
import { runCli } from './agate-process.js';
import { startRole, type RoleProcess } from './role-process.js';
import { until } from '../harness/until.js';

interface Ctx { kafka: KafkaBroker; dir: string; admin: Admin; policy?: RoleProcess }
const ops = suite<Ctx>('Kafka: agate topics, and readiness following the broker');

const config = (ctx: Ctx, name: string, extra: { partitions?: number; opsPort?: number } = {}) => {
  const path = join(ctx.dir, name);
  writeFileSync(path, `instance_id: kafka-ops
data_dir: ${JSON.stringify(join(ctx.dir, 'data'))}
identity: { issuers: [{ issuer: https://issuer.invalid, audience: agate }] }
bus:
  kind: kafka
  brokers: [${JSON.stringify(ctx.kafka.bootstrap)}]
  events_topic: ops.events
  verdicts_topic: ops.verdicts
  partitions: ${extra.partitions ?? 3}
  replication_factor: 1
  retention_ms: 3600000
${extra.opsPort === undefined ? '' : `ops: { listen: "127.0.0.1:${extra.opsPort}" }\n`}`);
  return path;
};

ops.before(async (ctx) => {
  ctx.kafka = await startKafka();
  ctx.dir = mkdtempSync(join(tmpdir(), 'agate-kafka-ops-'));
  ctx.admin = new Admin({ clientId: 'kafka-ops-test', bootstrapBrokers: [ctx.kafka.bootstrap] });
});

ops.after(async (ctx) => {
  await ctx.policy?.stop();
  await ctx.admin?.close();
  await ctx.kafka?.destroy();
  if (ctx.dir) rmSync(ctx.dir, { recursive: true, force: true });
});

ops('agate topics --check reports missing topics and creates nothing', async (ctx) => {
  const r = await runCli(['topics', '--check', '--config', config(ctx, 'a.yaml')]);
  assert.is(r.code, 1, r.stderr);
  assert.match(r.stdout, /ops\.events: missing/);
  assert.match(r.stdout, /ops\.verdicts: missing/);
  const topics = await ctx.admin.listTopics();
  assert.not.ok(topics.includes('ops.events'));
});

ops('agate topics creates them with partitions, replication, min.insync.replicas and retention', async (ctx) => {
  const r = await runCli(['topics', '--config', config(ctx, 'a.yaml')]);
  assert.is(r.code, 0, r.stderr + r.stdout);
  assert.match(r.stdout, /ops\.events: created \(3 partitions, replication factor 1, min\.insync\.replicas=1, retention\.ms=3600000/);
  const { topics } = await ctx.admin.metadata({ topics: ['ops.events', 'ops.verdicts'], forceUpdate: true });
  assert.equal([...topics.keys()].sort(), ['ops.events', 'ops.verdicts']);
  for (const [name, t] of topics) {
    assert.is(t.partitions.length, 3, name);
    assert.ok(t.partitions.every((p) => p.replicas.length === 1), name);
  }
  const resources = await ctx.admin.describeConfigs({ includeSynonyms: false, resources: [{ resourceType: ConfigResourceTypes.TOPIC, resourceName: 'ops.events', configurationKeys: ['retention.ms', 'min.insync.replicas'] }] });
  const entries = Object.fromEntries(resources[0]!.configs.map((e) => [e.name, e.value]));
  assert.equal(entries, { 'retention.ms': '3600000', 'min.insync.replicas': '1' });
  const again = await runCli(['topics', '--check', '--config', config(ctx, 'a.yaml')]);
  assert.is(again.code, 0, again.stdout);
  assert.match(again.stdout, /ops\.events: ok/);
});

ops('agate topics --check names every difference: retention changed on the broker, fewer partitions than configured', async (ctx) => {
  await ctx.admin.alterConfigs({ validateOnly: false, resources: [{ resourceType: ConfigResourceTypes.TOPIC, resourceName: 'ops.events', configs: [{ name: 'retention.ms', value: '1000' }] }] });
  const r = await runCli(['topics', '--check', '--config', config(ctx, 'b.yaml', { partitions: 4 })]);
  assert.is(r.code, 1, r.stdout);
  assert.match(r.stdout, /ops\.events: differs from the config\n {2}partitions: 3, config says 4\n {2}retention\.ms: 1000, config says 3600000/);
  assert.match(r.stdout, /ops\.verdicts: differs from the config\n {2}partitions: 3, config says 4\n(?! )/);
  // Without --check it still changes nothing that exists: the operator decides.
  const fix = await runCli(['topics', '--config', config(ctx, 'b.yaml', { partitions: 4 })]);
  assert.is(fix.code, 1);
  const { topics } = await ctx.admin.metadata({ topics: ['ops.events'], forceUpdate: true });
  assert.is(topics.get('ops.events')?.partitions.length, 3);
});

async function readyz(port: number): Promise<{ status: number; components: Record<string, { ready: boolean; reason?: string }> }> {
  const res = await fetch(`http://127.0.0.1:${port}/readyz`);
  return { status: res.status, components: ((await res.json()) as { components: Record<string, { ready: boolean; reason?: string }> }).components };
}

/** /readyz refuses connections while the process starts and the broker restarts: retried. */
const BROKER = { timeoutMs: 60_000, everyMs: 250, retryErrors: true };

ops('agate policy over Kafka: ready with its consumers, not ready while the broker is down, ready again after', async (ctx) => {
  const port = await findFreePort();
  ctx.policy = await startRole('policy', config(ctx, 'policy.yaml', { opsPort: port }));
  const up = await until('policy to be ready', async () => {
    const r = await readyz(port);
    return r.status === 200 ? r : undefined;
  }, BROKER);
  for (const c of ['process', 'bus', 'kafka.consumer.policy', 'consumer.policy']) assert.equal(up.components[c], { ready: true }, c);
  const metrics = parseExposition(await (await fetch(`http://127.0.0.1:${port}/metrics`)).text());
  assert.is(sampleValue(metrics, 'agate_ready'), 1);

  await ctx.kafka.stop();
  const down = await until('the bus to be reported not ready', async () => {
    const r = await readyz(port);
    return r.status === 503 && r.components.bus?.ready === false ? r : undefined;
  }, BROKER);
  assert.ok(down.components.bus!.reason!.length > 0, 'a reason is given');

  await ctx.kafka.restart();
  await until('policy to be ready again', async () => {
    const r = await readyz(port);
    return r.status === 200 ? r : undefined;
  }, { ...BROKER, timeoutMs: 120_000 });
});

ops.run();

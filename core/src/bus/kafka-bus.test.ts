import { suite } from '../../../test/harness/suite.js';
import * as assert from 'uvu/assert';
import { randomUUID } from 'node:crypto';
import { subscribe, unsubscribe } from 'node:diagnostics_channel';
import { Admin, ConfigResourceTypes, Producer, stringSerializers } from '@platformatic/kafka';
import { startKafka, type KafkaBroker } from '../../../test/harness/kafka.js';
import { startSchemaRegistry, type SchemaRegistryServer } from '../../../test/harness/schema-registry.js';
import { EventCodec } from '../../../schemas/src/codec.js';
import type { AgateEvent, Command } from '../../../schemas/src/events.js';
import { SAMPLES } from '../../../schemas/src/samples.js';
import { silentLogger } from '../log.js';
import type { Bus, StreamInfo } from './bus.js';
import { KafkaBus, consumerGroupPrefix } from './kafka-bus.js';
import { RegistryWire } from './registry-wire.js';
import { SingleObjectWire } from './single-object-wire.js';

/* The Kafka bus against a real Kafka 4.x broker (KRaft) and a real Apicurio schema registry. */
const codec = new EventCodec();
let broker: KafkaBroker;
let registry: SchemaRegistryServer;
const buses: Bus[] = [];
const ready = (async () => {
  // Settled one by one, so the after hook stops whichever started even when the other failed.
  const [k, r] = await Promise.allSettled([startKafka(), startSchemaRegistry()]);
  if (k.status === 'fulfilled') broker = k.value;
  if (r.status === 'fulfilled') registry = r.value;
  if (k.status === 'rejected') throw k.reason;
  if (r.status === 'rejected') throw r.reason;
})();
ready.catch(() => undefined); // each test awaits it and reports the failure

async function bus(instanceId: string, opts: { registry?: boolean; awaitsVerdicts?: boolean; topic?: string; groupPrefix?: string; connectTimeoutMs?: number; lingerMs?: Record<string, number> } = {}): Promise<KafkaBus> {
  await ready;
  const topic = opts.topic ?? 'events';
  const b = await KafkaBus.connect({
    brokers: [broker.bootstrap], instanceId, groupPrefix: opts.groupPrefix ?? consumerGroupPrefix(topic), eventsTopic: topic, verdictsTopic: `${topic}.verdicts`, partitions: 3, replicationFactor: 1,
    wire: opts.registry ? new RegistryWire(registry.url, topic, codec) : new SingleObjectWire(codec), logger: silentLogger, awaitsVerdicts: opts.awaitsVerdicts ?? false,
    ...(opts.connectTimeoutMs === undefined ? {} : { connectTimeoutMs: opts.connectTimeoutMs }),
    ...(opts.lingerMs === undefined ? {} : { lingerMs: opts.lingerMs }),
  });
  buses.push(b);
  return b;
}
const command = (session: string, text = 'SELECT 1'): Command => ({ ...SAMPLES.Command, event_id: randomUUID(), session_id: session, text });

/** An admin client of the test broker, closed by the caller. */
const admin = (clientId: string) => new Admin({ clientId, bootstrapBrokers: [broker.bootstrap] });

const kafka = suite('KafkaBus');
kafka.after(async () => {
  for (const b of buses) await b.close();
  await broker?.destroy();
  await registry?.close();
});

kafka('a session stays ordered in one partition under concurrent publishes; batches name their stream', async () => {
  const b = await bus('ordering', { topic: 'ordering' });
  // Twelve sessions, 20 unawaited publishes each: group commits overlap publishes.
  const sessions = Array.from({ length: 12 }, (_, i) => `s-${i}`);
  const texts = Array.from({ length: 20 }, (_, i) => `SELECT ${i + 1}`);
  const sent = sessions.flatMap((s) => texts.map((t) => command(s, t)));
  await Promise.all(sent.map((e) => b.publish(e)));
  const got = new Map<string, { texts: string[]; streams: Set<string> }>();
  await new Promise<void>((resolve) => {
    let n = 0;
    void b.subscribe({ group: 'order-check', types: ['Command'], handler: async (batch: readonly AgateEvent[], source: StreamInfo) => {
      for (const e of batch) {
        if (e.type !== 'Command') continue;
        const g = got.get(e.session_id) ?? { texts: [], streams: new Set() };
        g.texts.push(e.text);
        g.streams.add(source.stream);
        got.set(e.session_id, g);
        if (++n === sent.length) resolve();
      }
    } });
  });
  for (const s of sessions) {
    assert.equal(got.get(s)!.texts, texts);
    assert.is(got.get(s)!.streams.size, 1);
    assert.match([...got.get(s)!.streams][0]!, /^ordering-[0-2]$/);
  }
});

kafka('a lingering group reads a trickle of events in a few batches, and every event; other groups one by one', async () => {
  const b = await bus('linger', { topic: 'linger', lingerMs: { ledger: 2_000 } });
  const session = randomUUID(); // one session: one partition, so batch counts compare
  const batches = { ledger: 0, policy: 0 };
  const seen = { ledger: 0, policy: 0 };
  const sent = Array.from({ length: 6 }, (_, i) => command(session, `SELECT ${i}`));
  const all = (['ledger', 'policy'] as const).map((group) => new Promise<void>((resolve) => {
    void b.subscribe({ group, types: ['Command'], handler: async (batch) => {
      batches[group] += 1;
      seen[group] += batch.length;
      if (seen[group] === sent.length) resolve();
    } });
  }));
  await new Promise((r) => setTimeout(r, 1_500)); // both groups joined and fetching
  for (const e of sent) {
    await b.publish(e);
    await new Promise((r) => setTimeout(r, 150));
  }
  await Promise.all(all);
  assert.is(seen.ledger, sent.length);
  // 6 events 150+ ms apart: the group without a linger is woken for each (or nearly), the
  // lingering one waits at the broker for 2 s or a MiB, so it gets them in one or two batches.
  assert.ok(batches.ledger <= 2, `the lingering group read ${batches.ledger} batches`);
  assert.ok(batches.policy >= 4, `the group without a linger read ${batches.policy} batches`);
});

kafka('verdicts reach the exact proxy instance that waits, with two proxies at once', async () => {
  const policy = await bus('policy', { topic: 'verdicts-test' });
  await policy.subscribe({ group: 'policy', types: ['Command'], handler: async (batch) => {
    for (const c of batch) if (c.type === 'Command') {
      await policy.publish({ ...SAMPLES.Verdict, event_id: randomUUID(), session_id: c.session_id, command_id: c.event_id, decision: c.text.includes('DROP') ? 'deny' : 'allow' });
    }
  } });
  const [p1, p2] = [await bus('proxy-1', { topic: 'verdicts-test', awaitsVerdicts: true }), await bus('proxy-2', { topic: 'verdicts-test', awaitsVerdicts: true })];
  const outcomes = await Promise.all([
    p1.requestVerdict(command('x', 'SELECT 1'), 10_000),
    p2.requestVerdict(command('y', 'DROP TABLE t'), 10_000),
    p1.requestVerdict(command('z', 'DROP TABLE u'), 10_000),
    p2.requestVerdict(command('w', 'SELECT 2'), 10_000),
  ]);
  assert.equal(outcomes.map((o) => (o.kind === 'verdict' ? o.verdict.decision : 'timeout')), ['allow', 'deny', 'deny', 'allow']);
});

kafka('two proxies configured with the same instance id each get every verdict they wait on', async () => {
  const policy = await bus('policy', { topic: 'dup-ids' });
  await policy.subscribe({ group: 'policy', types: ['Command'], handler: async (batch) => {
    for (const c of batch) if (c.type === 'Command') await policy.publish({ ...SAMPLES.Verdict, event_id: randomUUID(), session_id: c.session_id, command_id: c.event_id, decision: 'allow' });
  } });
  const [p1, p2] = [await bus('same-id', { topic: 'dup-ids', awaitsVerdicts: true }), await bus('same-id', { topic: 'dup-ids', awaitsVerdicts: true })];
  // Sessions spread over all three partitions of the verdicts topic, from both proxies.
  const outcomes = await Promise.all(Array.from({ length: 12 }, (_, i) => (i % 2 === 0 ? p1 : p2).requestVerdict(command(`dup-${i}`), 10_000)));
  assert.equal(outcomes.map((o) => o.kind), Array(12).fill('verdict'));
});

kafka('two deployments on one broker (different topics, same group names) each read all of their own events', async () => {
  const received = { a: new Set<string>(), b: new Set<string>() };
  const [a, b] = [await bus('dep-a', { topic: 'deployment-a' }), await bus('dep-b', { topic: 'deployment-b' })];
  for (const [name, x] of [['a', a], ['b', b]] as const) {
    await x.subscribe({ group: 'ledger', types: ['Command'], handler: async (batch) => void batch.forEach((e) => e.type === 'Command' && received[name].add(e.text)) });
  }
  const texts = Array.from({ length: 9 }, (_, i) => `SELECT ${i}`);
  await Promise.all(texts.flatMap((t, i) => [a.publish(command(`a-${i}`, `a ${t}`)), b.publish(command(`b-${i}`, `b ${t}`))]));
  const deadline = Date.now() + 20_000;
  while ((received.a.size < 9 || received.b.size < 9) && Date.now() < deadline) await new Promise((r) => setTimeout(r, 100));
  assert.equal([...received.a].sort(), texts.map((t) => `a ${t}`).sort());
  assert.equal([...received.b].sort(), texts.map((t) => `b ${t}`).sort());
});

kafka('the consumer-group prefix follows the events topic unless configured', () => {
  assert.is(consumerGroupPrefix('agate.events'), 'agate');
  assert.is(consumerGroupPrefix('team-b.events'), 'team-b.events');
  assert.is(consumerGroupPrefix('team-b.events', 'b'), 'b');
});

kafka('a replication factor the cluster cannot meet is refused with the setting to change', async () => {
  await ready;
  const err = await KafkaBus.connect({
    brokers: [broker.bootstrap], instanceId: 'rf', groupPrefix: 'rf', eventsTopic: 'rf-events', verdictsTopic: 'rf-verdicts', partitions: 1, replicationFactor: 3,
    wire: new SingleObjectWire(codec), logger: silentLogger, awaitsVerdicts: false,
  }).then((b) => (buses.push(b), undefined), (e: unknown) => e as { code?: string; message: string });
  assert.is(err?.code, 'CONFIG_INVALID');
  assert.match(err!.message, /bus\.replication_factor is 3 but the cluster has 1 broker;/);
});

kafka('no answer within the deadline is a timeout, not an error', async () => {
  const p = await bus('lonely', { topic: 'nobody-answers', awaitsVerdicts: true });
  const started = Date.now();
  const o = await p.requestVerdict(command('q'), 300);
  assert.is(o.kind, 'timeout');
  assert.ok(Date.now() - started >= 290);
});

kafka('a failing handler gets the batch again; committed events are not redelivered to the group', async () => {
  const b = await bus('retry', { topic: 'retry' });
  const e = command('r');
  await b.publish(e);
  let calls = 0;
  const seen: string[] = [];
  const sub = await new Promise<{ close(): Promise<void> }>((resolve) => {
    let s: { close(): Promise<void> } | undefined;
    void b.subscribe({ group: 'retry-group', types: ['Command'], handler: async (batch) => {
      calls += 1;
      if (calls === 1) throw new Error('store down');
      seen.push(...batch.map((x) => x.event_id));
      if (s !== undefined) resolve(s);
      else setTimeout(() => resolve(s!), 50);
    } }).then((x) => (s = x));
  });
  assert.is(calls, 2);
  assert.equal(seen, [e.event_id]);
  await sub.close();
  const again: string[] = [];
  const late = command('r2');
  await b.publish(late);
  await new Promise<void>((resolve) => {
    void b.subscribe({ group: 'retry-group', types: ['Command'], handler: async (batch) => {
      again.push(...batch.map((x) => x.event_id));
      if (again.includes(late.event_id)) resolve();
    } });
  });
  assert.equal(again, [late.event_id]);
});

kafka('a subscription that handles none of the events it reads still commits past them', async () => {
  // Its slices are not committed one by one (a proxy's termination reader sees every event), but
  // at most once a second per partition; a new member of the group must not start from zero.
  const b = await bus('skips', { topic: 'skips' });
  const sub = await b.subscribe({ group: 'skip-group', types: ['Command'], handler: async () => { throw new Error('no Command was published'); } });
  const sessions = Array.from({ length: 6 }, () => randomUUID()); // spread over the 3 partitions
  await Promise.all(sessions.map((session_id) => b.publish({ ...SAMPLES.Response, event_id: randomUUID(), session_id })));
  const check = admin('skips-check');
  try {
    let committed = 0;
    for (let i = 0; i < 100 && committed === 0; i++) {
      await new Promise((r) => setTimeout(r, 100));
      const [group] = await check.listConsumerGroupOffsets({ groups: ['skips.skip-group'] });
      committed = (group?.topics.find((t) => t.name === 'skips')?.partitions ?? []).reduce((n, p) => n + Math.max(0, Number(p.committedOffset)), 0);
    }
    assert.ok(committed > 0, 'the group committed past the events it skipped');
  } finally {
    await check.close();
    await sub.close();
  }
});

kafka('accept: a group gets only the events of its types it accepts', async () => {
  const b = await bus('accepts', { topic: 'accepts' });
  const session_id = randomUUID(); // one session: one partition, in order
  const verdicts = (['allow', 'hold', 'allow', 'hold'] as const).map((decision) => ({ ...SAMPLES.Verdict, event_id: randomUUID(), session_id, decision }));
  for (const v of verdicts) await b.publish(v);
  const got: AgateEvent[] = [];
  const sub = await b.subscribe({ group: 'holds', types: ['Verdict'], accept: (e) => e.type === 'Verdict' && e.decision === 'hold', handler: async (batch) => void got.push(...batch) });
  for (let i = 0; i < 200 && got.length < 2; i++) await new Promise((r) => setTimeout(r, 100));
  await sub.close();
  assert.equal(got.map((e) => e.event_id), [verdicts[1]!.event_id, verdicts[3]!.event_id]);
});

kafka('batches carry the bytes of each event as published, index for index, skipping the types not wanted', async () => {
  const b = await bus('bytes', { topic: 'bytes' });
  const sent = [command('b-1', 'SELECT 1'), { ...SAMPLES.Response, event_id: randomUUID(), session_id: 'b-1' } as AgateEvent, command('b-1', 'SELECT 2')];
  for (const e of sent) await b.publish(e);
  const got: { events: AgateEvent[]; encoded: Buffer[] } = { events: [], encoded: [] };
  await new Promise<void>((resolve) => {
    void b.subscribe({ group: 'bytes', types: ['Command'], handler: async (batch, source) => {
      assert.ok(source.encoded !== undefined, 'a single-object wire hands the bytes on');
      assert.is(source.encoded.length, batch.length);
      got.events.push(...batch);
      got.encoded.push(...source.encoded);
      if (got.events.length === 2) resolve();
    } });
  });
  assert.equal(got.events, [sent[0], sent[2]]);
  // The bytes are the codec's encoding of the very event they go with (what the ledger stores).
  assert.equal(got.encoded.map((x) => x.toString('hex')), [sent[0]!, sent[2]!].map((e) => codec.encode(e).toString('hex')));
});

kafka('with a schema registry: Confluent wire format, subjects registered, BACKWARD enforced', async () => {
  const b = await bus('registry', { topic: 'registered', registry: true });
  const e = command('reg');
  await b.publish(e);
  const got = await new Promise<{ event: AgateEvent; source: StreamInfo }>((resolve) => {
    void b.subscribe({ group: 'reg', types: ['Command'], handler: async (batch, source) => resolve({ event: batch[0]!, source }) });
  });
  assert.equal(got.event, e);
  assert.is(got.source.encoded, undefined, 'Confluent framing is not the bytes the ledger stores');
  const subjects = (await (await fetch(`${registry.url}/subjects`)).json()) as string[];
  assert.ok(subjects.includes('registered-agate.event.Command'), subjects.join(','));
  const config = (await (await fetch(`${registry.url}/config/registered-agate.event.Command`)).json()) as { compatibilityLevel: string };
  assert.is(config.compatibilityLevel, 'BACKWARD');
  // A change old data cannot be read with (a new field without a default) is refused.
  const res = await fetch(`${registry.url}/subjects/registered-agate.event.Command/versions`, {
    method: 'POST', headers: { 'content-type': 'application/vnd.schemaregistry.v1+json' },
    body: JSON.stringify({ schema: JSON.stringify({ type: 'record', name: 'Command', namespace: 'agate.event', fields: [{ name: 'event_id', type: 'string' }, { name: 'required_new', type: 'string' }] }) }),
  });
  assert.is(res.status, 409);
});

kafka('services starting together on a fresh registry all register every subject', async () => {
  await ready;
  const wires = Array.from({ length: 4 }, () => new RegistryWire(registry.url, 'fresh-together', codec));
  const results = await Promise.allSettled(wires.map((w) => w.init()));
  assert.equal(results.map((r) => (r.status === 'fulfilled' ? 'ok' : String((r.reason as Error).message))), ['ok', 'ok', 'ok', 'ok']);
  const e = command('together');
  assert.equal(await wires[3]!.decode(wires[0]!.encode(e)), e, 'all four share the registered ids');
});

kafka('an unreachable registry is a retriable error that says so', async () => {
  const wire = new RegistryWire('http://127.0.0.1:1', 'nowhere', codec);
  const err = await wire.init().then(() => undefined, (e: unknown) => e as { code?: string; retriable?: boolean; message: string });
  assert.is(err?.code, 'BUS_UNAVAILABLE');
  assert.is(err?.retriable, true);
  assert.match(err!.message, /cannot be reached/);
});

kafka('a Response rides the next command\'s produce request; alone, it is still sent', async () => {
  const b = await bus('lazy-response', { topic: 'lazy-response' });
  const got: string[] = [];
  await b.subscribe({ group: 'lazy-check', types: ['Command', 'Response'], handler: async (batch) => void batch.forEach((e) => got.push(e.type === 'Command' ? e.text : `Response ${e.type === 'Response' ? e.command_tag : ''}`)) });
  await b.publish(command('s-lazy', 'SELECT 0')); // the producer id and the topic's metadata first
  const response = (tag: string) => ({ ...SAMPLES.Response, event_id: randomUUID(), session_id: 's-lazy', command_tag: tag });
  // Produce requests (API key 0) the client writes, process-wide: earlier tests publish no more.
  let produced = 0;
  const count = (message: unknown) => void ((message as { apiKey?: number }).apiKey === 0 && (produced += 1));
  subscribe('tracing:plt:kafka:connections:api:start', count);
  try {
    // A statement's Response, then, in a later turn of the event loop, the session's next Command
    // (what a client sends once it has its result).
    const first = b.publish(response('SELECT 0'));
    await new Promise((r) => setImmediate(r));
    await Promise.all([first, b.publish(command('s-lazy', 'SELECT 1'))]);
    assert.is(produced, 1, 'the Response and the next Command went in two produce requests');
    await b.publish(response('SELECT 1')); // no command follows: it goes out on its own
    assert.is(produced, 2);
  } finally {
    unsubscribe('tracing:plt:kafka:connections:api:start', count);
  }
  const until = Date.now() + 30_000;
  while (got.length < 4 && Date.now() < until) await new Promise((r) => setTimeout(r, 50));
  assert.equal(got, ['SELECT 0', 'Response SELECT 0', 'SELECT 1', 'Response SELECT 1'], 'the session\'s records are in publish order');
});

kafka('a verdict whose events-topic copy is not acknowledged never reaches a proxy', async () => {
  const topic = 'verdict-record';
  const policy = await bus('policy', { topic });
  const proxy = await bus('proxy', { topic, awaitsVerdicts: true });
  const seen: Command[] = [];
  let answer = false; // the policy answers commands by itself only once the topic is healthy again
  await policy.subscribe({ group: 'policy', types: ['Command'], handler: async (batch) => {
    for (const c of batch) if (c.type === 'Command') {
      seen.push(c);
      if (answer) await policy.publish({ ...SAMPLES.Verdict, event_id: randomUUID(), session_id: c.session_id, command_id: c.event_id, decision: 'allow' });
    }
  } });
  const topicAdmin = admin('verdict-record-test');
  // A record size limit below any event's makes the broker refuse every write to the events topic
  // (MESSAGE_TOO_LARGE), while the verdicts topic still takes them: the events-topic copy fails
  // alone, as it does when its leader is lost. (min.insync.replicas above the replica count is
  // not refused by this Kafka.)
  const setMaxBytes = (value: string) => topicAdmin.alterConfigs({ validateOnly: false, resources: [{ resourceType: ConfigResourceTypes.TOPIC, resourceName: topic, configs: [{ name: 'max.message.bytes', value }] }] });
  const verdictsInTopic = async () => {
    const [listed] = await topicAdmin.listOffsets({ topics: [{ name: `${topic}.verdicts`, partitions: [0, 1, 2].map((partitionIndex) => ({ partitionIndex, timestamp: -1n })) }] });
    return (listed?.partitions ?? []).reduce((n, p) => n + Number(p.offset), 0);
  };
  try {
    const waiting = proxy.requestVerdict(command('vr-1', 'DELETE FROM t'), 12_000);
    const until = Date.now() + 30_000;
    while (seen.length === 0 && Date.now() < until) await new Promise((r) => setTimeout(r, 50));
    assert.is(seen.length, 1, 'the policy never saw the command');
    await setMaxBytes('64');
    // The leader applies a topic's new config a moment after the controller accepts it: probe
    // with a plain producer until a write to the events topic is refused.
    // Whether the events topic takes a write now, asked until it answers `want` (or 30 s pass).
    const probeUntil = async (want: boolean) => {
      const probe = new Producer({ clientId: 'verdict-record-probe', bootstrapBrokers: [broker.bootstrap], retries: 0, serializers: stringSerializers });
      let takes = !want;
      for (const end = Date.now() + 30_000; takes !== want && Date.now() < end; await new Promise((r) => setTimeout(r, 200))) {
        takes = await probe.send({ acks: -1, messages: [{ topic, key: 'probe', value: 'p'.repeat(200), headers: { 'agate-type': 'Probe' } }] }).then(() => true, () => false);
      }
      await probe.close();
      return takes;
    };
    assert.not.ok(await probeUntil(false), 'the events topic never refused a write');
    let failure: unknown;
    await policy.publish({ ...SAMPLES.Verdict, event_id: randomUUID(), session_id: seen[0]!.session_id, command_id: seen[0]!.event_id, decision: 'allow' }).catch((err: unknown) => (failure = err));
    assert.is((failure as { code?: string } | undefined)?.code, 'BUS_WRITE_FAILED', 'the verdict whose record failed is reported as not written');
    // The broker's reason, with its error code, reaches the message (what an operator reads in the log).
    assert.match((failure as Error).message, /^Kafka did not acknowledge the events: .*MESSAGE_TOO_LARGE: .*larger than the max message size/);
    assert.is(await verdictsInTopic(), 0, 'the verdicts topic got a verdict the events topic lacks');
    assert.is((await waiting).kind, 'timeout', 'the proxy heard a verdict that is not in the record');
    // Healthy again: both copies go out and the proxy hears the verdict.
    await setMaxBytes('1048588');
    assert.ok(await probeUntil(true), 'the events topic never took writes again');
    answer = true;
    const after = await proxy.requestVerdict(command('vr-2', 'SELECT 1'), 20_000);
    assert.is(after.kind, 'verdict');
    assert.is(await verdictsInTopic(), 1);
  } finally {
    await topicAdmin.close();
  }
});

// Last: they stop the shared broker.
kafka('a broker that stops and comes back: sends fail while it is away, then publishing and consuming work again', async () => {
  const b = await bus('restart', { topic: 'restart' });
  const seen = new Set<string>();
  await b.subscribe({ group: 'restart-check', types: ['Command'], handler: async (batch) => void batch.forEach((e) => e.type === 'Command' && seen.add(e.text)) });
  await b.publish(command('s-r', 'SELECT 1'));
  await broker.stop({ hard: true });
  let failure: unknown;
  await b.publish(command('s-r', 'SELECT 2')).catch((err: unknown) => (failure = err));
  assert.is((failure as { code?: string } | undefined)?.code, 'BUS_WRITE_FAILED', 'a send with no broker fails');
  await broker.restart();
  const deadline = Date.now() + 90_000;
  let published = false;
  let last: unknown;
  while (!published && Date.now() < deadline) {
    published = await b.publish(command('s-r', 'SELECT 3')).then(() => true, (err: unknown) => ((last = err), false));
    if (!published) await new Promise((r) => setTimeout(r, 500));
  }
  assert.ok(published, `no publish succeeded within 90 s of the broker's return: ${(last as Error | undefined)?.message}`);
  const until = Date.now() + 90_000;
  while (!seen.has('SELECT 3') && Date.now() < until) await new Promise((r) => setTimeout(r, 250));
  assert.ok(seen.has('SELECT 1') && seen.has('SELECT 3'), `the subscription did not resume after the broker's return (saw: ${[...seen].join(', ')})`);
});

kafka('connect waits for a broker that is not up yet (start order does not matter)', async () => {
  await broker.stop({ hard: true });
  const started = Date.now();
  // A broker's restart takes 20-30 s on a loaded 2-core machine: connect is given room beyond its 30 s default.
  const connecting = bus('late-broker', { topic: 'late-broker', awaitsVerdicts: true, connectTimeoutMs: 180_000 }).then((b) => ({ b, at: Date.now() }), (err: unknown) => ({ err, at: Date.now() }));
  await new Promise((r) => setTimeout(r, 10_000)); // longer than the client's own retries
  await broker.restart();
  const outcome = await connecting;
  assert.ok('b' in outcome, `connect gave up after ${outcome.at - started} ms: ${'err' in outcome ? (outcome.err as Error).message : ''}`);
  await outcome.b.publish(command('late', 'SELECT 1'));
});

kafka('a broker that stalls past the request timeout while a subscription joins: the subscription starts once it answers', async () => {
  const b = await bus('stalled-join', { topic: 'stalled-join' });
  // Seen on a loaded machine: a broker paused mid-join failed the first start ("Request timed
  // out", "joinGroup failed 6 times"), and the process died before it had started. (What this
  // does not show: how soon the started member reads. The abandoned attempt's member can hold
  // partitions until the broker's rebalance drops it; an event published at once was not read
  // within 30-120 s in some runs. Open, in the stop's note.)
  const subscribing = b.subscribe({ group: 'stalled-join-check', types: ['Command'], from: 'latest', handler: async () => undefined })
    .then((s) => ({ s }), (err: unknown) => ({ err }));
  await new Promise((r) => setTimeout(r, 30));
  process.kill(broker.pid!, 'SIGSTOP');
  try {
    await new Promise((r) => setTimeout(r, 15_000)); // past the client's 10 s request timeout
  } finally {
    process.kill(broker.pid!, 'SIGCONT');
  }
  const outcome = await subscribing;
  assert.ok('s' in outcome, `the subscription did not start after the stall: ${'err' in outcome ? (outcome.err as Error).message : ''}`);
  await outcome.s.close();
});

kafka('an idle bus sends only its fetches and heartbeats: no request loop with no traffic', async () => {
  // The count below is process-wide: the earlier tests' buses, which may still be rejoining their
  // groups after the broker's restart on a loaded machine, are closed first.
  for (const open of buses.splice(0)) await open.close();
  const b = await bus('idle', { topic: 'idle', awaitsVerdicts: true });
  await b.subscribe({ group: 'idle-check', types: ['Command'], handler: async () => undefined });
  await new Promise((r) => setTimeout(r, 2_000)); // past the group join
  // Every request the client writes to a broker, by API key (Fetch 1, Heartbeat 12).
  const sent = new Map<number, number>();
  const count = (message: unknown) => {
    const apiKey = (message as { apiKey?: number }).apiKey;
    if (apiKey !== undefined) sent.set(apiKey, (sent.get(apiKey) ?? 0) + 1);
  };
  subscribe('tracing:plt:kafka:connections:api:start', count);
  try {
    await new Promise((r) => setTimeout(r, 3_000));
  } finally {
    unsubscribe('tracing:plt:kafka:connections:api:start', count);
  }
  const total = [...sent.values()].reduce((n, x) => n + x, 0);
  // Two consumers, each a fetch held up to 500 ms at the broker and a heartbeat a second: about 18.
  assert.ok((sent.get(1) ?? 0) > 0, 'the consumers kept fetching');
  assert.ok(total < 60, `${total} requests in 3 s with no traffic: ${JSON.stringify([...sent])}`);
  // And the bus still carries an event end to end after the idle spell.
  const got = new Promise<string>((resolve) => void b.subscribe({ group: 'idle-after', types: ['Command'], handler: async (batch: readonly AgateEvent[]) => {
    for (const e of batch) if (e.type === 'Command') resolve(e.text);
  } }));
  await b.publish(command('s-idle', 'SELECT 42'));
  assert.is(await got, 'SELECT 42');
});

kafka.run();

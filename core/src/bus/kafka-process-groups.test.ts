import { suite } from '../../../test/harness/suite.js';
import * as assert from 'uvu/assert';
import { randomUUID } from 'node:crypto';
import { Admin, Consumer } from '@platformatic/kafka';
import { startKafka, type KafkaBroker } from '../../../test/harness/kafka.js';
import { EventCodec } from '../../../schemas/src/codec.js';
import type { AgateEvent } from '../../../schemas/src/events.js';
import { SAMPLES } from '../../../schemas/src/samples.js';
import { LeaseSweeper } from '../../../services/ledger/src/lease-sweeper.js';
import { silentLogger } from '../log.js';
import type { Store } from '../store/store.js';
import { KafkaBus } from './kafka-bus.js';
import { SingleObjectWire } from './single-object-wire.js';
import { untilTrue } from '../../../test/harness/until.js';

/*
 * Consumer groups a process holds alone (a query process's session ends), against a real Kafka
 * broker: each process reads every event even when two share an instance id, a clean stop
 * deletes its groups, and one a dead process left is deleted by the ledger's sweep once vacant
 * for the expiry. A proxy's termination requests ride its verdict consumer and need no group.
 */
const codec = new EventCodec();
const TOPIC = 'pgroups';
let broker: KafkaBroker | undefined;
const ready = startKafka().then((b) => (broker = b));
ready.catch(() => undefined); // each test awaits it and reports the failure
const buses: KafkaBus[] = [];

async function bus(instanceId: string, awaitsVerdicts = false): Promise<KafkaBus> {
  const b = await KafkaBus.connect({
    brokers: [(await ready).bootstrap], instanceId, groupPrefix: TOPIC, eventsTopic: TOPIC, verdictsTopic: `${TOPIC}.verdicts`,
    partitions: 2, replicationFactor: 1, wire: new SingleObjectWire(codec), logger: silentLogger, awaitsVerdicts,
  });
  buses.push(b);
  return b;
}

async function groups(): Promise<string[]> {
  const admin = new Admin({ clientId: 'pgroups-test', bootstrapBrokers: [(await ready).bootstrap] });
  try {
    return [...(await admin.listGroups()).keys()].filter((g) => g.startsWith(`${TOPIC}.`)).sort();
  } finally {
    await admin.close();
  }
}

const request = (): AgateEvent => ({ ...SAMPLES.SessionTerminationRequested, event_id: randomUUID(), session_id: `s-${randomUUID()}` });
const closed = (): AgateEvent => ({ ...SAMPLES.SessionClosed, event_id: randomUUID(), session_id: `s-${randomUUID()}` });

const test = suite('KafkaBus: per-process consumer groups');
test.after(async () => {
  for (const b of buses) await b.close().catch(() => undefined);
  await broker?.destroy();
});

test('two processes with one instance id each read every event; a clean stop deletes each one\'s groups', async () => {
  const [a, b] = [await bus('query-1'), await bus('query-1')];
  const seen = { a: [] as string[], b: [] as string[] };
  const subscribe = (x: KafkaBus, into: string[]) =>
    x.subscribe({ group: 'session-ends', perProcess: true, from: 'latest', types: ['SessionClosed'], handler: async (batch) => void into.push(...batch.map((e) => e.event_id)) });
  const aEnds = await subscribe(a, seen.a);
  await subscribe(b, seen.b);
  const mine = await groups();
  assert.is(mine.length, 2, mine.join(', '));
  assert.ok(mine.every((g) => /^pgroups\.session-ends\.query-1\.[0-9a-f]{12}$/.test(g)), mine.join(', '));
  // From 'latest': wait until every consumer has its partitions before publishing.
  await untilTrue('both readers to read', async () => {
    const probe = closed();
    await a.publish(probe);
    await new Promise((r) => setTimeout(r, 300));
    return seen.a.includes(probe.event_id) && seen.b.includes(probe.event_id);
  }, 30_000);
  const sent = Array.from({ length: 10 }, closed);
  for (const e of sent) await a.publish(e);
  await untilTrue('every event read by both', async () => sent.every((e) => seen.a.includes(e.event_id) && seen.b.includes(e.event_id)), 30_000);

  await aEnds.close();
  assert.equal((await groups()).length, 1, 'the closed subscription\'s group is gone, the other process\'s stays');
  await a.close();
  await b.close();
  assert.equal(await groups(), [], 'a stopped process leaves no group behind');
});

test('proxies read termination requests through their verdict consumers: each reads every one, no group reads the events topic for them, the record holds each once', async () => {
  const [a, b] = [await bus('proxy-1', true), await bus('proxy-1', true)];
  const query = await bus('query-2');
  const seen = { a: [] as string[], b: [] as string[], record: [] as string[] };
  const subscribe = (x: KafkaBus, into: string[]) =>
    x.subscribe({ group: 'terminations', perProcess: true, from: 'latest', types: ['SessionTerminationRequested'], handler: async (batch) => void into.push(...batch.map((e) => e.event_id)) });
  const aTerminations = await subscribe(a, seen.a);
  await subscribe(b, seen.b);
  // What the ledger reads: the events topic, in a shared group, from the start.
  const record = await query.subscribe({ group: 'record', types: ['SessionTerminationRequested'], handler: async (batch) => void seen.record.push(...batch.map((e) => e.event_id)) });
  const mine = (await groups()).filter((g) => g !== `${TOPIC}.record`);
  // Each proxy's verdict group alone: a group of its own over the events topic would fetch every Command and Response.
  assert.is(mine.length, 2, mine.join(', '));
  assert.ok(mine.every((g) => /^pgroups\.verdicts\.proxy-1\.[0-9a-f]{12}$/.test(g)), mine.join(', '));
  // The verdict consumers read from the topic's ends at connect: no probe needed before publishing.
  const sent = Array.from({ length: 10 }, request);
  for (const e of sent) await query.publish(e);
  await untilTrue('every request read by both proxies and recorded', async () => sent.every((e) => seen.a.includes(e.event_id) && seen.b.includes(e.event_id) && seen.record.includes(e.event_id)), 30_000);
  await new Promise((r) => setTimeout(r, 500));
  assert.is(seen.record.length, sent.length, 'the events topic holds each request once');
  assert.is(seen.a.length, sent.length);
  await aTerminations.close();
  const late = request();
  await query.publish(late);
  await untilTrue('b to read the request after a closed its reader', async () => seen.b.includes(late.event_id), 30_000);
  assert.not.ok(seen.a.includes(late.event_id), 'a closed reader hears nothing more');
  await record.close();
});

test('a process that waits on no verdicts cannot read termination requests per process', async () => {
  const q = await bus('query-3');
  try {
    await q.subscribe({ group: 'terminations', perProcess: true, types: ['SessionTerminationRequested'], handler: async () => undefined });
    assert.unreachable('subscribed');
  } catch (err) {
    assert.is((err as { code?: string }).code, 'CONFIG_INVALID');
  }
});

test('a per-process group a dead process left is listed as vacant and deleted by the sweep after the expiry; a live one is kept', async () => {
  const live = await bus('query-1');
  await live.subscribe({ group: 'session-ends', perProcess: true, from: 'latest', types: ['SessionClosed'], handler: async () => undefined });
  // A process that died: its group has committed offsets and no member, and nobody deleted it.
  const dead = new Consumer({ clientId: 'dead', bootstrapBrokers: [(await ready).bootstrap], groupId: `${TOPIC}.terminations.proxy-9.0123456789ab` });
  const deadStream = await dead.consume({ topics: [TOPIC], mode: 'latest' });
  deadStream.on('data', () => undefined);
  await untilTrue('the dead process\'s consumer to join', async () => (await groups()).includes(`${TOPIC}.terminations.proxy-9.0123456789ab`), 30_000);
  await deadStream.close();
  await dead.close(true);
  assert.equal(await live.vacantProcessGroups(), [`${TOPIC}.terminations.proxy-9.0123456789ab`]);
  // The ledger's sweeper: no verdict lease is vacant here, so it never reads the store.
  const store = { query: () => Promise.reject(new Error('no verdict lease is vacant: the store is not asked')) } as unknown as Store;
  const sweeper = new LeaseSweeper({ leases: live, bus: live, store, logger: silentLogger, expiryMs: 1_000, everyMs: 60_000 });
  const t0 = Date.now();
  await sweeper.sweep(t0);
  assert.ok((await groups()).includes(`${TOPIC}.terminations.proxy-9.0123456789ab`), 'kept before the expiry');
  await sweeper.sweep(t0 + 1_000);
  const left = await groups();
  assert.not.ok(left.includes(`${TOPIC}.terminations.proxy-9.0123456789ab`), left.join(', '));
  assert.ok(left.some((g) => g.startsWith(`${TOPIC}.session-ends.query-1.`)), 'the live process\'s group is kept');
});

test('a per-process subscription must use a group the sweep knows', async () => {
  const b = await bus('proxy-2');
  try {
    await b.subscribe({ group: 'my-reader', perProcess: true, types: ['Command'], handler: async () => undefined });
    assert.unreachable('subscribed');
  } catch (err) {
    assert.is((err as { code?: string }).code, 'CONFIG_INVALID');
  }
});

test.run();

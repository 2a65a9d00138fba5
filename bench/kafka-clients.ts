/**
 * kafkajs against another Kafka client, side by side on one real broker (issue 21): CPU per
 * message produced (idempotent, acks=all, batches of the sizes the bus's group commit sends), CPU
 * per message consumed, and a verdict-shaped round trip (a command produced, consumed by a
 * "policy" client that produces its verdict twice, events copy then reply copy, consumed back).
 *
 *   npm run bench -- kafka-clients [--messages N] [--round-trips N] [--batches 1,64,512] [--compression none,gzip]
 *
 * The other client is not a dependency of the repository: its entry module is imported from the
 * path in AGATE_BENCH_PLATFORMATIC_KAFKA (e.g. `.../node_modules/@platformatic/kafka/dist/index.js`;
 * 2.x needs Node >= 22.22 or >= 24.6, so run both clients under that Node for a fair comparison;
 * the 1.x line, from 1.35.0, runs on Node 20).
 * Without it only kafkajs is measured. CPU is this process's (all threads) and the broker's, from
 * /proc, per message; compare rows of one run, and mind the load average printed with each.
 */
import { readFileSync } from 'node:fs';
import { loadavg } from 'node:os';
import { parseArgs } from 'node:util';
import kafkajs from 'kafkajs';
import { installKafkajsIdleFix } from '../core/src/bus/kafkajs-idle-fix.js';
import { startKafka, type KafkaBroker } from '../test/harness/kafka.js';

interface Msg {
  key: string;
  value: Buffer;
  headers: Record<string, string>;
}

interface ProducerUnderTest {
  send(topic: string, messages: Msg[]): Promise<void>;
  close(): Promise<void>;
}

interface ConsumerUnderTest {
  close(): Promise<void>;
}

/** What the benchmark needs of a client; each client below adapts its own API to it. */
interface ClientUnderTest {
  name: string;
  compressions: string[];
  producer(compression: string): Promise<ProducerUnderTest>;
  /** A group consumer of `topic` from its beginning (or its end), calling `onMessage` with each record's key. */
  consumer(group: string, topic: string, fromBeginning: boolean, onMessage: (key: string) => void): Promise<ConsumerUnderTest>;
}

/** The bus's consumer settings (kafka-bus.ts FETCH, MEMBERSHIP). */
const FETCH_WAIT_MS = 500;
const MEMBERSHIP = { sessionTimeout: 10_000, heartbeatInterval: 1_000 };

function kafkajsClient(bootstrap: string): ClientUnderTest {
  installKafkajsIdleFix(); // as the bus runs it
  const kafka = new kafkajs.Kafka({ clientId: 'bench-kafkajs', brokers: [bootstrap], logLevel: kafkajs.logLevel.NOTHING });
  const codecs: Record<string, kafkajs.CompressionTypes> = { none: kafkajs.CompressionTypes.None, gzip: kafkajs.CompressionTypes.GZIP };
  return {
    name: 'kafkajs 2.2.4',
    compressions: Object.keys(codecs),
    async producer(compression) {
      const p = kafka.producer({ idempotent: true, maxInFlightRequests: 1, createPartitioner: kafkajs.Partitioners.DefaultPartitioner });
      await p.connect();
      return {
        send: async (topic, messages) => void (await p.sendBatch({ topicMessages: [{ topic, messages }], acks: -1, compression: codecs[compression] })),
        close: () => p.disconnect(),
      };
    },
    async consumer(group, topic, fromBeginning, onMessage) {
      const c = kafka.consumer({ groupId: group, maxWaitTimeInMs: FETCH_WAIT_MS, minBytes: 1, ...MEMBERSHIP });
      await c.connect();
      await c.subscribe({ topic, fromBeginning });
      let joined!: () => void;
      const ready = new Promise<void>((r) => (joined = r));
      c.on(c.events.GROUP_JOIN, () => joined());
      await c.run({ autoCommit: true, eachMessage: async ({ message }) => onMessage(message.key?.toString() ?? '') });
      await ready;
      return { close: () => c.disconnect() };
    },
  };
}

/** The part of @platformatic/kafka's API used here (it is loaded from a path, untyped). */
interface PlatformaticModule {
  Producer: new (o: Record<string, unknown>) => { send(o: Record<string, unknown>): Promise<unknown>; close(): Promise<void> };
  Consumer: new (o: Record<string, unknown>) => {
    consume(o: Record<string, unknown>): Promise<NodeJS.EventEmitter & { close(): Promise<void> }>;
    close(force?: boolean): Promise<void>;
    on(event: string, listener: () => void): void;
  };
  stringSerializer: (s?: string) => Buffer | undefined;
}

async function platformaticClient(bootstrap: string, entry: string): Promise<ClientUnderTest> {
  const m = (await import(entry)) as PlatformaticModule;
  const pkg = JSON.parse(readFileSync(new URL('../package.json', `file://${entry.replace(/\/dist\/index\.js$/, '/dist/')}`), 'utf8')) as { version: string };
  return {
    name: `@platformatic/kafka ${pkg.version}`,
    compressions: ['none', 'gzip', 'lz4', 'zstd'],
    async producer(compression) {
      const p = new m.Producer({ clientId: 'bench-platformatic', bootstrapBrokers: [bootstrap], idempotent: true, acks: -1, serializers: { headerKey: m.stringSerializer, headerValue: m.stringSerializer }, ...(compression === 'none' ? {} : { compression }) });
      return {
        send: async (topic, messages) => void (await p.send({ messages: messages.map((x) => ({ topic, key: Buffer.from(x.key), value: x.value, headers: x.headers })) })),
        close: () => p.close(),
      };
    },
    async consumer(group, topic, fromBeginning, onMessage) {
      const c = new m.Consumer({ clientId: 'bench-platformatic', bootstrapBrokers: [bootstrap], groupId: group, maxWaitTime: FETCH_WAIT_MS, minBytes: 1, ...MEMBERSHIP, autocommit: 1_000 });
      const stream = await c.consume({ topics: [topic], mode: fromBeginning ? 'earliest' : 'latest', fallbackMode: fromBeginning ? 'earliest' : 'latest' });
      stream.on('data', (message: { key: Buffer | undefined }) => onMessage(message.key?.toString() ?? ''));
      return {
        close: async () => {
          await stream.close();
          await c.close(true);
        },
      };
    },
  };
}

const cpuSelf = () => {
  const u = process.cpuUsage();
  return (u.user + u.system) / 1e3; // ms
};

function cpuOf(pid: number): number {
  const f = readFileSync(`/proc/${pid}/stat`, 'utf8').split(') ')[1]!.split(' ');
  return (Number(f[11]) + Number(f[12])) * 10; // ms (100 ticks a second)
}

function percentile(sorted: number[], p: number): number {
  return sorted[Math.min(sorted.length - 1, Math.floor((p / 100) * sorted.length))]!;
}

/** A Response-sized event with the bus's headers, keyed by one of 64 sessions. */
function message(i: number): Msg {
  return { key: `session-${i % 64}`, value: Buffer.alloc(420, i % 251), headers: { 'agate-type': 'Response', traceparent: '00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01' } };
}

async function untilTrue(check: () => boolean, timeoutMs: number, what: string): Promise<void> {
  const end = Date.now() + timeoutMs;
  while (!check()) {
    if (Date.now() > end) throw new Error(`timed out: ${what}`);
    await new Promise((r) => setTimeout(r, 5));
  }
}

/** Measures `work` over `count` messages: this process's and the broker's CPU µs per message, and messages a second. */
async function measured(broker: KafkaBroker, count: number, work: () => Promise<void>): Promise<{ self: number; broker: number; perSec: number }> {
  const s0 = cpuSelf();
  const b0 = cpuOf(broker.pid!);
  const t0 = performance.now();
  await work();
  const ms = performance.now() - t0;
  return { self: ((cpuSelf() - s0) * 1000) / count, broker: ((cpuOf(broker.pid!) - b0) * 1000) / count, perSec: (count / ms) * 1000 };
}

let topicSeq = 0;
async function freshTopic(admin: kafkajs.Admin, prefix: string): Promise<string> {
  const topic = `${prefix}-${process.pid}-${topicSeq++}`;
  // A loaded broker can answer "does not host this topic-partition" while the leaders settle.
  for (let attempt = 1; ; attempt++) {
    try {
      await admin.createTopics({ waitForLeaders: true, topics: [{ topic, numPartitions: 6, replicationFactor: 1 }] });
      return topic;
    } catch (err) {
      if ((err as { retriable?: boolean }).retriable !== true || attempt === 10) throw err;
      await new Promise((r) => setTimeout(r, 500));
    }
  }
}

export async function run(argv: string[]): Promise<void> {
  const { values } = parseArgs({
    args: argv,
    options: {
      messages: { type: 'string', default: '50000' },
      'round-trips': { type: 'string', default: '1000' },
      batches: { type: 'string', default: '1,64,512' },
      compression: { type: 'string', default: 'none,gzip,lz4,zstd' },
    },
  });
  const n = Number(values.messages);
  const trips = Number(values['round-trips']);
  const batches = values.batches.split(',').map(Number);
  const compressions = values.compression.split(',');
  const broker = await startKafka();
  try {
    const clients = [kafkajsClient(broker.bootstrap)];
    const entry = process.env.AGATE_BENCH_PLATFORMATIC_KAFKA;
    if (entry !== undefined) clients.push(await platformaticClient(broker.bootstrap, entry));
    const admin = new kafkajs.Kafka({ clientId: 'bench-admin', brokers: [broker.bootstrap], logLevel: kafkajs.logLevel.NOTHING }).admin();
    await admin.connect();
    console.log(`Kafka clients side by side, Node ${process.version}, one broker (Kafka 4.4), 6 partitions, idempotent producer, acks=all, ${new Date().toISOString()}\n`);

    console.log(`Produce: ${n} messages of 420 bytes with the bus's two headers, sent in batches of B one after the other (the bus's group commit)\n`);
    console.log('| client | batch | compression | msgs/s | client CPU µs/msg | broker CPU µs/msg | load |');
    console.log('|---|---:|---|---:|---:|---:|---|');
    for (const batch of batches) {
      for (const compression of compressions) {
        for (const client of clients) {
          if (!client.compressions.includes(compression)) continue;
          const topic = await freshTopic(admin, 'produce');
          const p = await client.producer(compression);
          await p.send(topic, [message(0)]); // connects and fetches metadata outside the measurement
          const count = batch === 1 ? Math.min(n, 3_000) : n;
          const f = await measured(broker, count, async () => {
            for (let i = 0; i < count; i += batch) await p.send(topic, Array.from({ length: Math.min(batch, count - i) }, (_, j) => message(i + j)));
          });
          await p.close();
          console.log(`| ${client.name} | ${batch} | ${compression} | ${f.perSec.toFixed(0)} | ${f.self.toFixed(1)} | ${f.broker.toFixed(1)} | ${loadavg()[0]!.toFixed(1)} |`);
        }
      }
    }

    console.log(`\nConsume: ${n} messages already on a topic (written by kafkajs in batches of 512), read by a new group from the beginning\n`);
    console.log('| client | msgs/s | client CPU µs/msg | broker CPU µs/msg | load |');
    console.log('|---|---:|---:|---:|---|');
    const filled = await freshTopic(admin, 'consume');
    {
      const p = await clients[0]!.producer('none');
      for (let i = 0; i < n; i += 512) await p.send(filled, Array.from({ length: Math.min(512, n - i) }, (_, j) => message(i + j)));
      await p.close();
    }
    for (const client of clients) {
      let got = 0;
      const s0 = cpuSelf();
      const b0 = cpuOf(broker.pid!);
      const t0 = performance.now();
      const c = await client.consumer(`consume-${client.name.replace(/\W+/g, '-')}-${Date.now()}`, filled, true, () => void (got += 1));
      await untilTrue(() => got >= n, 120_000, `${client.name} consuming ${n} messages`);
      const ms = performance.now() - t0;
      const self = cpuSelf() - s0;
      const b = cpuOf(broker.pid!) - b0;
      await c.close();
      // Includes joining the group (a few hundred ms, little CPU); the same for both clients.
      console.log(`| ${client.name} | ${((n / ms) * 1000).toFixed(0)} | ${((self * 1000) / n).toFixed(1)} | ${((b * 1000) / n).toFixed(1)} | ${loadavg()[0]!.toFixed(1)} |`);
    }

    console.log(`\nVerdict-shaped round trip, ${trips} one after the other: command produced (acks=all) → a second client consumes it and produces the verdict to the events topic, then (acknowledged) to the reply topic → the first client's consumer of the reply topic reads it\n`);
    console.log('| client | p50 ms | p99 ms | CPU µs per round trip (both sides) | broker CPU µs per round trip | load |');
    console.log('|---|---:|---:|---:|---:|---|');
    for (const client of clients) {
      const commands = await freshTopic(admin, 'commands');
      const events = await freshTopic(admin, 'events');
      const replies = await freshTopic(admin, 'replies');
      const proxyProducer = await client.producer('none');
      const policyProducer = await client.producer('none');
      const arrived = new Map<string, () => void>();
      const policy = await client.consumer(`policy-${Date.now()}`, commands, true, (key) => {
        const verdict = { key, value: Buffer.alloc(200, 1), headers: { 'agate-type': 'Verdict' } };
        policyProducer.send(events, [verdict]).then(() => policyProducer.send(replies, [verdict])).catch((err: unknown) => console.error(`${client.name}: a verdict send failed: ${(err as Error).message}`));
      });
      const waiter = await client.consumer(`verdicts-${Date.now()}`, replies, true, (key) => arrived.get(key)?.());
      const times: number[] = [];
      const warm = 50;
      const f = await measured(broker, trips + warm, async () => {
        for (let i = 0; i < trips + warm; i++) {
          const key = `cmd-${i}`;
          const got = new Promise<void>((r) => arrived.set(key, r));
          const t0 = performance.now();
          await proxyProducer.send(commands, [{ key, value: Buffer.alloc(300, 2), headers: { 'agate-type': 'Command' } }]);
          await got;
          arrived.delete(key);
          if (i >= warm) times.push(performance.now() - t0);
        }
      });
      times.sort((a, b) => a - b);
      await Promise.all([policy.close(), waiter.close(), proxyProducer.close(), policyProducer.close()]);
      console.log(`| ${client.name} | ${percentile(times, 50).toFixed(2)} | ${percentile(times, 99).toFixed(2)} | ${f.self.toFixed(0)} | ${f.broker.toFixed(0)} | ${loadavg()[0]!.toFixed(1)} |`);
    }
    await admin.disconnect();
  } finally {
    await broker.destroy();
  }
}

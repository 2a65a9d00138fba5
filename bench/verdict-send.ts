/**
 * What a verdict's two copies cost on Kafka, side by side (acks=all, real broker): the events-topic
 * copy and the verdicts-topic copy in one request (unsafe: their partitions succeed or fail
 * separately), one after the other (what KafkaBus does), or in one Kafka transaction.
 *
 *   npm run bench -- verdict-send [--n N]
 */
import { parseArgs } from 'node:util';
import { Admin, Producer, stringSerializers } from '@platformatic/kafka';
import { createTopics } from '../core/src/bus/kafka-topics.js';
import { startKafka } from '../test/harness/kafka.js';

type Send = (i: number) => Promise<void>;

function percentile(sorted: number[], p: number): number {
  return sorted[Math.min(sorted.length - 1, Math.floor((p / 100) * sorted.length))]!;
}

async function measure(n: number, send: Send): Promise<{ p50: number; p99: number }> {
  const times: number[] = [];
  for (let i = 0; i < n + 50; i++) {
    const t0 = performance.now();
    await send(i);
    if (i >= 50) times.push(performance.now() - t0); // the first 50 warm up connections
  }
  times.sort((a, b) => a - b);
  return { p50: percentile(times, 50), p99: percentile(times, 99) };
}

export async function run(argv: string[]): Promise<void> {
  const { values } = parseArgs({ args: argv, options: { n: { type: 'string', default: '1000' } } });
  const n = Number(values.n);
  const broker = await startKafka();
  try {
    const client = { bootstrapBrokers: [broker.bootstrap] };
    const admin = new Admin({ clientId: 'bench', ...client });
    await createTopics(admin, ['events', 'verdicts'].map((topic) => ({ topic, partitions: 6, replicationFactor: 1, configs: {} })));
    await admin.close();
    const copies = (i: number) => [
      { topic: 'events', key: `s-${i % 8}`, value: Buffer.alloc(300, i % 251) },
      { topic: 'verdicts', key: `c-${i}`, value: Buffer.alloc(300, i % 251) },
    ];
    const serializers = { ...stringSerializers, value: (v?: Buffer) => v };
    const idempotent = new Producer<string, Buffer, string, string>({ clientId: 'bench', ...client, idempotent: true, acks: -1, serializers });
    const transactional = new Producer<string, Buffer, string, string>({ clientId: 'bench-txn', ...client, idempotent: true, acks: -1, transactionalId: 'bench-verdicts', serializers });
    const rows: [string, { p50: number; p99: number }][] = [
      ['one request (unsafe)', await measure(n, async (i) => void (await idempotent.send({ messages: copies(i), acks: -1 })))],
      ['events copy acked, then verdicts copy', await measure(n, async (i) => {
        const [record, reply] = copies(i);
        await idempotent.send({ messages: [record!], acks: -1 });
        await idempotent.send({ messages: [reply!], acks: -1 });
      })],
      ['one transaction (read_committed)', await measure(n, async (i) => {
        const txn = await transactional.beginTransaction();
        await txn.send({ messages: copies(i), acks: -1 });
        await txn.commit();
      })],
    ];
    await idempotent.close();
    await transactional.close();
    console.log(`verdict send on Kafka (one broker, acks=all), ${n} sequential verdicts each\n`);
    for (const [name, r] of rows) console.log(`${name.padEnd(40)}p50 ${r.p50.toFixed(2)} ms   p99 ${r.p99.toFixed(2)} ms`);
  } finally {
    await broker.destroy();
  }
}

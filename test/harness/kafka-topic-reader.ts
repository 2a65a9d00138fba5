import { Consumer, stringDeserializer } from '@platformatic/kafka';

/** One record of a topic as a test looks at it. */
interface TopicRecord {
  key: string | undefined;
  value: Buffer;
  headers: Record<string, string>;
  partition: number;
  offset: bigint;
}

/**
 * Reads a topic from its beginning, with a client of its own (a fresh consumer group), until
 * `done(records so far)` says so; fails after `timeoutMs` naming what had arrived.
 */
export async function readTopic(bootstrap: string, topic: string, done: (records: readonly TopicRecord[]) => boolean, timeoutMs = 30_000): Promise<TopicRecord[]> {
  const consumer = new Consumer({
    clientId: 'agate-test-reader',
    bootstrapBrokers: [bootstrap],
    groupId: `test-reader-${topic}-${process.pid}-${Date.now()}`,
    maxWaitTime: 100,
    deserializers: { key: stringDeserializer, headerKey: (b?: Buffer) => stringDeserializer(b) ?? '', headerValue: (b?: Buffer) => stringDeserializer(b) ?? '' },
  });
  const records: TopicRecord[] = [];
  try {
    const stream = await consumer.consume({ topics: [topic], mode: 'earliest', autocommit: false });
    try {
      await new Promise<void>((resolve, reject) => {
        const timer = setTimeout(() => reject(new Error(`${topic}: the expected records did not arrive within ${timeoutMs} ms (${records.length} arrived)`)), timeoutMs);
        stream.on('error', (err) => (clearTimeout(timer), reject(err)));
        stream.on('data', (m: { key: string | undefined; value: Buffer; headers: Map<string, string>; partition: number; offset: bigint }) => {
          records.push({ key: m.key, value: m.value, headers: Object.fromEntries(m.headers), partition: m.partition, offset: m.offset });
          if (done(records)) (clearTimeout(timer), resolve());
        });
      });
    } finally {
      await stream.close();
    }
  } finally {
    await consumer.close(true);
  }
  return records;
}

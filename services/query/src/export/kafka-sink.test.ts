import { suite } from '../../../../test/harness/suite.js';
import * as assert from 'uvu/assert';
import { createHash } from 'node:crypto';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { startKafka, type KafkaBroker } from '../../../../test/harness/kafka.js';
import { readTopic } from '../../../../test/harness/kafka-topic-reader.js';
import type { OcsfEvent } from '../ocsf/map.js';
import { exportEvents } from './exporter.js';
import { KafkaSink } from './kafka-sink.js';
import { PositionFile } from './position-file.js';
import type { ExportSource } from './types.js';

/*
 * The Kafka sink against a real Kafka 4.x broker: every event arrives, in order per session; a
 * broker that goes away stops the export without moving its position, and the export resumes
 * from the last acknowledged batch once the broker is back, losing nothing.
 */
const TOTAL = 600;
const BATCH = 50;

function source(): ExportSource {
  const events = Array.from({ length: TOTAL }, (_, i): OcsfEvent => ({
    class_uid: 6005, time: 1_700_000_000_000 + i, metadata: { sequence: i + 1, log_name: 'embedded', uid: `e${i + 1}`, correlation_uid: `s${i % 7}` },
  }));
  return { chains: async () => ['embedded'], read: async (_c, after, limit) => events.filter((e) => e.metadata.sequence > after).slice(0, limit) };
}

/** Reads the whole topic from the start until `count` distinct events arrived: uid → times seen, and uids per session in order. */
async function consume(bootstrap: string, topic: string, count: number): Promise<{ seen: Map<string, number>; bySession: Map<string, number[]> }> {
  const uids = new Set<string>();
  const records = await readTopic(bootstrap, topic, (rs) => {
    uids.add(String((JSON.parse(rs[rs.length - 1]!.value.toString('utf8')) as OcsfEvent).metadata.uid)); // called once per record read
    return uids.size >= count;
  }, 60_000);
  const seen = new Map<string, number>();
  const bySession = new Map<string, number[]>();
  for (const r of records) {
    const e = JSON.parse(r.value.toString('utf8')) as OcsfEvent;
    assert.is(r.key, e.metadata.correlation_uid);
    assert.is(r.headers['agate-seq'], String(e.metadata.sequence));
    seen.set(String(e.metadata.uid), (seen.get(String(e.metadata.uid)) ?? 0) + 1);
    const list = bySession.get(r.key!) ?? [];
    list.push(e.metadata.sequence);
    bySession.set(r.key!, list);
  }
  return { seen, bySession };
}

let broker: KafkaBroker;
const dir = mkdtempSync(join(tmpdir(), 'agate-kafka-sink-'));
const sinks: KafkaSink[] = [];
const kafka = suite('KafkaSink + exportEvents');
kafka.before(async () => {
  broker = await startKafka();
});
kafka.after(async () => {
  for (const s of sinks) await s.close().catch(() => undefined);
  await broker?.destroy();
  rmSync(dir, { recursive: true, force: true });
});

kafka('every event is published once, in order per session, and the position saved', async () => {
  const sink = new KafkaSink({ brokers: [broker.bootstrap], topic: 'ocsf-all', partitions: 3 });
  sinks.push(sink);
  const positions = new PositionFile(join(dir, 'all.json'));
  const report = await exportEvents(source(), sink, positions, { batch: BATCH });
  assert.is(report.delivered, TOTAL);
  assert.equal(await positions.load(), { embedded: TOTAL });
  const { seen, bySession } = await consume(broker.bootstrap, 'ocsf-all', TOTAL);
  assert.is(seen.size, TOTAL);
  assert.ok([...seen.values()].every((c) => c === 1));
  for (const seqs of bySession.values()) assert.equal(seqs, [...seqs].sort((a, b) => a - b));
});

kafka('a broker outage stops the export at its last acknowledged batch; a later run delivers the rest', async () => {
  const positions = new PositionFile(join(dir, 'outage.json'));
  const first = new KafkaSink({ brokers: [broker.bootstrap], topic: 'ocsf-outage', maxAttempts: 2, baseDelayMs: 10 });
  sinks.push(first);
  assert.is((await exportEvents(source(), first, positions, { batch: BATCH, maxEvents: 200 })).delivered, 200);
  await broker.stop({ hard: true });
  try {
    await exportEvents(source(), first, positions, { batch: BATCH });
    assert.unreachable('the export should fail while the broker is down');
  } catch (err) {
    assert.is((err as { code: string }).code, 'EXPORT_DELIVERY_FAILED');
  }
  assert.equal(await positions.load(), { embedded: 200 }, 'the position stays at the last acknowledged batch');
  await first.close().catch(() => undefined);
  await broker.restart();
  const second = new KafkaSink({ brokers: [broker.bootstrap], topic: 'ocsf-outage' });
  sinks.push(second);
  assert.is((await exportEvents(source(), second, positions, { batch: BATCH })).delivered, TOTAL - 200);
  const { seen } = await consume(broker.bootstrap, 'ocsf-outage', TOTAL);
  assert.is(seen.size, TOTAL, 'none lost');
});

kafka('an agent\'s 2 MB statement and 500 statements of 4 KB in one session reach the topic; the long text cut to fit, with its length and digest', async () => {
  // Both were refused by the broker (MESSAGE_TOO_LARGE, its message.max.bytes of 1 MB), for good:
  // the export stopped there, and nothing recorded after them reached the SIEM.
  const long = `DROP TABLE t /* ${'x'.repeat(2 << 20)} */`;
  const events: OcsfEvent[] = [long, ...Array.from({ length: 500 }, (_, i) => `SELECT ${i} /* ${'y'.repeat(4096)} */`)].map((text, i) => ({
    class_uid: 6005, time: 1_700_000_000_000 + i, metadata: { sequence: i + 1, log_name: 'embedded', uid: `big${i + 1}`, correlation_uid: 'agent' },
    query_info: { query_string: text },
  }));
  const big: ExportSource = { chains: async () => ['embedded'], read: async (_c, after, limit) => events.filter((e) => e.metadata.sequence > after).slice(0, limit) };
  const sink = new KafkaSink({ brokers: [broker.bootstrap], topic: 'ocsf-big', maxAttempts: 2, baseDelayMs: 10 });
  sinks.push(sink);
  const positions = new PositionFile(join(dir, 'big.json'));
  assert.is((await exportEvents(big, sink, positions, { batch: 500 })).delivered, 501);
  const records = await readTopic(broker.bootstrap, 'ocsf-big', (rs) => rs.length >= 501, 60_000);
  const got = records.map((r) => JSON.parse(r.value.toString('utf8')) as OcsfEvent & { query_info: { query_string: string }; unmapped?: { agate: { truncated: unknown[] } } });
  assert.equal(got.map((e) => e.metadata.sequence), events.map((e) => e.metadata.sequence), 'all, in order');
  assert.ok(got[0]!.query_info.query_string.startsWith('DROP TABLE t /* x') && got[0]!.query_info.query_string.endsWith('…'));
  assert.equal(got[0]!.unmapped!.agate.truncated, [{ field: 'query_info.query_string', chars: long.length, sha256: createHash('sha256').update(long).digest('hex') }]);
  assert.ok(got.slice(1).every((e, i) => e.query_info.query_string === (events[i + 1]!.query_info as { query_string: string }).query_string && e.unmapped === undefined), 'the others whole');
});

kafka.run();

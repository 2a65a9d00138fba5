import * as assert from 'uvu/assert';
import { mkdtempSync, rmSync } from 'node:fs';
import { randomUUID } from 'node:crypto';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { Bus } from '../../core/src/bus/bus.js';
import { KafkaBus, consumerGroupPrefix } from '../../core/src/bus/kafka-bus.js';
import { keyPartitioner } from '../../core/src/bus/kafka-client.js';
import { SingleObjectWire } from '../../core/src/bus/single-object-wire.js';
import { silentLogger } from '../../core/src/log.js';
import { EmbeddedStore } from '../../core/src/store/embedded.js';
import type { Store } from '../../core/src/store/store.js';
import { EventCodec } from '../../schemas/src/codec.js';
import type { AgateEvent } from '../../schemas/src/events.js';
import { SAMPLES } from '../../schemas/src/samples.js';
import { LedgerService } from '../../services/ledger/src/ledger.js';
import { generateSignerKey, parseSignerKey } from '../../services/ledger/src/note.js';
import { verifyChain } from '../../services/ledger/src/verify.js';
import { startKafka, type KafkaBroker } from './kafka.js';

/*
 * Ledger instances in one consumer group over the real Kafka broker and one embedded store, for
 * the suites where partitions (one hash chain each) move between instances. The broker starts
 * with the first bus; `close` stops every bus, the broker and the store.
 */
interface KafkaLedgers {
  /** The one store every ledger writes (unless a test hands a ledger a wrapper of it). */
  readonly store: EmbeddedStore;
  /** A bus on `topic` (3 partitions) in the group, as instance `instanceId`. */
  bus(instanceId: string): Promise<KafkaBus>;
  /** Publishes `n` fresh Commands of as many sessions, through a bus of its own (instance `producer`). */
  publisher(): Promise<(n: number) => Promise<void>>;
  /** A ledger reading `bus` and writing `store` (default: the shared one). */
  ledgerOn(bus: Bus, store?: Store): LedgerService;
  /** How many records the ledger holds for `topic`, and of how many distinct events. */
  counts(): Promise<{ rows: number; events: number }>;
  /** Asserts the three chains of `topic` have no gap in their sequence and each verifies. */
  assertChainsVerify(): Promise<void>;
  close(): Promise<void>;
}

export function kafkaLedgers(topic: string): KafkaLedgers {
  const codec = new EventCodec();
  const root = mkdtempSync(join(tmpdir(), `agate-${topic}-`));
  const store = EmbeddedStore.open(join(root, 'store'));
  const signer = parseSignerKey(generateSignerKey('agate.test/ledger'));
  let broker: KafkaBroker | undefined;
  const buses: KafkaBus[] = [];
  const byTopic = { t: `${topic}-%` };
  const bus = async (instanceId: string): Promise<KafkaBus> => {
    broker ??= await startKafka();
    const b = await KafkaBus.connect({
      brokers: [broker.bootstrap], instanceId, groupPrefix: consumerGroupPrefix(topic), eventsTopic: topic, verdictsTopic: `${topic}.verdicts`,
      partitions: PARTITIONS, replicationFactor: 1, wire: new SingleObjectWire(codec), logger: silentLogger, awaitsVerdicts: false,
    });
    buses.push(b);
    return b;
  };
  return {
    store,
    bus,
    async publisher() {
      const producer = await bus('producer');
      return async (n) => {
        for (const e of sessionEvents(n)) await producer.publish(e);
      };
    },
    ledgerOn: (bus, s = store) => new LedgerService({ bus, store: s, codec, chainId: 'unused', logger: silentLogger, signer }),
    async counts() {
      const [r] = await store.query<{ n: string; ids: string }>('SELECT count() AS n, uniqExact(event_id) AS ids FROM agate.ledger WHERE chain_id LIKE {t:String}', byTopic);
      return { rows: Number(r!.n), events: Number(r!.ids) };
    },
    async assertChainsVerify() {
      const chains = await store.query<{ chain_id: string; n: string; last: string }>('SELECT chain_id, count() AS n, max(seq) AS last FROM agate.ledger WHERE chain_id LIKE {t:String} GROUP BY chain_id ORDER BY chain_id', byTopic);
      assert.is(chains.length, PARTITIONS);
      for (const c of chains) {
        assert.is(Number(c.last), Number(c.n), `chain ${c.chain_id} has no gap`);
        const report = await verifyChain(store, codec, c.chain_id);
        assert.ok(report.ok, `chain ${c.chain_id} verifies: ${JSON.stringify(report)}`);
      }
    },
    async close() {
      for (const b of buses) await b.close().catch(() => undefined);
      await broker?.destroy();
      await store.close();
      rmSync(root, { recursive: true, force: true });
    },
  };
}

/** The bus as a ledger sees it, noting which streams (partitions) reached this instance. */
export function watched(bus: Bus, streams: Set<string>): Bus {
  return {
    publish: (e) => bus.publish(e),
    requestVerdict: (c, ms, o) => bus.requestVerdict(c, ms, o),
    subscribe: (o) => bus.subscribe({ ...o, handler: (batch, source) => (streams.add(source.stream), o.handler(batch, source)) }),
    close: () => bus.close(),
  };
}

/**
 * `n` Commands of as many sessions, dealt to the 3 partitions in turn: random session ids alone
 * left a partition empty now and then (12 events miss one of 3 partitions about 2 % of the time),
 * and the suites assert that every partition reached its ledger.
 */
function sessionEvents(n: number): AgateEvent[] {
  return Array.from({ length: n }, (_, i) => ({ ...SAMPLES.Command, event_id: randomUUID(), session_id: sessionOnPartition(i % PARTITIONS), text: `SELECT ${i}` }) as AgateEvent);
}

const PARTITIONS = 3;

/** A fresh session id the bus's partitioner (the producer's, keyed by session) puts on `partition`. */
function sessionOnPartition(partition: number): string {
  for (;;) {
    const id = `s-${randomUUID()}`;
    // The producer takes the partitioner's number modulo the partition count.
    if (keyPartitioner({ topic: 'any', key: id, value: null }, Buffer.from(id)) % PARTITIONS === partition) return id;
  }
}

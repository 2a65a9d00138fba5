import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import { mkdtempSync, rmSync } from 'node:fs';
import { randomUUID } from 'node:crypto';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { Bus } from '../../core/src/bus/bus.js';
import { KafkaBus, consumerGroupPrefix } from '../../core/src/bus/kafka-bus.js';
import { SingleObjectWire } from '../../core/src/bus/single-object-wire.js';
import { silentLogger } from '../../core/src/log.js';
import { EmbeddedStore } from '../../core/src/store/embedded.js';
import { EventCodec } from '../../schemas/src/codec.js';
import type { AgateEvent } from '../../schemas/src/events.js';
import { SAMPLES } from '../../schemas/src/samples.js';
import { LedgerService } from '../../services/ledger/src/ledger.js';
import { generateSignerKey, parseSignerKey } from '../../services/ledger/src/note.js';
import { verifyChain } from '../../services/ledger/src/verify.js';
import { startKafka, type KafkaBroker } from '../harness/kafka.js';
import { untilTrue } from '../harness/until.js';

/*
 * Two ledger instances in one consumer group over one store and the real Kafka broker: each
 * partition is one hash chain, written by whichever instance owns the partition. A partition
 * that moves to the second instance and comes back must continue the chain from the store, not
 * from the first instance's old head (which reused sequence numbers: a false "inserted record").
 */
const codec = new EventCodec();
const topic = 'ledger-rebalance';
const root = mkdtempSync(join(tmpdir(), 'agate-ledger-rebalance-'));
const store = EmbeddedStore.open(join(root, 'store'));
const signer = parseSignerKey(generateSignerKey('agate.test/ledger'));
let broker: KafkaBroker | undefined;
const buses: KafkaBus[] = [];

async function kafkaBus(instanceId: string): Promise<KafkaBus> {
  broker ??= await startKafka();
  const b = await KafkaBus.connect({
    brokers: [broker.bootstrap], instanceId, groupPrefix: consumerGroupPrefix(topic), eventsTopic: topic, verdictsTopic: `${topic}.verdicts`,
    partitions: 3, replicationFactor: 1, wire: new SingleObjectWire(codec), logger: silentLogger, awaitsVerdicts: false,
  });
  buses.push(b);
  return b;
}

/** The bus as a ledger sees it, noting which streams (partitions) reached this instance. */
function watched(bus: Bus, streams: Set<string>): Bus {
  return {
    publish: (e) => bus.publish(e),
    requestVerdict: (c, ms, o) => bus.requestVerdict(c, ms, o),
    subscribe: (o) => bus.subscribe({ ...o, handler: (batch, source) => (streams.add(source.stream), o.handler(batch, source)) }),
    close: () => bus.close(),
  };
}

const ledgerOn = (bus: Bus) => new LedgerService({ bus, store, codec, chainId: 'unused', logger: silentLogger, signer });

/** Events of many sessions, so every partition gets some. */
const events = (n: number): AgateEvent[] => Array.from({ length: n }, (_, i) => ({ ...SAMPLES.Command, event_id: randomUUID(), session_id: `s-${randomUUID()}`, text: `SELECT ${i}` }) as AgateEvent);

const stored = async () => Number((await store.query<{ n: string }>('SELECT count() AS n FROM agate.ledger WHERE chain_id LIKE {t:String}', { t: `${topic}-%` }))[0]!.n);

const test = suite('ledger: two instances, partitions moving between them');
test.after(async () => {
  for (const b of buses) await b.close().catch(() => undefined);
  await broker?.destroy();
  await store.close();
  rmSync(root, { recursive: true, force: true });
});

test('a partition that moves away and back continues its chain from the store: no sequence repeats, every chain verifies', async () => {
  const producer = await kafkaBus('producer');
  const publish = async (n: number) => {
    for (const e of events(n)) await producer.publish(e);
  };
  let total = 0;
  const seenA = new Set<string>();
  const seenB = new Set<string>();
  const a = ledgerOn(watched(await kafkaBus('ledger-a'), seenA));
  await a.start();
  await publish(30);
  total += 30;
  await untilTrue('ledger A stores the first events', async () => (await stored()) === total, 60_000);
  assert.is(seenA.size, 3, 'ledger A alone owns every partition');

  // The second instance joins: some partitions move to it. Traffic until it has written some.
  const busB = await kafkaBus('ledger-b');
  const b = ledgerOn(watched(busB, seenB));
  await b.start();
  await untilTrue('ledger B receives a partition', async () => {
    await publish(3);
    total += 3;
    return seenB.size > 0;
  }, 60_000);
  await publish(30);
  total += 30;
  await untilTrue('both ledgers store the second traffic', async () => (await stored()) === total, 60_000);

  // The second instance leaves: its partitions come back to the first, which must not go on from its old heads.
  await b.stop();
  await busB.close();
  await publish(30);
  total += 30;
  await untilTrue('ledger A stores the traffic after B left', async () => (await stored()) === total, 60_000);
  await a.stop();

  const repeated = await store.query<{ chain_id: string; seq: string; n: string }>('SELECT chain_id, seq, count() AS n FROM agate.ledger GROUP BY chain_id, seq HAVING n > 1 LIMIT 5');
  assert.equal(repeated, [], 'no sequence number is used twice in a chain');
  const chains = await store.query<{ chain_id: string; n: string; last: string }>('SELECT chain_id, count() AS n, max(seq) AS last FROM agate.ledger WHERE chain_id LIKE {t:String} GROUP BY chain_id ORDER BY chain_id', { t: `${topic}-%` });
  assert.is(chains.length, 3);
  for (const c of chains) {
    assert.is(Number(c.last), Number(c.n), `chain ${c.chain_id} has no gap`);
    const report = await verifyChain(store, codec, c.chain_id);
    assert.ok(report.ok, `chain ${c.chain_id} verifies: ${JSON.stringify(report)}`);
  }
  const distinct = Number((await store.query<{ n: string }>('SELECT uniqExact(event_id) AS n FROM agate.ledger WHERE chain_id LIKE {t:String}', { t: `${topic}-%` }))[0]!.n);
  assert.is(distinct, total, 'every event recorded once');
});

test.run();

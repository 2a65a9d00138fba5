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
import type { Store } from '../../core/src/store/store.js';
import { EventCodec } from '../../schemas/src/codec.js';
import type { AgateEvent } from '../../schemas/src/events.js';
import { SAMPLES } from '../../schemas/src/samples.js';
import { LedgerService } from '../../services/ledger/src/ledger.js';
import { generateSignerKey, parseSignerKey } from '../../services/ledger/src/note.js';
import { verifyChain } from '../../services/ledger/src/verify.js';
import { HeldInserts } from '../harness/held-inserts.js';
import { startKafka, type KafkaBroker } from '../harness/kafka.js';
import { until } from '../harness/until.js';

/*
 * Two owners of one partition at once, over the real Kafka broker (issue #20: a scale-out run
 * held 1343 records of 1295 events). Ledger A is held inside an insert, after its head check,
 * for longer than the group's session timeout: the broker drops it from the group, ledger B
 * gets every partition and re-reads from the committed offsets what A was inserting, and stores
 * it. Then A's insert goes on. Each event must be in the ledger once and every chain verify.
 */
const codec = new EventCodec();
const topic = 'ledger-overlap';
const root = mkdtempSync(join(tmpdir(), 'agate-ledger-overlap-'));
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

const ledgerOn = (bus: Bus, s: Store) => new LedgerService({ bus, store: s, codec, chainId: 'unused', logger: silentLogger, signer });

/** Events of many sessions, so every partition gets some. */
const events = (n: number): AgateEvent[] => Array.from({ length: n }, (_, i) => ({ ...SAMPLES.Command, event_id: randomUUID(), session_id: `s-${randomUUID()}`, text: `SELECT ${i}` }) as AgateEvent);

const counts = async () => {
  const [r] = await store.query<{ n: string; ids: string }>('SELECT count() AS n, uniqExact(event_id) AS ids FROM agate.ledger WHERE chain_id LIKE {t:String}', { t: `${topic}-%` });
  return { rows: Number(r!.n), events: Number(r!.ids) };
};

/** Waits until the ledger holds `total` distinct events; on timeout, says how many records of how many events it holds. */
const allStored = (what: string, total: number) => until(what, async () => {
  const c = await counts();
  if (c.events === total) return c;
  throw new Error(`the ledger holds ${c.rows} records of ${c.events} events; ${total} were published`);
}, { timeoutMs: 90_000, retryErrors: true });

const test = suite('ledger: two owners of a partition at once, over Kafka');
test.after(async () => {
  for (const b of buses) await b.close().catch(() => undefined);
  await broker?.destroy();
  await store.close();
  rmSync(root, { recursive: true, force: true });
});

test('an owner dropped from the group mid-insert, then let go after the new owner stored the same events: each event once, every chain verifies', async () => {
  const producer = await kafkaBus('producer');
  const publish = async (n: number) => {
    for (const e of events(n)) await producer.publish(e);
  };
  let total = 0;
  const seenA = new Set<string>();
  const seenB = new Set<string>();
  const held = new HeldInserts(store);
  const a = ledgerOn(watched(await kafkaBus('ledger-a'), seenA), held.store);
  await a.start();
  await publish(12);
  total += 12;
  await allStored('ledger A stores the first events', total);
  assert.is(seenA.size, 3, 'ledger A alone owns every partition');

  held.hold();
  await publish(12);
  total += 12;
  await held.held; // A checked its head and waits in the insert: it sends no heartbeat meanwhile

  const b = ledgerOn(watched(await kafkaBus('ledger-b'), seenB), store);
  await b.start();
  // B gets the partitions once the broker has dropped A (its session timeout), and re-reads what A had not committed.
  await allStored('ledger B stores what ledger A holds', total);
  assert.is(seenB.size, 3, 'ledger B took every partition');

  held.release();
  await held.done;
  // A rejoins; both go on appending.
  await publish(12);
  total += 12;
  await allStored('both ledgers store the traffic after the overlap', total);
  await a.stop();
  await b.stop();

  assert.equal(await counts(), { rows: total, events: total }, 'each event recorded once');
  const twice = await store.query<{ chain_id: string; seq: string }>('SELECT chain_id, seq FROM agate.ledger GROUP BY chain_id, seq HAVING count() > 1 LIMIT 5');
  assert.equal(twice, [], 'no record position stored twice');
  const chains = await store.query<{ chain_id: string; n: string; last: string }>('SELECT chain_id, count() AS n, max(seq) AS last FROM agate.ledger WHERE chain_id LIKE {t:String} GROUP BY chain_id ORDER BY chain_id', { t: `${topic}-%` });
  assert.is(chains.length, 3);
  for (const c of chains) {
    assert.is(Number(c.last), Number(c.n), `chain ${c.chain_id} has no gap`);
    const report = await verifyChain(store, codec, c.chain_id);
    assert.ok(report.ok, `chain ${c.chain_id} verifies: ${JSON.stringify(report)}`);
  }
});

test.run();

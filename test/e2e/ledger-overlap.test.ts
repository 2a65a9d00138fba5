import { suite } from '../harness/suite.js';
import * as assert from 'uvu/assert';
import { HeldInserts } from '../harness/held-inserts.js';
import { kafkaLedgers, watched } from '../harness/kafka-ledgers.js';
import { until } from '../harness/until.js';

/*
 * Two owners of one partition at once, over the real Kafka broker (issue #20: a scale-out run
 * held 1343 records of 1295 events). Ledger A is held inside an insert, after its head check,
 * for longer than the group's session timeout: the broker drops it from the group, ledger B
 * gets every partition and re-reads from the committed offsets what A was inserting, and stores
 * it. Then A's insert goes on. Each event must be in the ledger once and every chain verify.
 */
const topic = 'ledger-overlap';
const ledgers = kafkaLedgers(topic);
const { store } = ledgers;

/** Waits until the ledger holds `total` distinct events; on timeout, says how many records of how many events it holds. */
async function allStored(what: string, total: number): Promise<void> {
  let seen = { rows: 0, events: 0 };
  await until(() => `${what} (the ledger holds ${seen.rows} records of ${seen.events} events; ${total} were published)`, async () => {
    seen = await ledgers.counts();
    return seen.events === total ? seen : undefined;
  }, 90_000);
}

const test = suite('ledger: two owners of a partition at once, over Kafka');
test.after(() => ledgers.close());

test('an owner dropped from the group mid-insert, then let go after the new owner stored the same events: each event once, every chain verifies', async () => {
  const publish = await ledgers.publisher();
  let total = 0;
  const seenA = new Set<string>();
  const seenB = new Set<string>();
  const held = new HeldInserts(store);
  const a = ledgers.ledgerOn(watched(await ledgers.bus('ledger-a'), seenA), held.store);
  await a.start();
  await publish(12);
  total += 12;
  await allStored('ledger A stores the first events', total);
  assert.is(seenA.size, 3, 'ledger A alone owns every partition');

  held.hold();
  await publish(12);
  total += 12;
  await held.held; // A checked its head and waits in the insert: it sends no heartbeat meanwhile

  const b = ledgers.ledgerOn(watched(await ledgers.bus('ledger-b'), seenB), store);
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

  assert.equal(await ledgers.counts(), { rows: total, events: total }, 'each event recorded once');
  const twice = await store.query<{ chain_id: string; seq: string }>('SELECT chain_id, seq FROM agate.ledger GROUP BY chain_id, seq HAVING count() > 1 LIMIT 5');
  assert.equal(twice, [], 'no record position stored twice');
  await ledgers.assertChainsVerify();
});

test.run();

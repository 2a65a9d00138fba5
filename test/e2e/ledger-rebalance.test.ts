import { suite } from '../harness/suite.js';
import * as assert from 'uvu/assert';
import { kafkaLedgers, watched } from '../harness/kafka-ledgers.js';
import { untilTrue } from '../harness/until.js';

/*
 * Two ledger instances in one consumer group over one store and the real Kafka broker: each
 * partition is one hash chain, written by whichever instance owns the partition. A partition
 * that moves to the second instance and comes back must continue the chain from the store, not
 * from the first instance's old head (which reused sequence numbers: a false "inserted record").
 */
const topic = 'ledger-rebalance';
const ledgers = kafkaLedgers(topic);
const { store } = ledgers;

const stored = async () => (await ledgers.counts()).rows;

const test = suite('ledger: two instances, partitions moving between them');
test.after(() => ledgers.close());

test('a partition that moves away and back continues its chain from the store: no sequence repeats, every chain verifies', async () => {
  const publish = await ledgers.publisher();
  let total = 0;
  const seenA = new Set<string>();
  const seenB = new Set<string>();
  const a = ledgers.ledgerOn(watched(await ledgers.bus('ledger-a'), seenA));
  await a.start();
  await publish(30);
  total += 30;
  await untilTrue('ledger A stores the first events', async () => (await stored()) === total, 60_000);
  assert.is(seenA.size, 3, 'ledger A alone owns every partition');

  // The second instance joins: some partitions move to it. Traffic until it has written some.
  const busB = await ledgers.bus('ledger-b');
  const b = ledgers.ledgerOn(watched(busB, seenB));
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
  await ledgers.assertChainsVerify();
  assert.is((await ledgers.counts()).events, total, 'every event recorded once');
});

test.run();

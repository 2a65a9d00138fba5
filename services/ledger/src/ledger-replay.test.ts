import { suite } from '../../../test/harness/suite.js';
import * as assert from 'uvu/assert';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { randomUUID } from 'node:crypto';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { Bus } from '../../../core/src/bus/bus.js';
import { LocalBus } from '../../../core/src/bus/local-bus.js';
import { AgateError, ErrorCode } from '../../../core/src/errors.js';
import { silentLogger } from '../../../core/src/log.js';
import { EmbeddedStore } from '../../../core/src/store/embedded.js';
import { EventCodec } from '../../../schemas/src/codec.js';
import type { AgateEvent } from '../../../schemas/src/events.js';
import { SAMPLES } from '../../../schemas/src/samples.js';
import { LedgerService } from './ledger.js';
import { generateSignerKey, parseSignerKey } from './note.js';
import { verifyChain } from './verify.js';
import { untilTrue } from '../../../test/harness/until.js';

/*
 * Nothing doubled: the ledger on the real embedded bus and engine, its consumer offset lost,
 * emptied, corrupted or ahead of the log. A redelivery window of two ids makes sure it is the
 * stored source positions, not the window, that recognise the replay.
 */
const codec = new EventCodec();
const root = mkdtempSync(join(tmpdir(), 'agate-ledger-replay-'));
const store = EmbeddedStore.open(join(root, 'store'));
const signer = parseSignerKey(generateSignerKey('agate.test/ledger'));
const events = (n: number): AgateEvent[] => Array.from({ length: n }, (_, i) => ({ ...Object.values(SAMPLES)[i % 6]!, event_id: randomUUID() }) as AgateEvent);
const busDir = join(root, 'bus');
const offsetFile = join(busDir, 'groups', 'ledger.offset');

const ledgerOn = (bus: Bus, chainId = 'embedded', dedupWindow = 2) => new LedgerService({ bus, store, codec, chainId, logger: silentLogger, signer, dedupWindow });

/** Publishes `n` events through a bus with a running ledger and waits until they are stored. */
async function record(n: number, expectHead: number): Promise<void> {
  const bus = new LocalBus({ dir: busDir, fsync: true, logger: silentLogger, codec });
  const ledger = ledgerOn(bus);
  try {
    await ledger.start();
    for (const e of events(n)) await bus.publish(e);
    await untilTrue(`ledger head ${expectHead}`, () => ledger.head.seq >= expectHead, { timeoutMs: 20_000, everyMs: 50 });
    assert.is(ledger.head.seq, expectHead);
  } finally {
    await ledger.stop();
    await bus.close();
  }
}

const rows = async (chain = 'embedded') => Number((await store.query<{ n: string }>('SELECT count() AS n FROM agate.ledger WHERE chain_id = {c:String}', { c: chain }))[0]!.n);

const test = suite('ledger replay: nothing doubled');
test.after(async () => {
  await store.close();
  rmSync(root, { recursive: true, force: true });
});

test('a lost offset file replays the whole log; every event stays recorded once', async () => {
  await record(30, 30);
  rmSync(offsetFile);
  await record(5, 35); // the ledger group reads all 35 again
  assert.is(await rows(), 35);
  const report = await verifyChain(store, codec, 'embedded');
  assert.ok(report.ok, JSON.stringify(report.failure));
  const [src] = await store.query<{ bad: string }>("SELECT countIf(source_next = 0) AS bad FROM agate.ledger WHERE chain_id = 'embedded'");
  assert.is(Number(src!.bad), 0, 'every record carries its bus position');
});

test('an emptied, corrupt or too-large offset file stops the ledger from starting, naming the file', async () => {
  for (const text of ['', 'garbage', '99999999']) {
    writeFileSync(offsetFile, text);
    const bus = new LocalBus({ dir: busDir, fsync: true, logger: silentLogger, codec });
    const ledger = ledgerOn(bus);
    try {
      await ledger.start();
      assert.unreachable(`started from an offset file holding ${JSON.stringify(text)}`);
    } catch (err) {
      assert.is((err as AgateError).code, ErrorCode.BUS_OFFSET_INVALID);
      assert.ok((err as Error).message.includes(offsetFile));
    } finally {
      await ledger.stop();
      await bus.close();
    }
  }
  assert.is(await rows(), 35, 'nothing was recorded twice meanwhile');
});

test('an event delivered as a replay that the store does not hold there stops the chain instead of being dropped', async () => {
  const bus = { publish: async () => {}, subscribe: async () => ({ close: async () => {} }) } as unknown as Bus;
  const ledger = ledgerOn(bus, 'kafka-0');
  await ledger.start();
  const three = events(3);
  await ledger.append(three, 'kafka-0', undefined, [10, 20, 30]);
  await ledger.append(three.slice(1), 'kafka-0', undefined, [20, 30]); // redelivered: dropped, no harm
  assert.is(ledger.problem(), undefined);
  const stranger = events(1);
  try {
    await ledger.append(stranger, 'kafka-0', undefined, [20]); // position 20 holds another event
    assert.unreachable('a different event at a recorded position was dropped silently');
  } catch (err) {
    assert.is((err as AgateError).code, ErrorCode.LEDGER_SOURCE_MISMATCH);
    assert.match((err as Error).message, new RegExp(`delivered event ${stranger[0]!.event_id} at position 20 of chain kafka-0 as already recorded, but the store holds event [0-9a-f-]+ there`));
  }
  assert.match(ledger.problem() ?? '', /LEDGER_SOURCE_MISMATCH/);
  assert.is(await rows('kafka-0'), 3);
  await ledger.stop();
});

test('verify names an event recorded twice even when the chain is well linked', async () => {
  const bus = { publish: async () => {}, subscribe: async () => ({ close: async () => {} }) } as unknown as Bus;
  const ledger = ledgerOn(bus, 'legacy', 1); // no positions, a window of one id: the old way to double
  await ledger.start();
  const first = events(4);
  await ledger.append(first, 'legacy');
  await ledger.append(events(4), 'legacy');
  await ledger.append([first[1]!], 'legacy');
  const report = await verifyChain(store, codec, 'legacy');
  assert.is(report.failure?.kind, 'duplicate');
  assert.is(report.failure?.event_id, first[1]!.event_id);
  assert.is(report.failure?.seq, 9);
  assert.match(report.failure!.problem, /is recorded twice, at records 2, 9/);
  await ledger.stop();
});

test('incremental verification finds a new record that repeats one verified before', async () => {
  const bus = { publish: async () => {}, subscribe: async () => ({ close: async () => {} }) } as unknown as Bus;
  const ledger = ledgerOn(bus, 'legacy2', 1);
  await ledger.start();
  const first = events(4);
  await ledger.append(first, 'legacy2');
  await ledger.append(events(4), 'legacy2');
  const before = await verifyChain(store, codec, 'legacy2');
  assert.ok(before.ok, JSON.stringify(before.failure));
  await ledger.append([first[0]!], 'legacy2');
  const after = await verifyChain(store, codec, 'legacy2', { resume: before.state! });
  assert.is(after.failure?.kind, 'duplicate');
  assert.is(after.failure?.seq, 9);
  assert.is(after.failure?.event_id, first[0]!.event_id);
  await ledger.stop();
});

test.run();

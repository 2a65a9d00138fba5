import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { randomUUID } from 'node:crypto';
import type { Bus } from '../../../core/src/bus/bus.js';
import { silentLogger } from '../../../core/src/log.js';
import { EmbeddedStore } from '../../../core/src/store/embedded.js';
import { EventCodec } from '../../../schemas/src/codec.js';
import type { AgateEvent } from '../../../schemas/src/events.js';
import { SAMPLES } from '../../../schemas/src/samples.js';
import { LedgerService } from './ledger.js';
import { migrate } from './schema.js';
import { verifyChain } from './verify.js';

/*
 * Tamper tests act directly on the real embedded ClickHouse engine, then verify. Each case starts
 * from a fresh chain of 6 events.
 */
const codec = new EventCodec();
const dir = mkdtempSync(join(tmpdir(), 'agate-ledger-'));
const store = EmbeddedStore.open(join(dir, 'store'));
const noBus = {} as Bus;
const TEST = { stream: 'test' }; // append() is driven directly; the bus wiring is covered end to end
const events = (): AgateEvent[] => Object.values(SAMPLES).map((e) => ({ ...e, event_id: randomUUID() }));

async function freshLedger(): Promise<LedgerService> {
  await store.exec('DROP TABLE IF EXISTS agate.ledger');
  await migrate(store);
  const ledger = new LedgerService({ bus: noBus, store, codec, logger: silentLogger });
  await ledger.append(events(), TEST);
  return ledger;
}

const mutate = (sql: string) => store.exec(`${sql} SETTINGS mutations_sync = 2`);

const ledger = suite('LedgerService + verifyChain');
ledger.after(async () => {
  await store.close();
  rmSync(dir, { recursive: true, force: true });
});

ledger('an intact chain verifies; redelivered events are stored once', async () => {
  const l = await freshLedger();
  const batch = events();
  await l.append(batch, TEST);
  await l.append(batch, TEST); // redelivery
  await l.append([batch[0]!, batch[0]!], TEST);
  const report = await verifyChain(store, codec, 'test');
  assert.ok(report.ok, JSON.stringify(report.failure));
  assert.is(report.records, 12);
  assert.is((await l.head('test')).seq, 12);
});

ledger('a changed payload is detected at its record', async () => {
  await freshLedger();
  const other = codec.encode({ ...SAMPLES.Command, text: 'SELECT 2' }).toString('base64');
  await mutate(`ALTER TABLE agate.ledger UPDATE payload = '${other}' WHERE seq = 3`);
  const r = await verifyChain(store, codec, 'test');
  assert.is(r.ok, false);
  assert.is(r.failure?.seq, 3);
  assert.match(r.failure!.problem, /altered payload/);
});

ledger('a changed queryable body is detected', async () => {
  await freshLedger();
  await mutate(`ALTER TABLE agate.ledger UPDATE body = replaceOne(body, 'SELECT', 'DELETE') WHERE seq = 3`);
  const r = await verifyChain(store, codec, 'test');
  assert.is(r.failure?.seq, 3);
  assert.match(r.failure!.problem, /altered body/);
});

ledger('a deleted record is detected', async () => {
  await freshLedger();
  await mutate('ALTER TABLE agate.ledger DELETE WHERE seq = 4');
  const r = await verifyChain(store, codec, 'test');
  assert.is(r.failure?.seq, 5);
  assert.match(r.failure!.problem, /missing/);
});

ledger('an inserted record is detected', async () => {
  await freshLedger();
  await store.exec(`INSERT INTO agate.ledger SELECT * REPLACE (toUInt64(2) AS seq, 'forged' AS event_id) FROM (SELECT * FROM agate.ledger WHERE seq = 5)`);
  const r = await verifyChain(store, codec, 'test');
  assert.is(r.ok, false);
  assert.is(r.failure?.seq, 2);
});

ledger('a recomputed hash breaks the next link', async () => {
  await freshLedger();
  await mutate(`ALTER TABLE agate.ledger UPDATE hash = lower(hex(SHA256('x'))) WHERE seq = 2`);
  const r = await verifyChain(store, codec, 'test');
  assert.is(r.failure?.seq, 2);
});

ledger('the head is recovered on restart and the chain continues', async () => {
  const first = await freshLedger();
  const again = new LedgerService({ bus: { subscribe: async () => ({ close: async () => {} }) } as unknown as Bus, store, codec, logger: silentLogger });
  await again.start();
  assert.equal(await again.head('test'), await first.head('test'));
  await again.append(events(), TEST);
  assert.ok((await verifyChain(store, codec, 'test')).ok);
});

ledger.run();

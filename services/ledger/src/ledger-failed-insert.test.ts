import { suite } from '../../../test/harness/suite.js';
import * as assert from 'uvu/assert';
import { mkdtempSync, rmSync } from 'node:fs';
import { randomUUID } from 'node:crypto';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { Bus, StreamInfo } from '../../../core/src/bus/bus.js';
import { AgateError, ErrorCode } from '../../../core/src/errors.js';
import { silentLogger } from '../../../core/src/log.js';
import { EmbeddedStore } from '../../../core/src/store/embedded.js';
import type { Store } from '../../../core/src/store/store.js';
import { EventCodec } from '../../../schemas/src/codec.js';
import type { AgateEvent } from '../../../schemas/src/events.js';
import { SAMPLES } from '../../../schemas/src/samples.js';
import { LedgerService } from './ledger.js';
import { generateSignerKey, parseSignerKey } from './note.js';
import { verifyChain } from './verify.js';

/*
 * An insert into agate.ledger that fails after the engine stored its rows (a materialized view
 * behind the table refused them on a full disk), some of them, or none, while the bus has the
 * next batch in flight: the batches delivered again must end up recorded exactly once.
 */
const codec = new EventCodec();
const root = mkdtempSync(join(tmpdir(), 'agate-ledger-failed-insert-'));
const engine = EmbeddedStore.open(join(root, 'store'));
const signer = parseSignerKey(generateSignerKey('agate.test/ledger'));

type Failure = 'none-stored' | 'part-stored' | 'all-stored';

/** The engine, with the next insert into agate.ledger made to fail as `failure` says, once. */
class FailingInserts {
  next: Failure | undefined;
  readonly store: Store = {
    exec: (q) => engine.exec(q), query: (q, p) => engine.query(q, p), insert: (t, r) => engine.insert(t, r),
    insertTsv: (t, c, p) => engine.insertTsv(t, c, p), queryRowBinary: (q, p) => engine.queryRowBinary(q, p), close: async () => {},
    insertRowBinary: async (t, c, st, p, o) => {
      const failure = t === 'agate.ledger' ? this.next : undefined;
      if (failure === undefined) return engine.insertRowBinary(t, c, st, p, o);
      this.next = undefined;
      if (failure === 'all-stored') await engine.insertRowBinary(t, c, st, p, o);
      if (failure === 'part-stored') {
        // The first half of the rows stays, as when the engine stored some blocks of the insert.
        const head = async () => Number((await engine.query<{ n: string }>('SELECT max(seq) AS n FROM agate.ledger'))[0]!.n);
        const from = await head();
        await engine.insertRowBinary(t, c, st, p, o);
        const keep = from + Math.ceil(((await head()) - from) / 2);
        await engine.exec(`ALTER TABLE agate.ledger DELETE WHERE seq > ${keep} SETTINGS mutations_sync = 2`);
      }
      throw new AgateError(ErrorCode.STORE_FAILED, 'store operation failed (INSERT INTO agate.ledger …): Code: 243. Cannot reserve space (a double)', { retriable: true });
    },
  };
}

/** A bus that hands the ledger's handler to the test, which delivers as the local bus does. */
function capturingBus(): { bus: Bus; handler: () => (batch: readonly AgateEvent[], source: StreamInfo) => Promise<void> } {
  let h: ((batch: readonly AgateEvent[], source: StreamInfo) => Promise<void>) | undefined;
  const bus = {
    publish: async () => {},
    subscribe: async (o: { handler: typeof h }) => ((h = o.handler), { close: async () => {} }),
  } as unknown as Bus;
  return { bus, handler: () => h! };
}

const events = (n: number): AgateEvent[] => Array.from({ length: n }, (_, i) => ({ ...Object.values(SAMPLES)[i % 6]!, event_id: randomUUID() }) as AgateEvent);

/** A stretch of the bus: events and the position past each. */
interface Stretch { events: AgateEvent[]; positions: number[] }
const stretch = (from: number, n: number): Stretch => {
  const evs = events(n);
  return { events: evs, positions: evs.map((_, i) => from + (i + 1) * 300) };
};
const slice = (s: Stretch, a: number, b?: number): Stretch => ({ events: s.events.slice(a, b), positions: s.positions.slice(a, b) });
const source = (chain: string, s: Stretch): StreamInfo => ({ stream: chain, positions: s.positions, encoded: s.events.map((e) => codec.encode(e)) }) as StreamInfo;

async function deliver(handler: (b: readonly AgateEvent[], s: StreamInfo) => Promise<void>, chain: string, ...batches: Stretch[]): Promise<boolean[]> {
  const out = await Promise.allSettled(batches.map((b) => handler(b.events, source(chain, b))));
  return out.map((o) => o.status === 'fulfilled');
}

async function recorded(chain: string): Promise<string[]> {
  const rows = await engine.query<{ event_id: string }>('SELECT event_id FROM agate.ledger WHERE chain_id = {c:String} ORDER BY seq', { c: chain });
  return rows.map((r) => r.event_id);
}

const test = suite('ledger: a failed insert, the next batch in flight, both delivered again');
test.after(async () => {
  await engine.close();
  rmSync(root, { recursive: true, force: true });
});

for (const failure of ['none-stored', 'part-stored', 'all-stored'] as const) {
  for (const redelivery of ['same batches', 'first event alone, then the rest']) {
    test(`${failure}; redelivered as ${redelivery}: every event recorded once, in bus order, the chain verifies`, async () => {
      const chain = `embedded`;
      const inserts = new FailingInserts();
      const { bus, handler } = capturingBus();
      const ledger = new LedgerService({ bus, store: inserts.store, codec, chainId: chain, logger: silentLogger, signer, dedupWindow: 100_000, refillDerived: async () => {} });
      await ledger.start();
      const before = (await recorded(chain)).length;
      const base = 1_000_000 * (before + 1);
      const all = stretch(base, 40);
      assert.equal(await deliver(handler(), chain, slice(all, 0, 12)), [true]);
      inserts.next = failure;
      const x = slice(all, 12, 31);
      const y = slice(all, 31, 40);
      assert.equal(await deliver(handler(), chain, x, y), [false, false]);
      if (redelivery === 'same batches') {
        const again = await deliver(handler(), chain, x, y);
        if (!again[1]) assert.equal(await deliver(handler(), chain, y), [true]);
      } else {
        const again = await deliver(handler(), chain, slice(x, 0, 1), slice(all, 13, 40));
        assert.is(again[0], true);
        if (!again[1]) assert.equal(await deliver(handler(), chain, slice(all, 13, 40)), [true], ledger.problem());
      }
      assert.is(ledger.problem(), undefined);
      const ids = await recorded(chain);
      assert.equal(ids.slice(before), all.events.map((e) => e.event_id), 'each event once, in bus order');
      const report = await verifyChain(engine, codec, chain);
      assert.ok(report.ok, JSON.stringify(report.failure));
      await ledger.stop();
    });
  }
}

for (const failure of ['none-stored', 'part-stored', 'all-stored'] as const) {
  test(`${failure}; a batch refused as coming after the failed one, then the failed one goes in: a batch handed after the refused one is refused too, not recorded ahead of it`, async () => {
    // The local bus with two batches in flight, as seen in a full-disk run: X fails; X again and
    // B are handed, B refused (X not in yet); X goes in; the bus hands C before it settles B.
    // Recording C then left B's events out of the chain, and B, delivered again below the
    // stored position, stopped the ledger with LEDGER_SOURCE_MISMATCH.
    const chain = 'embedded';
    const inserts = new FailingInserts();
    const { bus, handler } = capturingBus();
    const ledger = new LedgerService({ bus, store: inserts.store, codec, chainId: chain, logger: silentLogger, signer, dedupWindow: 100_000, refillDerived: async () => {} });
    await ledger.start();
    const before = (await recorded(chain)).length;
    const all = stretch(1_000_000 * (before + 1), 30);
    const [w, x, b, c] = [slice(all, 0, 5), slice(all, 5, 12), slice(all, 12, 20), slice(all, 20, 30)];
    assert.equal(await deliver(handler(), chain, w), [true]);
    inserts.next = failure;
    assert.equal(await deliver(handler(), chain, x), [false]);
    assert.equal(await deliver(handler(), chain, x, b), [true, false]);
    const [cIn] = await deliver(handler(), chain, c);
    assert.is(cIn, false, 'a batch after the refused one is refused too');
    // Delivered again together, C is refused while B is not in yet; then C alone.
    assert.equal(await deliver(handler(), chain, b, c), [true, false], ledger.problem());
    assert.equal(await deliver(handler(), chain, c), [true], ledger.problem());
    assert.is(ledger.problem(), undefined);
    assert.equal((await recorded(chain)).slice(before), all.events.map((e) => e.event_id), 'each event once, in bus order');
    const report = await verifyChain(engine, codec, chain);
    assert.ok(report.ok, JSON.stringify(report.failure));
    await ledger.stop();
  });
}

test.run();

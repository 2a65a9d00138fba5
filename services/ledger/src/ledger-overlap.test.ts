import { suite } from '../../../test/harness/suite.js';
import * as assert from 'uvu/assert';
import { mkdtempSync, rmSync } from 'node:fs';
import { randomUUID } from 'node:crypto';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { Bus } from '../../../core/src/bus/bus.js';
import { AgateError, ErrorCode } from '../../../core/src/errors.js';
import { silentLogger } from '../../../core/src/log.js';
import { EmbeddedStore } from '../../../core/src/store/embedded.js';
import type { Store } from '../../../core/src/store/store.js';
import { EventCodec } from '../../../schemas/src/codec.js';
import type { AgateEvent } from '../../../schemas/src/events.js';
import { SAMPLES } from '../../../schemas/src/samples.js';
import { HeldInserts } from '../../../test/harness/held-inserts.js';
import { LedgerService } from './ledger.js';
import { generateSignerKey, parseSignerKey } from './note.js';
import { verifyChain } from './verify.js';

/*
 * Two ledger instances appending to one chain at once, on the real embedded engine: the old
 * owner of a partition (kicked out of the consumer group while its insert was under way) and
 * the new one, which re-reads the events the old one had not committed. The old owner's head
 * check passed before the new owner appended; its insert is held until the new owner's rows are
 * stored, then let go. Whatever the two batches hold, each event must be in the chain once and
 * the chain must verify.
 */
const codec = new EventCodec();
const dir = mkdtempSync(join(tmpdir(), 'agate-ledger-overlap-'));
const store = EmbeddedStore.open(join(dir, 'store'));
const signer = parseSignerKey(generateSignerKey('agate.test/ledger'));
const bus = { publish: async () => {}, subscribe: async () => ({ close: async () => {} }) } as unknown as Bus;

/** A partition's log: event i sits at position i + 1 (StreamInfo.positions). */
const log: AgateEvent[] = Array.from({ length: 200 }, (_, i) => ({ ...Object.values(SAMPLES)[i % 6]!, event_id: randomUUID() }) as AgateEvent);
/** Events `from..to` of the log (1-based, inclusive) as the bus delivers them. */
const slice = (from: number, to: number) => ({ batch: log.slice(from - 1, to), positions: Array.from({ length: to - from + 1 }, (_, i) => from + i) });

const ledgerOn = (s: Store) => new LedgerService({ bus, store: s, codec, chainId: 'unused', logger: silentLogger, signer });
const code = (err: unknown) => (err instanceof AgateError ? err.code : err === undefined ? 'ok' : String(err));

/** The chain holds each of its records' events once, seq 1..n without a gap, and verifies. */
async function assertExact(chain: string, events: number): Promise<void> {
  const [row] = await store.query<{ n: string; ids: string; seqs: string; last: string }>(
    'SELECT count() AS n, uniqExact(event_id) AS ids, uniqExact(seq) AS seqs, max(seq) AS last FROM agate.ledger WHERE chain_id = {c:String}', { c: chain });
  assert.equal([row!.n, row!.ids, row!.seqs, row!.last].map(Number), [events, events, events, events], `${chain}: records, distinct events, distinct seqs, head`);
  const report = await verifyChain(store, codec, chain);
  assert.ok(report.ok, JSON.stringify(report.failure));
}

/**
 * The old owner `a` has stored records 1..5 (assignment 1); it is handed `stale` and held
 * after its head check; the new owner `b` (assignment 2) stores `fresh`; then `a`'s insert goes
 * on. Returns what `a`'s append came to.
 */
async function overlap(chain: string, stale: { batch: AgateEvent[]; positions?: number[] }, fresh: { batch: AgateEvent[]; positions?: number[] }): Promise<{ a: LedgerService; b: LedgerService; outcome: unknown }> {
  const gate = new HeldInserts(store);
  const a = ledgerOn(gate.store);
  const b = ledgerOn(store);
  await a.start();
  await b.start();
  const first = slice(1, 5);
  await a.append(first.batch, chain, undefined, first.positions, 1);
  gate.hold();
  const pending = a.append(stale.batch, chain, undefined, stale.positions, 1).then(() => undefined, (err: unknown) => err);
  await gate.held;
  await b.append(fresh.batch, chain, undefined, fresh.positions, 2);
  gate.release();
  return { a, b, outcome: await pending };
}

const test = suite('ledger: two owners of one chain at once');
test.after(async () => {
  await store.close();
  rmSync(dir, { recursive: true, force: true });
});

test('the new owner re-read the same events, and more: the old owner\'s late insert adds nothing', async () => {
  const chain = 'same-events';
  const { a, b, outcome } = await overlap(chain, slice(6, 10), slice(6, 12));
  assert.ok(['ok', ErrorCode.LEDGER_CHAIN_MOVED].includes(code(outcome)), `the old owner's append: ${code(outcome)}`);
  await assertExact(chain, 12);
  // Both go on under their assignments: the bus redelivers what each has not committed.
  const again = slice(6, 14);
  for (let i = 0; i < 3; i++) if (code(await a.append(again.batch, chain, undefined, again.positions, 1).catch((e: unknown) => e)) === 'ok') break;
  await b.append(slice(13, 16).batch, chain, undefined, slice(13, 16).positions, 2).catch(() => b.append(slice(13, 16).batch, chain, undefined, slice(13, 16).positions, 2));
  await assertExact(chain, 16);
  await a.stop();
  await b.stop();
});

test('the new owner stored fewer of them: the old owner learns its insert did not go in, and its retry stores only the rest', async () => {
  const chain = 'fewer-events';
  const stale = slice(6, 10);
  const { a, b, outcome } = await overlap(chain, stale, slice(6, 8));
  assert.is(code(outcome), ErrorCode.LEDGER_CHAIN_MOVED, 'the held insert is reported as not stored');
  await a.append(stale.batch, chain, undefined, stale.positions, 1); // the bus delivers it again
  await assertExact(chain, 10);
  await a.stop();
  await b.stop();
});

test('the two batches differ (no positions, other events): each event is stored once, after the other owner\'s', async () => {
  const chain = 'other-events';
  const stale = { batch: log.slice(100, 103) };
  const { a, b, outcome } = await overlap(chain, stale, { batch: log.slice(110, 113) });
  assert.is(code(outcome), ErrorCode.LEDGER_CHAIN_MOVED);
  await a.append(stale.batch, chain, undefined, undefined, 1);
  await assertExact(chain, 11);
  const ids = await store.query<{ id: string }>('SELECT event_id AS id FROM agate.ledger WHERE chain_id = {c:String} ORDER BY seq', { c: chain });
  assert.equal(ids.slice(5).map((r) => r.id), [...log.slice(110, 113), ...log.slice(100, 103)].map((e) => e.event_id), 'the new owner\'s records first');
  await a.stop();
  await b.stop();
});

test('an owner that stopped between its insert and the offset commit: the next owner re-reads and skips what is stored', async () => {
  const chain = 'crash-before-commit';
  const a = ledgerOn(store);
  await a.start();
  await a.append(slice(1, 8).batch, chain, undefined, slice(1, 8).positions, 1);
  await a.stop(); // its offsets stay at 0: the next owner reads from the start
  const b = ledgerOn(store);
  await b.start();
  await b.append(slice(1, 12).batch, chain, undefined, slice(1, 12).positions, 1);
  await assertExact(chain, 12);
  await b.stop();
});

test.run();

import { suite } from '../../../test/harness/suite.js';
import * as assert from 'uvu/assert';
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { Bus, StreamInfo, SubscribeOptions } from '../../../core/src/bus/bus.js';
import { silentLogger } from '../../../core/src/log.js';
import { EmbeddedStore } from '../../../core/src/store/embedded.js';
import { EventCodec } from '../../../schemas/src/codec.js';
import type { AgateEvent } from '../../../schemas/src/events.js';
import { LedgerService } from '../../ledger/src/ledger.js';
import { generateSignerKey, parseSignerKey } from '../../ledger/src/note.js';
import { PendingRefills } from '../../ledger/src/pending-refills.js';
import { verifyChain } from '../../ledger/src/verify.js';
import { migrateQuery } from './schema.js';
import { checkSessionTables } from './session-check.js';
import { refillSessionTables } from './session-refill.js';
import { sessionEvents } from './test-ledger.js';

/*
 * An INSERT into agate.ledger that fails inside a materialized view (seen on a full disk) keeps
 * the ledger's rows but not the session tables' rows. The engine does that for real here: a
 * constraint on q_session_stats refuses every row the view pushes, as a full disk would.
 */
const dir = mkdtempSync(join(tmpdir(), 'agate-session-refill-'));
const store = EmbeddedStore.open(join(dir, 'store'));
const codec = new EventCodec();
const signer = parseSignerKey(generateSignerKey('agate.test/refill'));
const test = suite('session tables refilled after a partial insert');
test.after(async () => {
  await store.close();
  rmSync(dir, { recursive: true, force: true });
});

/** A bus whose one subscriber is handed batches by the test, as the bus would. */
function handBus(stream = 'test'): { bus: Bus; deliver: (batch: readonly AgateEvent[], positions: number[]) => Promise<void> } {
  let handler: ((batch: readonly AgateEvent[], source: StreamInfo) => Promise<void>) | undefined;
  const bus = { publish: async () => {}, subscribe: async (o: SubscribeOptions) => ((handler = o.handler), { close: async () => {} }) } as unknown as Bus;
  return { bus, deliver: (batch, positions) => handler!(batch, { stream, positions }) };
}
const positions = (start: number, n: number) => Array.from({ length: n }, (_, i) => start + i + 1);
const refuseSessionRows = (on: boolean) => store.exec(on
  ? "ALTER TABLE agate.q_session_stats ADD CONSTRAINT full_disk CHECK session_id = 'never'"
  : 'ALTER TABLE agate.q_session_stats DROP CONSTRAINT full_disk');

test('rows stored in the ledger without their session rows are derived again once the ledger reloads', async () => {
  const { bus, deliver } = handBus();
  const ledger = new LedgerService({ bus, store, codec, chainId: 'test', logger: silentLogger, signer, refillDerived: (chain, from, to) => refillSessionTables(store, chain, from, to) });
  await ledger.start();
  await migrateQuery(store);
  const [a, b, c] = [sessionEvents('alice', 3), sessionEvents('bob', 4), sessionEvents('carol', 2)];
  await deliver(a, positions(0, a.length));
  await refuseSessionRows(true);
  await deliver(b, positions(a.length, b.length)).then(() => assert.unreachable('b reported stored'), (err: Error) => assert.match(err.message, /full_disk/));
  const [stored] = await store.query<{ n: string }>("SELECT count() AS n FROM agate.ledger WHERE chain_id = 'test'");
  assert.is(Number(stored!.n), a.length + b.length, 'the engine kept the ledger rows of the failed insert');
  // The ledger reloads its head and tries at once; refused again, the range waits, and /readyz says so.
  const first = a.length + 1;
  const last = a.length + b.length;
  let problem = ledger.problem() ?? '';
  for (let tries = 0; tries < 100 && !problem.includes('session tables'); tries++) {
    await new Promise((r) => setTimeout(r, 20));
    problem = ledger.problem() ?? '';
  }
  assert.match(problem, new RegExp(`chain test: records ${first}\\.\\.${last} were stored without their rows in the session tables`));
  // Both hold at once, and both are reported: the batch waits for the store, and its records lack their session rows.
  assert.equal(ledger.problems().map((p) => p.kind), ['batch-waiting', 'rows-underived']);
  await refuseSessionRows(false);
  // Delivered again: already recorded, so no insert (and no view) runs for b; the refill must.
  await deliver(b, positions(a.length, b.length));
  await deliver(c, positions(a.length + b.length, c.length));
  assert.is(ledger.problem(), undefined);
  assert.ok((await verifyChain(store, codec, 'test')).ok);
  assert.equal(await checkSessionTables(store, 0), { ok: true, sessions: 3, problem: null });
  const [bob] = await store.query<{ commands: number; denied: number }>(`SELECT commands, denied FROM agate.sessions WHERE session_id = '${b[0]!.session_id}'`);
  assert.equal(bob, { commands: 4, denied: 2 }, 'every third command of four denied');
  await ledger.stop();
});

test('a refill is idempotent: derived again, nothing is counted twice', async () => {
  const [head] = await store.query<{ n: string }>("SELECT max(seq) AS n FROM agate.ledger WHERE chain_id = 'test'");
  await refillSessionTables(store, 'test', 1, Number(head!.n));
  await refillSessionTables(store, 'test', 1, Number(head!.n));
  assert.equal(await checkSessionTables(store, 0), { ok: true, sessions: 3, problem: null });
  const [n] = await store.query<{ n: string }>('SELECT count() AS n FROM agate.sessions');
  assert.is(Number(n!.n), 3);
});

test('a restart before the refill still derives the rows: the waiting ranges are kept in a file', async () => {
  const file = join(dir, 'ledger', 'unrefilled.json');
  const ledgerWith = (bus: Bus) => new LedgerService({ bus, store, codec, chainId: 'restart', logger: silentLogger, signer, pendingRefillsFile: file, refillDerived: (chain, from, to) => refillSessionTables(store, chain, from, to) });
  const first = handBus('restart');
  const ledger = ledgerWith(first.bus);
  await ledger.start();
  const [a, b] = [sessionEvents('dave', 2), sessionEvents('erin', 3)];
  await first.deliver(a, positions(0, a.length));
  await refuseSessionRows(true);
  await first.deliver(b, positions(a.length, b.length)).then(() => assert.unreachable('b reported stored'), (err: Error) => assert.match(err.message, /full_disk/));
  for (let tries = 0; tries < 100 && !(ledger.problem() ?? '').includes('session tables'); tries++) await new Promise((r) => setTimeout(r, 20));
  await ledger.stop(); // its last refill is refused too: the range stays waiting
  assert.ok(existsSync(file), 'the waiting range is on disk');
  assert.equal(JSON.parse(readFileSync(file, 'utf8')), { chains: { restart: { from: a.length + 1, to: a.length + b.length } } });
  assert.is((await checkSessionTables(store, 0))?.ok, false, 'erin\'s rows are missing from the session tables');
  await refuseSessionRows(false);
  // A new process: the bus delivers nothing more (b is recorded), yet the rows are derived at start.
  const restarted = ledgerWith(handBus('restart').bus);
  await restarted.start();
  assert.equal(await checkSessionTables(store, 0), { ok: true, sessions: 5, problem: null });
  assert.equal(JSON.parse(readFileSync(file, 'utf8')), { chains: {} });
  assert.is(restarted.problem(), undefined);
  await restarted.stop();
});

test('a file of waiting ranges that does not parse stops the start, naming it', async () => {
  const file = join(dir, 'bad', 'unrefilled.json');
  const { bus } = handBus('bad');
  await new PendingRefills(file).save(new Map([['bad', { from: 1, to: 2 }]]));
  writeFileSync(file, '{"chains": {"bad": {"from": 5, "to": 2}}}');
  const ledger = new LedgerService({ bus, store, codec, chainId: 'bad', logger: silentLogger, signer, pendingRefillsFile: file });
  try {
    await ledger.start();
    assert.unreachable('started');
  } catch (err) {
    assert.is((err as { code?: string }).code, 'CONFIG_INVALID');
    assert.match((err as Error).message, file);
  } finally {
    await ledger.stop();
  }
});

test.run();

import { suite } from '../../../test/harness/suite.js';
import * as assert from 'uvu/assert';
import { mkdtempSync, readFileSync, readdirSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { randomUUID } from 'node:crypto';
import type { Bus, StreamInfo, SubscribeOptions } from '../../../core/src/bus/bus.js';
import { silentLogger } from '../../../core/src/log.js';
import { AgateError, ErrorCode } from '../../../core/src/errors.js';
import { EmbeddedStore } from '../../../core/src/store/embedded.js';
import type { Store } from '../../../core/src/store/store.js';
import { EventCodec } from '../../../schemas/src/codec.js';
import type { AgateEvent } from '../../../schemas/src/events.js';
import { SAMPLES } from '../../../schemas/src/samples.js';
import { openCheckpoint, type Checkpoint } from './checkpoint.js';
import { directorySink } from './checkpoint-sink.js';
import { INSERT_SLICE } from './chain-writer.js';
import { LedgerService } from './ledger.js';
import { generateSignerKey, parseSignerKey, parseVerifierKey, verifierKey } from './note.js';
import { naiveMth } from './reference-mth.js';
import { verifyChain } from './verify.js';

/*
 * Tamper tests act directly on the real embedded ClickHouse engine, then verify against a
 * signed checkpoint kept outside the store (a file in a checkpoint directory). Each case starts
 * from a fresh chain of 30 events with a checkpoint at its head.
 */
const codec = new EventCodec();
const dir = mkdtempSync(join(tmpdir(), 'agate-ledger-'));
const store = EmbeddedStore.open(join(dir, 'store'));
const signer = parseSignerKey(generateSignerKey('agate.test/ledger'));
const verifiers = [parseVerifierKey(verifierKey(signer))];
const published: AgateEvent[] = [];
const bus = { publish: async (e: AgateEvent) => void published.push(e), subscribe: async () => ({ close: async () => {} }) } as unknown as Bus;
const events = (n = 30): AgateEvent[] => Array.from({ length: n }, (_, i) => ({ ...Object.values(SAMPLES)[i % 6]!, event_id: randomUUID() }) as AgateEvent);
const cpDir = join(dir, 'checkpoints');

function newLedger(): LedgerService {
  return new LedgerService({ bus, store, codec, chainId: 'test', logger: silentLogger, signer, checkpoints: { everyEvents: 10, everyMs: 60_000, sinks: [directorySink(cpDir)] } });
}

/** A fresh chain; returns the signed checkpoint at its head as an auditor keeps it. */
async function fresh(n = 30): Promise<{ ledger: LedgerService; cp: Checkpoint }> {
  await store.exec('DROP TABLE IF EXISTS agate.ledger');
  await store.exec('DROP TABLE IF EXISTS agate.checkpoints');
  await store.exec('DROP TABLE IF EXISTS agate.tree_nodes');
  rmSync(cpDir, { recursive: true, force: true });
  const ledger = newLedger();
  await ledger.start();
  const all = events(n);
  for (let i = 0; i < n; i += 10) await ledger.append(all.slice(i, i + 10)); // the bus delivers batches
  await ledger.checkpoint();
  const cp = n === 0 ? undefined : openCheckpoint(readFileSync(join(cpDir, 'test', 'latest.checkpoint'), 'utf8'), verifiers);
  return { ledger, cp: cp! };
}

/** The test store's calls, to wrap (its methods use private fields, so it cannot be spread). */
const storeCalls = (): Store => ({
  exec: (q) => store.exec(q), query: (q, p) => store.query(q, p), insert: (t, r) => store.insert(t, r), insertTsv: (t, c, p) => store.insertTsv(t, c, p),
  queryRowBinary: (q, p) => store.queryRowBinary(q, p), insertRowBinary: (t, c, st, p) => store.insertRowBinary(t, c, st, p), close: async () => {},
});

const mutate = (sql: string) => store.exec(`${sql} SETTINGS mutations_sync = 2`);
const verify = (cp: Checkpoint) => verifyChain(store, codec, 'test', { checkpoints: [cp], verifiers });

const ledger = suite('LedgerService + verifyChain');
ledger.after(async () => {
  await store.close();
  rmSync(dir, { recursive: true, force: true });
});

ledger('an intact chain verifies against its checkpoint; its root is the RFC 9162 root', async () => {
  const { ledger: l, cp } = await fresh();
  const r = await verify(cp);
  assert.ok(r.ok, JSON.stringify(r.failure));
  assert.is(r.records, 30);
  assert.equal(r.checkpoints, [30]);
  assert.is(cp.size, 30);
  const payloads = await store.query<{ p: string }>("SELECT base64Encode(payload) AS p FROM agate.ledger WHERE chain_id = 'test' ORDER BY seq");
  const reference = naiveMth(payloads.map((row) => Buffer.from(row.p, 'base64'))).toString('hex');
  assert.is(cp.root.toString('hex'), reference, 'the signed root is the RFC 9162 root of the encoded events');
  assert.is(r.root, reference);
  assert.is((await l.currentRoot()).toString('hex'), reference);
  assert.ok(readdirSync(join(cpDir, 'test')).includes('10.checkpoint'), 'a checkpoint every 10 events');
  assert.ok(published.some((e) => e.type === 'Checkpoint' && e.size === 30), 'checkpoints are published as events');
});

ledger('redelivered events are stored once', async () => {
  const { ledger: l } = await fresh(0);
  const batch = events(12);
  await l.append(batch);
  await l.append(batch);
  await l.append([batch[0]!, batch[0]!, ...events(3)]);
  const [row] = await store.query<{ n: string }>('SELECT count() AS n FROM agate.ledger');
  assert.is(Number(row!.n), 15);
  assert.is(l.head.seq, 15);
});

ledger('an insert that fails part-way leaves no gap: the batch delivered again is stored once, in order', async () => {
  await fresh(0);
  let inserts = 0;
  const flaky: Store = {
    ...storeCalls(),
    insertRowBinary: async (t, c, st, p) => {
      if (++inserts === 2) throw new AgateError(ErrorCode.STORE_FAILED, 'the engine went away');
      await store.insertRowBinary(t, c, st, p);
    },
  };
  const l = new LedgerService({ bus, store: flaky, codec, chainId: 'test', logger: silentLogger, signer });
  await l.start();
  const batch = events(2.5 * INSERT_SLICE); // three inserts: the second fails
  try {
    await l.append(batch);
    assert.unreachable('the append succeeded');
  } catch (err) {
    assert.is((err as AgateError).code, ErrorCode.STORE_FAILED);
  }
  assert.is(l.head.seq, INSERT_SLICE, 'the head stays after the last stored slice');
  await l.append(batch); // the bus delivers the batch again
  assert.is(l.head.seq, batch.length);
  const report = await verifyChain(store, codec, 'test');
  assert.ok(report.ok, JSON.stringify(report.failure));
  assert.is(report.records, batch.length);
  const ids = await store.query<{ id: string }>("SELECT event_id AS id FROM agate.ledger WHERE chain_id = 'test' ORDER BY seq");
  assert.equal(ids.map((r) => r.id), batch.map((e) => e.event_id));
  await l.stop();
});

ledger('a batch handed over before the one before it is stored: stored after it, in order, with ids the two share stored once', async () => {
  const { ledger: l } = await fresh(0);
  const [a, b] = [events(15_000), events(12_000)];
  b.splice(5, 0, a[7]!, a[14_999]!); // a bus redelivering across the two batches
  await Promise.all([l.append(a), l.append(b)]);
  const ids = await store.query<{ id: string }>("SELECT event_id AS id FROM agate.ledger WHERE chain_id = 'test' ORDER BY seq");
  assert.equal(ids.map((r) => r.id), [...a, ...b.filter((e) => e !== a[7] && e !== a[14_999])].map((e) => e.event_id));
  const report = await verifyChain(store, codec, 'test');
  assert.ok(report.ok, JSON.stringify(report.failure));
  assert.is(l.head.seq, 27_000);
});

ledger('when a batch fails, the batch handed over after it fails too, and both delivered again leave no gap', async () => {
  await fresh(0);
  let inserts = 0;
  const flaky = { ...storeCalls(), insertRowBinary: async (t: string, c: readonly string[], st: string, p: Buffer) => {
    if (++inserts === 2) throw new AgateError(ErrorCode.STORE_FAILED, 'the engine went away');
    await store.insertRowBinary(t, c, st, p);
  } };
  const l = new LedgerService({ bus, store: flaky, codec, chainId: 'test', logger: silentLogger, signer });
  await l.start();
  const [a, b] = [events(1.5 * INSERT_SLICE), events(0.5 * INSERT_SLICE)]; // a's second insert fails
  const outcomes = await Promise.allSettled([l.append(a), l.append(b)]);
  assert.equal(outcomes.map((o) => o.status), ['rejected', 'rejected']);
  assert.is(l.head.seq, INSERT_SLICE);
  await l.append(a);
  await l.append(b);
  const report = await verifyChain(store, codec, 'test');
  assert.ok(report.ok, JSON.stringify(report.failure));
  assert.is(report.records, a.length + b.length);
  await l.stop();
});

/** A bus that hands the ledger's handler to the test, which then delivers batches as a bus would. */
function handBus(): { bus: Bus; deliver: (batch: readonly AgateEvent[], positions: number[]) => Promise<void> } {
  let handler: ((batch: readonly AgateEvent[], source: StreamInfo) => Promise<void>) | undefined;
  const handing = { publish: async () => {}, subscribe: async (o: SubscribeOptions) => ((handler = o.handler), { close: async () => {} }) } as unknown as Bus;
  return { bus: handing, deliver: (batch, positions) => handler!(batch, { stream: 'test', positions }) };
}
const positionsFrom = (start: number, n: number) => Array.from({ length: n }, (_, i) => start + i + 1);

ledger('from the bus: a batch handed over after one that failed is refused, not appended past the gap; delivered again, all are stored once', async () => {
  await fresh(0);
  let fail = false;
  const flaky = { ...storeCalls(), insertRowBinary: async (t: string, c: readonly string[], st: string, p: Buffer) => {
    if (fail) throw new AgateError(ErrorCode.STORE_FAILED, 'Code: 243. DB::Exception: Cannot reserve 1.00 MiB, not enough space. (NOT_ENOUGH_SPACE)');
    await store.insertRowBinary(t, c, st, p);
  } };
  const { bus: handing, deliver } = handBus();
  const l = new LedgerService({ bus: handing, store: flaky, codec, chainId: 'test', logger: silentLogger, signer });
  await l.start();
  const [a, b, c] = [events(10), events(10), events(10)];
  await deliver(a, positionsFrom(0, 10));
  fail = true;
  await deliver(b, positionsFrom(10, 10)).then(() => assert.unreachable('b went in'), (err: AgateError) => assert.is(err.code, ErrorCode.STORE_FAILED));
  assert.match(l.problem() ?? '', /the disk holding the store is full \(.*NOT_ENOUGH_SPACE.*\); the events wait in the bus/);
  assert.equal(l.problems().map((p) => p.kind), ['batch-waiting']);
  fail = false;
  // c was handed over before b failed (inFlight); the store takes it now, but it must not go in before b.
  await deliver(c, positionsFrom(20, 10)).then(() => assert.unreachable('c went in past b'), (err: AgateError) => assert.is(err.code, ErrorCode.LEDGER_BATCH_AFTER_FAILURE));
  await deliver(b, positionsFrom(10, 10));
  await deliver(c, positionsFrom(20, 10));
  assert.is(l.problem(), undefined);
  assert.equal(l.problems(), []);
  const ids = await store.query<{ id: string }>("SELECT event_id AS id FROM agate.ledger WHERE chain_id = 'test' ORDER BY seq");
  assert.equal(ids.map((r) => r.id), [...a, ...b, ...c].map((e) => e.event_id));
  await l.stop();
});

ledger('from the bus: an insert that stored its rows and then failed (a materialized view behind it) is not stored twice when delivered again', async () => {
  await fresh(0);
  let failAfter = false;
  const flaky = { ...storeCalls(), insertRowBinary: async (t: string, c: readonly string[], st: string, p: Buffer) => {
    await store.insertRowBinary(t, c, st, p);
    if (failAfter) throw new AgateError(ErrorCode.STORE_FAILED, 'Code: 243. DB::Exception: Cannot reserve 1.00 MiB, not enough space. (NOT_ENOUGH_SPACE) while pushing to view agate.q_sessions_mv');
  } };
  const { bus: handing, deliver } = handBus();
  const l = new LedgerService({ bus: handing, store: flaky, codec, chainId: 'test', logger: silentLogger, signer });
  await l.start();
  const [a, b] = [events(10), events(10)];
  await deliver(a, positionsFrom(0, 10));
  failAfter = true;
  await deliver(b, positionsFrom(10, 10)).then(() => assert.unreachable('b reported stored'), (err: AgateError) => assert.is(err.code, ErrorCode.STORE_FAILED));
  failAfter = false;
  await deliver(b, positionsFrom(10, 10));
  const ids = await store.query<{ id: string }>("SELECT event_id AS id FROM agate.ledger WHERE chain_id = 'test' ORDER BY seq");
  assert.equal(ids.map((r) => r.id), [...a, ...b].map((e) => e.event_id), 'each event once, in order');
  const report = await verifyChain(store, codec, 'test');
  assert.ok(report.ok, JSON.stringify(report.failure));
  await l.stop();
});

ledger('each stream has its own chain, tree and checkpoints', async () => {
  const { ledger: l, cp } = await fresh(20);
  await l.append(events(7), 'p1');
  await l.checkpoint();
  const other = openCheckpoint(readFileSync(join(cpDir, 'p1', 'latest.checkpoint'), 'utf8'), verifiers);
  assert.is(other.origin, 'agate.test/ledger/p1');
  assert.is(other.size, 7);
  assert.ok((await verifyChain(store, codec, 'p1', { checkpoints: [other] })).ok);
  assert.ok((await verify(cp)).ok, 'the default chain is untouched');
  assert.is(l.head.seq, 20);
});

ledger('a modified field is detected at its record', async () => {
  const { cp } = await fresh();
  await mutate(`ALTER TABLE agate.ledger UPDATE text = 'SELECT 1' WHERE seq = 9`);
  const r = await verify(cp);
  assert.is(r.failure?.kind, 'altered');
  assert.is(r.failure?.seq, 9);
});

ledger('a modified payload is detected at its record', async () => {
  const { cp } = await fresh();
  const other = codec.encode({ ...SAMPLES.Command, text: 'SELECT 2' }).toString('hex');
  await mutate(`ALTER TABLE agate.ledger UPDATE payload = unhex('${other}') WHERE seq = 3`);
  const r = await verify(cp);
  assert.is(r.failure?.kind, 'altered');
  assert.is(r.failure?.seq, 3);
});

ledger('a deleted record is detected and named', async () => {
  const { cp } = await fresh();
  await mutate('ALTER TABLE agate.ledger DELETE WHERE seq = 14');
  const r = await verify(cp);
  assert.is(r.failure?.kind, 'missing');
  assert.is(r.failure?.seq, 14);
});

ledger('an inserted record is detected', async () => {
  const { cp } = await fresh();
  await store.exec(`INSERT INTO agate.ledger SELECT * REPLACE (toUInt64(7) AS seq, 'forged' AS event_id) FROM (SELECT * FROM agate.ledger WHERE seq = 20)`);
  const r = await verify(cp);
  assert.is(r.failure?.seq, 7);
  assert.ok(r.failure?.kind === 'inserted' || r.failure?.kind === 'altered', r.failure?.problem);
});

ledger('two swapped records are detected at the first of them', async () => {
  const { cp } = await fresh();
  await mutate('ALTER TABLE agate.ledger UPDATE seq = multiIf(seq = 5, 11, seq = 11, 5, seq) WHERE seq IN (5, 11)').catch(async () => {
    // seq is a key column, so it cannot be updated in place: move the two rows by delete and reinsert instead.
    await store.exec('CREATE TABLE agate.swap ENGINE = Memory AS SELECT * REPLACE (if(seq = 5, toUInt64(11), toUInt64(5)) AS seq) FROM agate.ledger WHERE seq IN (5, 11)');
    await mutate('ALTER TABLE agate.ledger DELETE WHERE seq IN (5, 11)');
    await store.exec('INSERT INTO agate.ledger SELECT * FROM agate.swap');
    await store.exec('DROP TABLE agate.swap');
  });
  const r = await verify(cp);
  assert.is(r.failure?.seq, 5);
  assert.is(r.failure?.kind, 'altered');
});

ledger('a truncated tail is detected only against the checkpoint', async () => {
  const { cp } = await fresh();
  await mutate('ALTER TABLE agate.ledger DELETE WHERE seq > 26');
  assert.ok((await verifyChain(store, codec, 'test')).ok, 'the chain alone cannot see a truncation');
  const r = await verify(cp);
  assert.is(r.failure?.kind, 'truncated');
  assert.is(r.failure?.seq, 27);
  assert.match(r.failure!.problem, /27\.\.30 are missing/);
});

ledger('a rewrite that recomputes every link is caught by the signed root and chain head', async () => {
  const { cp } = await fresh();
  // The attacker changes record 25's text and recomputes the link hashes from there on.
  await mutate(`ALTER TABLE agate.ledger UPDATE text = 'nothing to see' WHERE seq = 25`);
  const { LINK_SQL } = await import('./chain.js');
  for (let seq = 25; seq <= 30; seq++) {
    if (seq > 25) await mutate(`ALTER TABLE agate.ledger UPDATE prev_hash = (SELECT hash FROM agate.ledger WHERE seq = ${seq - 1}) WHERE seq = ${seq}`);
    await mutate(`ALTER TABLE agate.ledger UPDATE hash = ${LINK_SQL} WHERE seq = ${seq}`);
  }
  assert.ok((await verifyChain(store, codec, 'test')).ok, 'the rewritten chain is self-consistent');
  const r = await verify(cp);
  assert.is(r.failure?.kind, 'rewritten');
  assert.is(r.failure?.seq, 30);
});

ledger('records dropped up to a signed checkpoint count as expired; anything else is missing', async () => {
  const { cp } = await fresh();
  await mutate('ALTER TABLE agate.ledger DELETE WHERE seq <= 20');
  const r = await verify(cp);
  assert.ok(r.ok, JSON.stringify(r.failure));
  assert.is(r.expired, 20);
  assert.is(r.from, 21);
  await mutate('ALTER TABLE agate.ledger DELETE WHERE seq <= 23');
  const gap = await verify(cp);
  assert.is(gap.failure?.kind, 'missing');
  assert.is(gap.failure?.seq, 1);
});

ledger('incremental verification resumes from its state and sees a change under it', async () => {
  const { ledger: l } = await fresh(20);
  const first = await verifyChain(store, codec, 'test');
  await l.append(events(5));
  const second = await verifyChain(store, codec, 'test', { resume: first.state! });
  assert.ok(second.ok);
  assert.is(second.from, 21);
  assert.is(second.records, 5);
  assert.is(second.root, (await l.currentRoot()).toString('hex'));
  await mutate(`ALTER TABLE agate.ledger UPDATE hash = unhex(repeat('00', 32)) WHERE seq = 25`);
  assert.is((await verifyChain(store, codec, 'test', { resume: second.state! })).failure?.kind, 'resume-mismatch');
});

ledger('head and tree are recovered on restart and the chain continues', async () => {
  const { ledger: first } = await fresh(23);
  const again = newLedger();
  await again.start();
  assert.is(again.head.seq, 23);
  assert.ok(again.head.hash.equals(first.head.hash));
  assert.ok((await again.currentRoot()).equals(await first.currentRoot()));
  await again.append(events(4));
  await again.checkpoint();
  const cp = openCheckpoint(readFileSync(join(cpDir, 'test', 'latest.checkpoint'), 'utf8'), verifiers);
  const r = await verify(cp);
  assert.ok(r.ok, JSON.stringify(r.failure));
  assert.is(r.records, 27);
});

ledger('the deep check finds a body that disagrees with its payload even when the links were redone', async () => {
  await fresh(12);
  assert.ok((await verifyChain(store, codec, 'test', { deep: true })).ok);
  const { LINK_SQL } = await import('./chain.js');
  await mutate(`ALTER TABLE agate.ledger UPDATE body = replaceOne(body, 'SELECT', 'DELETE') WHERE seq = 3`);
  for (let seq = 3; seq <= 12; seq++) {
    if (seq > 3) await mutate(`ALTER TABLE agate.ledger UPDATE prev_hash = (SELECT hash FROM agate.ledger WHERE seq = ${seq - 1}) WHERE seq = ${seq}`);
    await mutate(`ALTER TABLE agate.ledger UPDATE hash = ${LINK_SQL} WHERE seq = ${seq}`);
  }
  assert.ok((await verifyChain(store, codec, 'test')).ok, 'links alone cannot tell');
  const r = await verifyChain(store, codec, 'test', { deep: true });
  assert.is(r.failure?.seq, 3);
  assert.match(r.failure!.problem, /body/);
});

ledger('two instances on one chain: a stale head is refused before it inserts, and a new assignment reloads it', async () => {
  const chain = 'shared-partition';
  const a = new LedgerService({ bus, store, codec, chainId: 'test', logger: silentLogger, signer });
  const b = new LedgerService({ bus, store, codec, chainId: 'test', logger: silentLogger, signer });
  await a.start();
  await b.start();
  try {
    await a.append(events(5), chain, undefined, undefined, 1);
    await b.append(events(5), chain, undefined, undefined, 1); // the partition moved to b, which loads the head (5) from the store
    // a still believes it owns the partition under the same assignment: its head (5) is stale.
    const refused = await a.append(events(5), chain, undefined, undefined, 1).then(() => undefined, (err: unknown) => err);
    assert.instance(refused, AgateError);
    assert.is((refused as AgateError).code, ErrorCode.LEDGER_CHAIN_MOVED);
    await a.append(events(5), chain, undefined, undefined, 1); // the bus retries; the head is reloaded
    const stale = await b.append(events(5), chain, undefined, undefined, 1).then(() => undefined, (err: unknown) => err);
    assert.is((stale as AgateError | undefined)?.code, ErrorCode.LEDGER_CHAIN_MOVED, 'b is stale now');
    await b.append(events(5), chain, undefined, undefined, 2); // the partition comes back to b: reloaded on the new assignment
    await a.append(events(5), chain, undefined, undefined, 2); // and to a: reloaded, not refused
  } finally {
    await a.stop();
    await b.stop();
  }
  const rows = await store.query<{ n: string; last: string; seqs: string }>('SELECT count() AS n, max(seq) AS last, uniqExact(seq) AS seqs FROM agate.ledger WHERE chain_id = {c:String}', { c: chain });
  assert.equal([rows[0]!.n, rows[0]!.last, rows[0]!.seqs].map(Number), [25, 25, 25], 'records 1..25, no sequence twice');
  assert.ok((await verifyChain(store, codec, chain)).ok);
});

ledger('one log, one key: a ledger whose key did not sign the stored checkpoints refuses to start', async () => {
  const { ledger: first } = await fresh(12);
  await first.stop();
  const other = parseSignerKey(generateSignerKey('agate.test/ledger')); // same name, another key: another instance's own
  const foreign = new LedgerService({ bus, store, codec, chainId: 'test', logger: silentLogger, signer: other });
  const err = await foreign.start().then(() => undefined, (e: unknown) => e);
  assert.instance(err, AgateError);
  assert.is((err as AgateError).code, ErrorCode.LEDGER_KEY_INVALID);
  assert.match((err as AgateError).message, /chains? .*test.* not signed by this ledger's key/);
  await foreign.stop();
  const same = newLedger();
  await same.start(); // the key that signed them starts
  await same.stop();
});

ledger.run();

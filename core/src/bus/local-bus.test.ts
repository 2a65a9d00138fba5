import { suite } from '../../../test/harness/suite.js';
import * as assert from 'uvu/assert';
import { appendFileSync, existsSync, mkdtempSync, readdirSync, readFileSync, renameSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { AgateError, ErrorCode } from '../errors.js';
import { FILE_HEADER, frameHeader, recordsIn, segmentName } from './log-frame.js';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { randomUUID } from 'node:crypto';
import { SAMPLES } from '../../../schemas/src/samples.js';
import type { AgateEvent, Command } from '../../../schemas/src/events.js';
import { silentLogger } from '../log.js';
import { LocalBus } from './local-bus.js';
import { EventCodec } from '../../../schemas/src/codec.js';
import type { StreamInfo } from './bus.js';

const dirs: string[] = [];
const freshDir = () => {
  const d = mkdtempSync(join(tmpdir(), 'agate-bus-'));
  dirs.push(d);
  return d;
};
const open = (dir: string) => new LocalBus({ dir, fsync: true, logger: silentLogger });
/** The file of a bus's first (and, in most tests, only) log segment. */
const firstSegment = (dir: string) => join(dir, 'segments', segmentName(FILE_HEADER, 'log'));
const command = (): Command => ({ ...SAMPLES.Command, event_id: randomUUID() });

/** Collects what a group receives until `count` events arrived. */
function collect(bus: LocalBus, group: string, types: AgateEvent['type'][], count: number) {
  const got: AgateEvent[] = [];
  let done!: () => void;
  const finished = new Promise<void>((r) => (done = r));
  const sub = bus.subscribe({ group, types, handler: async (batch) => { got.push(...batch); if (got.length >= count) done(); } });
  return { got, finished, sub };
}

const bus = suite('LocalBus');
bus.after(() => dirs.forEach((d) => rmSync(d, { recursive: true, force: true })));

bus('delivers published events in order, filtered by type', async () => {
  const b = open(freshDir());
  const events = [command(), { ...SAMPLES.Verdict, event_id: randomUUID() }, command()];
  for (const e of events) await b.publish(e);
  const c = collect(b, 'g', ['Command'], 2);
  await c.finished;
  assert.equal(c.got.map((e) => e.event_id), [events[0]!.event_id, events[2]!.event_id]);
  await b.close();
});

bus('a restarted bus resumes each group from its committed position; a new group reads everything', async () => {
  const dir = freshDir();
  const first = open(dir);
  const a = command();
  await first.publish(a);
  const c1 = collect(first, 'ledger', ['Command'], 1);
  await c1.finished;
  await (await c1.sub).close();
  await first.close();

  const second = open(dir);
  const b = command();
  await second.publish(b);
  const resumed = collect(second, 'ledger', ['Command'], 1);
  const fresh = collect(second, 'other', ['Command'], 2);
  await Promise.all([resumed.finished, fresh.finished]);
  assert.equal(resumed.got.map((e) => e.event_id), [b.event_id]);
  assert.equal(fresh.got.map((e) => e.event_id), [a.event_id, b.event_id]);
  await second.close();
});

bus('batches carry each delivered event as encoded in the log, from memory and from the file alike', async () => {
  const dir = freshDir();
  const codec = new EventCodec();
  const first = open(dir);
  const events = [command(), { ...SAMPLES.Verdict, event_id: randomUUID() }, command(), command()];
  for (const e of events) await first.publish(e);
  await first.close();
  const second = open(dir); // a new bus reads the first events back from the file
  const late = command();
  await second.publish(late);
  const seen: { batch: AgateEvent[]; source: StreamInfo }[] = [];
  let done!: () => void;
  const finished = new Promise<void>((r) => (done = r));
  await second.subscribe({ group: 'ledger', types: ['Command'], handler: async (batch, source) => {
    seen.push({ batch: [...batch], source });
    if (seen.flatMap((s) => s.batch).length === 4) done();
  } });
  await finished;
  for (const { batch, source } of seen) {
    assert.is(source.encoded?.length, batch.length);
    batch.forEach((e, i) => assert.equal(source.encoded![i], codec.encode(e), e.event_id));
  }
  assert.equal(seen.flatMap((s) => s.batch.map((e) => e.event_id)), [events[0]!, events[2]!, events[3]!, late].map((e) => e.event_id));
  await second.close();
});

bus('the in-memory window holds only what some subscribed group has not handled: later groups read the rest from the file', async () => {
  const b = open(freshDir());
  const published = [command(), command()];
  // "fast" handles at once; "held" keeps its batch until the gate opens.
  const fast = collect(b, 'fast', ['Command'], 2);
  let open_!: () => void;
  const gate = new Promise<void>((r) => (open_ = r));
  let heldGot!: () => void;
  const heldReceived = new Promise<void>((r) => (heldGot = r));
  await b.subscribe({ group: 'held', types: ['Command'], handler: async (batch) => { if (batch.length > 0) heldGot(); await gate; } });
  for (const e of published) await b.publish(e);
  await fast.finished;
  await heldReceived;
  // "held" has not settled: a group starting now is served from memory, the very objects published.
  const during = collect(b, 'during', ['Command'], 2);
  await during.finished;
  published.forEach((e, i) => assert.ok(during.got[i] === e, 'served from memory'));
  open_();
  // Every group has now handled both; settling happens as the handlers' promises resolve.
  await new Promise((r) => setTimeout(r, 100));
  const after = collect(b, 'after', ['Command'], 2);
  await after.finished;
  assert.equal(after.got.map((e) => e.event_id), published.map((e) => e.event_id));
  published.forEach((e, i) => assert.ok(after.got[i] !== e, 'read back from the file, not kept in memory'));
  // New events reach the caught-up groups from memory again.
  const next = command();
  const more = collect(b, 'more', ['Command'], 3);
  await b.publish(next);
  await more.finished;
  assert.ok(more.got[2] === next);
  await b.close();
});

bus('a failing handler gets the same batch again (nothing lost)', async () => {
  const b = open(freshDir());
  const e = command();
  let calls = 0;
  const seen: string[] = [];
  const done = new Promise<void>((resolve) => {
    void b.subscribe({ group: 'g', types: ['Command'], handler: async (batch) => {
      calls += 1;
      if (calls === 1) throw new Error('store unavailable');
      seen.push(...batch.map((x) => x.event_id));
      resolve();
    } });
  });
  await b.publish(e);
  await done;
  assert.is(calls, 2);
  assert.equal(seen, [e.event_id]);
  await b.close();
});

bus('close accounts for every group: one that handled all it takes is not trailing; one whose handler failed at the end, or that closed before later events, is, with the count it left', async () => {
  const b = open(freshDir());
  const drained = collect(b, 'drained', ['Command'], 3);
  let failing!: () => void;
  const failed = new Promise<void>((r) => (failing = r));
  await b.subscribe({ group: 'refused', types: ['Command'], handler: async () => {
    failing();
    throw new Error('store unavailable');
  } });
  const early = collect(b, 'early', ['Command', 'Response'], 1);
  await b.publish(command());
  await early.finished;
  await (await early.sub).close();
  // After "early" closed: two Commands it takes, a Verdict it does not; a Response published without waiting (a lazy commit).
  await b.publish(command());
  await b.publish({ ...SAMPLES.Verdict, event_id: randomUUID() });
  await b.publish(command());
  void b.publish({ ...SAMPLES.Response, event_id: randomUUID() });
  await drained.finished;
  await failed;
  await b.close();
  const end = b.end;
  assert.equal(b.trailing.map((t) => ({ group: t.group, events: t.events, end: t.end })).sort((x, y) => x.group.localeCompare(y.group)), [
    { group: 'early', events: 3, end },
    { group: 'refused', events: 3, end },
  ]);
  assert.ok(b.trailing.every((t) => t.position < t.end));
});

bus('a handler holding two batches gets the second before the first settles; when the first fails, both come again, in order', async () => {
  const dir = freshDir();
  const b = open(dir);
  const events = Array.from({ length: 30 }, command);
  for (const e of events) await b.publish(e);
  const calls: string[][] = [];
  const delivered: string[] = [];
  let release!: (ok: boolean) => void;
  const first = new Promise<boolean>((r) => (release = r));
  let secondCame!: () => void;
  const second = new Promise<void>((r) => (secondCame = r));
  let finished!: () => void;
  const done = new Promise<void>((r) => (finished = r));
  await b.subscribe({ group: 'g', types: ['Command'], maxBatch: 10, inFlight: 2, handler: async (batch) => {
    const n = calls.push(batch.map((e) => e.event_id));
    if (n === 1 && !(await first)) throw new Error('store unavailable');
    if (n === 2) {
      secondCame();
      throw new Error('a batch after a failed one fails too');
    }
    if (n >= 3) delivered.push(...batch.map((e) => e.event_id));
    if (delivered.length === 30) finished();
  } });
  await second; // handed over while the first is still held
  assert.is(calls.length, 2);
  release(false);
  await done;
  assert.equal(calls.slice(2, 4), calls.slice(0, 2), 'the failed batch and the one after it, again');
  assert.equal(delivered, events.map((e) => e.event_id));
  await b.close();
  // Everything was committed once handled: the group resumes after it.
  const again = open(dir);
  const { got, finished: next } = collect(again, 'g', ['Command'], 1);
  const late = command();
  await again.publish(late);
  await next;
  assert.equal(got.map((e) => e.event_id), [late.event_id]);
  await again.close();
});

bus('an event published while a handler holding batches still works on them is delivered after (no lost wake-up)', async () => {
  const b = open(freshDir());
  const [first, second] = [command(), command()];
  let release!: () => void;
  const held = new Promise<void>((r) => (release = r));
  const got: string[] = [];
  let arrived!: () => void;
  const both = new Promise<void>((r) => (arrived = r));
  await b.subscribe({ group: 'g', types: ['Command'], inFlight: 2, handler: async (batch) => {
    got.push(...batch.map((e) => e.event_id));
    if (got.length === 1) await held;
    if (got.length === 2) arrived();
  } });
  await b.publish(first);
  while (got.length === 0) await new Promise((r) => setTimeout(r, 5));
  // The consumer is waiting for the held batch, not for new events.
  await new Promise((r) => setTimeout(r, 50));
  await b.publish(second);
  release();
  const timeout = new Promise<string>((r) => setTimeout(() => r('timed out'), 3000).unref());
  assert.is(await Promise.race([both.then(() => 'delivered'), timeout]), 'delivered');
  assert.equal(got, [first.event_id, second.event_id]);
  await b.close();
});

bus('a caught-up group moves past events it does not want without handling them, and still gets the ones it wants, in order', async () => {
  const dir = freshDir();
  const b = open(dir);
  const closedSeen: AgateEvent[][] = [];
  let gotClosed!: () => void;
  const closedArrived = new Promise<void>((r) => (gotClosed = r));
  const sub = await b.subscribe({ group: 'ends', types: ['SessionClosed'], handler: async (batch) => {
    closedSeen.push([...batch]);
    gotClosed();
  } });
  for (let i = 0; i < 5; i++) await b.publish(command());
  const unwanted = b.end;
  const closed = { ...SAMPLES.SessionClosed, event_id: randomUUID() };
  await b.publish(closed);
  await closedArrived;
  // Only the event it wants was handed over: the commands before it were never a batch.
  assert.equal(closedSeen.map((batch) => batch.map((e) => e.event_id)), [[closed.event_id]]);
  for (let i = 0; i < 3; i++) await b.publish(command());
  const end = b.end;
  assert.ok(end > unwanted);
  await sub.close();
  await b.close();
  // Its committed position covers the unwanted commands after the last event it took.
  assert.is(Number(readFileSync(join(dir, 'groups', 'ends.offset'), 'utf8')), end);
});

bus('accept: a group gets only the events of its types it accepts, caught up and from the file alike, and moves past the rest', async () => {
  const dir = freshDir();
  const b = open(dir);
  const verdict = (decision: 'allow' | 'hold') => ({ ...SAMPLES.Verdict, event_id: randomUUID(), decision });
  const holdsOnly = (e: AgateEvent) => e.type !== 'Verdict' || e.decision === 'hold';
  const batches: string[][] = [];
  let arrived!: () => void;
  let want = 1;
  const enough = () => new Promise<void>((r) => (arrived = r));
  let next = enough();
  const sub = await b.subscribe({ group: 'holds', types: ['Verdict'], accept: holdsOnly, handler: async (batch) => {
    batches.push(batch.map((e) => e.event_id));
    if (batches.flat().length >= want) arrived();
  } });
  const before = [verdict('allow'), verdict('hold'), verdict('allow')];
  for (const e of before) await b.publish(e);
  await next;
  // The allows it does not accept were never handed over, alone or with the hold.
  assert.equal(batches, [[before[1]!.event_id]]);
  // A group subscribed late reads the same events back from the file: the same filter applies.
  const late: AgateEvent[] = [];
  const lateSub = await b.subscribe({ group: 'late-holds', types: ['Verdict'], accept: holdsOnly, handler: async (batch) => void late.push(...batch) });
  for (let i = 0; i < 100 && late.length < 1; i++) await new Promise((r) => setTimeout(r, 20));
  assert.equal(late.map((e) => e.event_id), [before[1]!.event_id]);
  want = 2;
  next = enough();
  const after = [verdict('allow'), verdict('hold')];
  for (const e of after) await b.publish(e);
  await next;
  assert.equal(batches.flat(), [before[1]!.event_id, after[1]!.event_id]);
  const end = b.end;
  await sub.close();
  await lateSub.close();
  await b.close();
  assert.is(Number(readFileSync(join(dir, 'groups', 'holds.offset'), 'utf8')), end, 'its committed position covers the verdicts it passed');
});

bus('a group that only skipped events since its last commit commits seldom; one that handled some commits within a second', async () => {
  const dir = freshDir();
  const b = open(dir);
  const offset = (group: string) => (existsSync(join(dir, 'groups', `${group}.offset`)) ? Number(readFileSync(join(dir, 'groups', `${group}.offset`), 'utf8')) : undefined);
  const handling = collect(b, 'cmds', ['Command'], 4);
  const skipping = await b.subscribe({ group: 'ends', types: ['SessionClosed'], handler: async () => {} });
  await b.publish(command());
  // A group's first commit is at once, whatever it did.
  const first = b.end;
  for (let i = 0; i < 100 && (offset('cmds') !== first || offset('ends') !== first); i++) await new Promise((r) => setTimeout(r, 20));
  assert.is(offset('ends'), first);
  for (let i = 0; i < 3; i++) await b.publish(command());
  await handling.finished;
  const end = b.end;
  for (let i = 0; i < 100 && offset('cmds') !== end; i++) await new Promise((r) => setTimeout(r, 20));
  assert.is(offset('cmds'), end, 'the handling group committed within about a second');
  await new Promise((r) => setTimeout(r, 1_200));
  assert.is(offset('ends'), first, 'the skipping group has not committed again yet');
  await skipping.close();
  assert.is(offset('ends'), end, 'closing commits where it stands');
  await (await handling.sub).close();
  await b.close();
});

bus('requestVerdict: resolves with the verdict, or times out when none comes', async () => {
  const b = open(freshDir());
  await b.subscribe({ group: 'policy', types: ['Command'], handler: async (batch) => {
    for (const c of batch) if (c.type === 'Command' && c.text === 'answer me') {
      await b.publish({ ...SAMPLES.Verdict, event_id: randomUUID(), command_id: c.event_id, decision: 'allow' });
    }
  } });
  const answered = await b.requestVerdict({ ...command(), text: 'answer me' }, 5000);
  assert.is(answered.kind, 'verdict');
  assert.is(answered.kind === 'verdict' && answered.verdict.decision, 'allow');
  const started = Date.now();
  const silent = await b.requestVerdict({ ...command(), text: 'nobody answers' }, 150);
  assert.is(silent.kind, 'timeout');
  assert.ok(Date.now() - started >= 140);
  await b.close();
});

/** The events in the bus's log file as it is on disk now. */
const onDisk = (dir: string) => recordsIn(readFileSync(firstSegment(dir))).map((r) => new EventCodec().decode(r));

bus('decideInline: a command and its verdict are written together, and the waiter hears the verdict only once it is in the log', async () => {
  const dir = freshDir();
  const b = open(dir);
  const decided: string[] = [];
  const wrote: string[] = [];
  b.decideInline({
    decide: (c) => {
      decided.push(c.event_id);
      return [{ ...SAMPLES.Verdict, event_id: randomUUID(), command_id: c.event_id, decision: c.text === 'no' ? 'deny' : 'allow' }];
    },
    written: (events) => void wrote.push(...events.map((e) => (e.type === 'Verdict' ? e.command_id : e.type))),
  });
  const [yes, no] = [{ ...command(), text: 'yes' }, { ...command(), text: 'no' }];
  const outcomes = await Promise.all([yes, no].map(async (c) => {
    const o = await b.requestVerdict(c, 5000);
    // At the moment the proxy may act, the verdict is in the file, right behind its command.
    const log = onDisk(dir);
    const at = log.findIndex((e) => e.event_id === c.event_id);
    const next = log[at + 1];
    assert.ok(at >= 0 && next?.type === 'Verdict' && next.command_id === c.event_id, 'the verdict follows its command on disk');
    return o;
  }));
  assert.equal(outcomes.map((o) => o.kind === 'verdict' && o.verdict.decision), ['allow', 'deny']);
  // A command published without a waiter (recorded after the fact) is decided the same way.
  const late = command();
  await b.publish(late);
  assert.equal(decided, [yes.event_id, no.event_id, late.event_id]);
  assert.equal(wrote.sort(), decided.slice().sort(), 'the decider is told of each decision once it is written');
  // A command that cannot be written (an attribute Avro cannot encode) is decided, but the
  // decider is never told it was written, and nothing of it is in the log.
  const bad = { ...command(), attributes: { note: 7 as unknown as string } };
  await b.publish(bad).then(() => assert.unreachable('the write succeeded'), () => undefined);
  assert.is(decided.length, 4);
  assert.is(wrote.length, 3);
  decided.pop();
  assert.equal(onDisk(dir).map((e) => e.type), ['Command', 'Verdict', 'Command', 'Verdict', 'Command', 'Verdict']);
  // Withdrawn (its service stopped), it decides nothing: the command waits, and times out.
  b.decideInline(undefined);
  assert.is((await b.requestVerdict(command(), 100)).kind, 'timeout');
  assert.is(decided.length, 3);
  await b.close();
});

bus('a verdict reaches its waiter before the commit is handed to observers and groups, which still get every event in log order', async () => {
  const b = open(freshDir());
  b.decideInline({ decide: (c) => [{ ...SAMPLES.Verdict, event_id: randomUUID(), command_id: c.event_id, decision: 'allow' }], written: () => undefined });
  const seen: string[] = [];
  b.observe((e) => seen.push(e.type));
  const group = collect(b, 'g', ['Command', 'Verdict', 'Response'], 5);
  await group.sub;
  const first = command();
  assert.is((await b.requestVerdict(first, 5000)).kind, 'verdict');
  // Here a proxy forwards the statement: the bookkeeping of the commit comes after.
  assert.equal(seen, [], 'observers hear of the commit only after the waiter went on');
  await new Promise((r) => setImmediate(r));
  assert.equal(seen, ['Command', 'Verdict']);
  // A Response rides the next command's commit: a resolved publish means observers have it.
  const response = b.publish({ ...SAMPLES.Response, event_id: randomUUID(), command_id: first.event_id });
  const second = b.requestVerdict(command(), 5000);
  await response;
  assert.equal(seen, ['Command', 'Verdict', 'Response', 'Command', 'Verdict']);
  assert.is((await second).kind, 'verdict');
  await group.finished;
  assert.equal(group.got.map((e) => e.type), ['Command', 'Verdict', 'Response', 'Command', 'Verdict']);
  await b.close();
});

bus('a verdict published later (an approval) reaches its waiter only once it is in the log', async () => {
  const dir = freshDir();
  const b = open(dir);
  b.decideInline({ decide: (c) => [{ ...SAMPLES.Verdict, event_id: randomUUID(), command_id: c.event_id, decision: 'hold', hold_expires_at: (Date.now() + 10_000) * 1000 }], written: () => undefined });
  const c = command();
  let held!: () => void;
  const onHold = new Promise<void>((r) => (held = r));
  const waiting = b.requestVerdict(c, 5000, { onHold: () => held() });
  await onHold;
  void b.publish({ ...SAMPLES.Verdict, event_id: randomUUID(), command_id: c.event_id, decision: 'allow' });
  const o = await waiting;
  assert.is(o.kind === 'verdict' && o.verdict.decision, 'allow');
  assert.equal(onDisk(dir).filter((e) => e.type === 'Verdict').map((e) => e.type === 'Verdict' && e.decision), ['hold', 'allow']);
  await b.close();
});

bus('large events: a group that starts late still gets every one, the older ones from the file', async () => {
  const b = new LocalBus({ dir: freshDir(), fsync: false, logger: silentLogger });
  // 24 events of 4 MiB: more than the in-memory window keeps by bytes (32-64 MiB).
  const events = Array.from({ length: 24 }, (_, i) => ({ ...command(), text: `${i} `.padEnd(4 * 1024 * 1024, 'x') }));
  for (const e of events) await b.publish(e);
  const c = collect(b, 'late', ['Command'], events.length);
  await c.finished;
  assert.equal(c.got.map((e) => e.event_id), events.map((e) => e.event_id));
  assert.ok(c.got.every((e, i) => e.type === 'Command' && e.text === events[i]!.text));
  await b.close();
});

/** Publishes `n` commands, lets group 'ledger' take them and commit, closes; returns the committed position. */
async function committed(dir: string, n: number): Promise<number> {
  const b = open(dir);
  for (let i = 0; i < n; i++) await b.publish(command());
  const c = collect(b, 'ledger', ['Command'], n);
  await c.finished;
  await (await c.sub).close();
  await b.close();
  return Number(readFileSync(join(dir, 'groups', 'ledger.offset'), 'utf8'));
}

async function refusedOffset(dir: string): Promise<AgateError> {
  const b = open(dir);
  try {
    await b.subscribe({ group: 'ledger', types: ['Command'], handler: async () => {} });
    assert.unreachable('the group started from a bad offset file');
  } catch (err) {
    return err as AgateError;
  } finally {
    await b.close();
  }
  throw new Error('unreachable');
}

bus('the committed position is the log end in a file of its own, a plain decimal', async () => {
  const dir = freshDir();
  const at = await committed(dir, 3);
  assert.is(at, statSync(firstSegment(dir)).size);
  assert.is(readFileSync(join(dir, 'groups', 'ledger.offset'), 'utf8'), String(at));
});

bus('an emptied, a corrupt, and a too-large offset file are refused with the file named, never read as 0', async () => {
  const dir = freshDir();
  const at = await committed(dir, 2);
  const file = join(dir, 'groups', 'ledger.offset');
  for (const [text, why] of [['', /is empty/], ['12abc', /is not a decimal number \("12abc"\)/], [String(at + 1000), new RegExp(`is ${at + 1000}, past the end of the log \\(${at} bytes\\)`)]] as const) {
    writeFileSync(file, text);
    const err = await refusedOffset(dir);
    assert.is(err.code, ErrorCode.BUS_OFFSET_INVALID);
    assert.ok(err.message.startsWith(`${file}: the committed position of consumer group "ledger" `), err.message);
    assert.match(err.message, why);
  }
});

bus('batches carry each event\'s position: where the log stands just past it', async () => {
  const b = open(freshDir());
  const events = [command(), command()];
  for (const e of events) await b.publish(e);
  let seen: StreamInfo | undefined;
  let done!: () => void;
  const got = new Promise<void>((r) => (done = r));
  const sub = await b.subscribe({ group: 'g', types: ['Command'], handler: async (_batch, source) => void ((seen = source), done()) });
  await got;
  const sizes = seen!.encoded!.map((e) => e.length + 8); // frame header: length and CRC-32C
  assert.equal(seen!.positions, [16 + sizes[0]!, 16 + sizes[0]! + sizes[1]!]); // after the file header
  await sub.close();
  await b.close();
});

bus('a consumer stopped by a record it cannot decode says so through problem(); an offset inside a record is refused', async () => {
  const dir = freshDir();
  const first = open(dir);
  const a = command();
  await first.publish(a);
  await first.close();
  // A record whose checksum holds but whose body is no event (a writer's bug, not a torn write).
  const junk = Buffer.from('not an avro event');
  appendFileSync(firstSegment(dir), Buffer.concat([frameHeader(junk), junk]));
  const b = open(dir);
  assert.is(b.problem(), undefined);
  const c = collect(b, 'ledger', ['Command'], 1);
  await c.finished;
  for (let i = 0; i < 100 && b.problem() === undefined; i++) await new Promise((r) => setTimeout(r, 10));
  assert.match(b.problem() ?? '', /^consumer group "ledger" stopped at log position \d+: /);
  assert.is(c.got.length, 1, 'the events before it were delivered');
  await (await c.sub).close();
  await b.close();
  writeFileSync(join(dir, 'groups', 'other.offset'), '17'); // one byte into the first record
  const err = await (async () => {
    const again = open(dir);
    try {
      await again.subscribe({ group: 'other', types: ['Command'], handler: async () => {} });
    } catch (e) {
      return e as AgateError;
    } finally {
      await again.close();
    }
    return undefined;
  })();
  assert.is(err?.code, ErrorCode.BUS_OFFSET_INVALID);
  assert.match(err!.message, /is 17, where no record of the log starts/);
});

bus('a torn final frame from a crash is cut on open; publishing after close is refused', async () => {
  const dir = freshDir();
  const first = open(dir);
  await first.publish(command());
  await first.close();
  const log = firstSegment(dir);
  const intact = statSync(log).size;
  appendFileSync(log, Buffer.from([0, 0, 1, 0, 0xc3, 0, 0, 0, 1])); // a frame header promising 256 bytes, then a crash
  const second = open(dir);
  assert.is(statSync(log).size, intact);
  const e = command();
  await second.publish(e);
  const c = collect(second, 'g', ['Command'], 2);
  await c.finished;
  assert.is(c.got[1]!.event_id, e.event_id);
  await second.close();
  try {
    await second.publish(command());
    assert.unreachable();
  } catch (err) {
    assert.is((err as { code: string }).code, 'BUS_CLOSED');
  }
});

bus('a data directory from before segments opens: its events.log becomes the first segment and each group resumes where it was', async () => {
  const dir = freshDir();
  const first = open(dir);
  const events = [command(), command(), command()];
  for (const e of events) await first.publish(e);
  const c1 = collect(first, 'ledger', ['Command'], 2);
  await c1.finished;
  await (await c1.sub).close();
  await first.close();
  // As an Agate from before segments left it: bus/events.log and bus/groups/.
  renameSync(firstSegment(dir), join(dir, 'events.log'));
  rmSync(join(dir, 'segments'), { recursive: true });
  const committedAt = Number(readFileSync(join(dir, 'groups', 'ledger.offset'), 'utf8'));
  const second = open(dir);
  assert.not.ok(existsSync(join(dir, 'events.log')));
  const later = command();
  await second.publish(later);
  const c2 = collect(second, 'ledger', ['Command'], 1);
  await c2.finished;
  await new Promise((r) => setTimeout(r, 50));
  assert.equal(c2.got.map((e) => e.event_id), [later.event_id], 'nothing delivered twice, nothing skipped');
  assert.ok(committedAt > FILE_HEADER);
  await (await c2.sub).close();
  await second.close();
});

bus('retention deletes old segments every group committed past, and keeps those a group (subscribed or not) still needs', async () => {
  const dir = freshDir();
  const b = new LocalBus({ dir, fsync: false, logger: silentLogger, segmentBytes: 4096, retentionMs: 0, retentionCheckMs: 3_600_000 });
  for (let i = 0; i < 40; i++) await b.publish(command());
  // A group that read the first events long ago and is not running now pins its segments.
  const idle = b.segments()[1]!.base;
  writeFileSync(join(dir, 'groups', 'reports.offset'), String(idle));
  const c = collect(b, 'ledger', ['Command'], 40);
  await c.finished;
  const sub = await c.sub;
  await sub.close(); // commits the ledger's position: the end of the log
  b.retain();
  assert.equal(b.segments()[0]!.base, idle, 'deleted up to the idle group, no further');
  writeFileSync(join(dir, 'groups', 'reports.offset'), String(b.segments().pop()!.base));
  b.retain();
  assert.is(b.segments().length, 1, 'every sealed segment is gone once every group is past it');
  assert.equal(readdirSync(join(dir, 'segments')).filter((n) => n.endsWith('.log')).length, 1);
  // A group subscribed now that has not committed yet holds the log from where it reads.
  for (let i = 0; i < 40; i++) await b.publish(command());
  const holdsAt = b.segments()[0]!.base;
  const stuck = await b.subscribe({ group: 'stuck', types: ['Command'], handler: () => Promise.reject(new Error('store down')) });
  const ledger = collect(b, 'ledger', ['Command'], 40);
  await ledger.finished;
  await (await ledger.sub).close();
  writeFileSync(join(dir, 'groups', 'reports.offset'), String(b.segments().pop()!.base));
  b.retain();
  assert.is(b.segments()[0]!.base, holdsAt);
  await stuck.close();
  await b.close();
});

bus.run();

import { suite } from '../../../test/harness/suite.js';
import * as assert from 'uvu/assert';
import { randomUUID } from 'node:crypto';
import { appendFileSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { LocalBus } from '../../../core/src/bus/local-bus.js';
import { FILE_HEADER, frameHeader, segmentName } from '../../../core/src/bus/log-frame.js';
import { silentLogger } from '../../../core/src/log.js';
import type { AgateEvent, Command, Decision, Response, SessionClosed } from '../../../schemas/src/events.js';
import { SAMPLES } from '../../../schemas/src/samples.js';
import { CutWork, CUT_SESSION_REASON, OpenWorkTracker } from './cut-work.js';

const opened = (session_id: string, time = 1_000): AgateEvent => ({ ...SAMPLES.SessionOpened, event_id: randomUUID(), session_id, time });
const command = (session_id: string, time = 2_000): Command => ({ ...SAMPLES.Command, event_id: randomUUID(), session_id, time });
const verdict = (c: Command, decision: Decision): AgateEvent => ({ ...SAMPLES.Verdict, event_id: randomUUID(), session_id: c.session_id, command_id: c.event_id, decision, time: c.time + 1 });
const response = (c: Command): AgateEvent => ({ ...SAMPLES.Response, event_id: randomUUID(), session_id: c.session_id, command_id: c.event_id, time: c.time + 2 });
const closed = (session_id: string): AgateEvent => ({ ...SAMPLES.SessionClosed, event_id: randomUUID(), session_id });

const responses = (events: AgateEvent[]) => new Map(events.filter((e): e is Response => e.type === 'Response').map((r) => [r.command_id, r]));

const cut = suite('CutWork');

cut('closes each open command by what its last verdict says, and each open session', () => {
  const w = new CutWork();
  const ran = command('s1');
  const masked = command('s1');
  const undecided = command('s1');
  const denied = command('s1');
  const held = command('s1');
  const released = command('s1', 5_000);
  const answered = command('s1');
  const events = [
    opened('s1'), ran, verdict(ran, 'allow'), masked, verdict(masked, 'mask'), undecided, denied, verdict(denied, 'deny'),
    held, verdict(held, 'hold'), released, verdict(released, 'hold'), verdict(released, 'allow'), answered, verdict(answered, 'allow'), response(answered),
  ];
  events.forEach((e) => w.add(e));
  const out = w.closing(9_000);
  const r = responses(out);
  assert.is(r.size, 6);
  assert.not.ok(r.has(answered.event_id));
  for (const c of [ran, masked, released]) {
    assert.is(r.get(c.event_id)!.outcome, 'unknown');
    assert.is(r.get(c.event_id)!.status, 'error');
    assert.match(r.get(c.event_id)!.error_message!, /^outcome unknown: Agate stopped after forwarding/);
  }
  for (const c of [undecided, denied, held]) {
    assert.is(r.get(c.event_id)!.outcome, 'not_forwarded');
    assert.is(r.get(c.event_id)!.status, 'refused');
    assert.match(r.get(c.event_id)!.error_message!, /^not forwarded: /);
  }
  assert.match(r.get(undecided.event_id)!.error_message!, /before a verdict/);
  const s = out.filter((e): e is SessionClosed => e.type === 'SessionClosed');
  assert.is(s.length, 1);
  assert.equal({ ...s[0], event_id: '' }, { type: 'SessionClosed', event_id: '', time: 9_000, session_id: 's1', reason: CUT_SESSION_REASON, commands: 7, duration_us: 4_001 });
  // The session's close comes after its commands' responses.
  assert.is(out[out.length - 1]!.type, 'SessionClosed');
});

cut('a session its proxy closed is left alone, even with a command that never got a response', () => {
  const w = new CutWork();
  const c = command('s2');
  [opened('s2'), c, verdict(c, 'allow'), closed('s2')].forEach((e) => w.add(e));
  assert.equal(w.closing(9_000), []);
});

const dirs: string[] = [];
const recovery = suite('OpenWorkTracker over the embedded log');
recovery.after(() => dirs.forEach((d) => rmSync(d, { recursive: true, force: true })));

/** Recovers on `bus`, as `agate start` does before its listeners open; the scan's start is noted. */
async function recover(bus: LocalBus, now: number, scans: (number | undefined)[] = []) {
  const scanFrom = bus.scanFrom.bind(bus);
  bus.scanFrom = (position, visit) => (scans.push(position), scanFrom(position, visit));
  return OpenWorkTracker.recover(bus, bus, silentLogger, () => now);
}

const freshDir = () => {
  const dir = mkdtempSync(join(tmpdir(), 'agate-cut-'));
  dirs.push(dir);
  return dir;
};

recovery('closes what a stop left open once: the records are in the log, and the next start finds nothing to close', async () => {
  const dir = freshDir();
  const open = () => new LocalBus({ dir, fsync: true, logger: silentLogger });
  const first = open();
  const c = command('s3');
  for (const e of [opened('s3'), c, verdict(c, 'allow')]) await first.publish(e);
  await first.close(); // as a kill leaves it: no response, no session close

  const second = open();
  const r2 = await recover(second, 9_000);
  assert.equal([r2.commands, r2.sessions], [1, 1]);
  const seen: AgateEvent[] = [];
  let done!: () => void;
  const all = new Promise<void>((r) => (done = r));
  const sub = await second.subscribe({ group: 'check', types: ['Response', 'SessionClosed'], handler: async (b) => { seen.push(...b); if (seen.length === 2) done(); } });
  await all;
  await sub.close();
  assert.is(responses(seen).get(c.event_id)!.outcome, 'unknown');
  // Work of this run: part of it written down in the snapshot, part only in the log (the kill).
  const d = command('s4');
  for (const e of [opened('s4'), d]) await second.publish(e);
  await r2.tracker.stop();
  const e = command('s4');
  await second.publish(e);
  const snapshot = JSON.parse(readFileSync(join(dir, 'open-work.json'), 'utf8')) as { position: number };
  await second.close();

  const third = open();
  const scans: (number | undefined)[] = [];
  const r3 = await recover(third, 10_000, scans);
  assert.equal([r3.commands, r3.sessions], [2, 1], 'the command in the snapshot and the one after it');
  assert.equal(scans, [snapshot.position], 'the log is read from the snapshot on, not from its start');
  await r3.tracker.stop();
  await third.close();
  const fourth = open();
  const r4 = await recover(fourth, 11_000);
  assert.equal([r4.commands, r4.sessions], [0, 0]);
  await r4.tracker.stop();
  await fourth.close();
});

recovery('a damaged snapshot, or one of another log: the whole log is read (slower, never wrong)', async () => {
  const dir = freshDir();
  const first = new LocalBus({ dir, fsync: true, logger: silentLogger });
  for (const e of [opened('s6'), command('s6')]) await first.publish(e);
  await first.close();
  for (const text of ['{"version":1,"posit', JSON.stringify({ version: 1, position: 999_999, work: { sessions: [] } })]) {
    writeFileSync(join(dir, 'open-work.json'), text);
    const bus = new LocalBus({ dir, fsync: true, logger: silentLogger });
    const r = await recover(bus, 9_000);
    assert.equal([r.commands, r.sessions], [1, 1]);
    await r.tracker.stop();
    await bus.close();
    rmSync(join(dir, 'segments'), { recursive: true }); // a new log
    const again = new LocalBus({ dir, fsync: true, logger: silentLogger });
    for (const e of [opened('s6'), command('s6')]) await again.publish(e);
    await again.close();
  }
});

recovery('a record it cannot decode: nothing is closed from part of the log, and the start goes on', async () => {
  const dir = freshDir();
  const first = new LocalBus({ dir, fsync: true, logger: silentLogger });
  const c = command('s5');
  for (const e of [opened('s5'), c]) await first.publish(e);
  await first.close();
  const junk = Buffer.from('not an event');
  appendFileSync(join(dir, 'segments', segmentName(FILE_HEADER, 'log')), Buffer.concat([frameHeader(junk), junk]));
  const second = new LocalBus({ dir, fsync: true, logger: silentLogger });
  const r = await recover(second, 9_000);
  assert.equal([r.commands, r.sessions], [0, 0]);
  await r.tracker.stop();
  await second.close();
});

cut.run();
recovery.run();

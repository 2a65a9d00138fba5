import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import { randomUUID } from 'node:crypto';
import { appendFileSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { LocalBus } from '../../../core/src/bus/local-bus.js';
import { frameHeader } from '../../../core/src/bus/log-frame.js';
import { silentLogger } from '../../../core/src/log.js';
import type { AgateEvent, Command, Decision, Response, SessionClosed } from '../../../schemas/src/events.js';
import { SAMPLES } from '../../../schemas/src/samples.js';
import { closeCutWork, CutWork, CUT_SESSION_REASON } from './cut-work.js';

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
const recovery = suite('closeCutWork over the embedded log');
recovery.after(() => dirs.forEach((d) => rmSync(d, { recursive: true, force: true })));

recovery('closes what a stop left open once: the records are in the log, and the next start finds nothing to close', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'agate-cut-'));
  dirs.push(dir);
  const open = () => new LocalBus({ dir, fsync: true, logger: silentLogger });
  const first = open();
  const c = command('s3');
  for (const e of [opened('s3'), c, verdict(c, 'allow')]) await first.publish(e);
  await first.close(); // as a kill leaves it: no response, no session close

  const second = open();
  assert.equal(await closeCutWork(second, second, silentLogger, () => 9_000), { commands: 1, sessions: 1 });
  const seen: AgateEvent[] = [];
  let done!: () => void;
  const all = new Promise<void>((r) => (done = r));
  const sub = await second.subscribe({ group: 'check', types: ['Response', 'SessionClosed'], handler: async (b) => { seen.push(...b); if (seen.length === 2) done(); } });
  await all;
  await sub.close();
  assert.is(responses(seen).get(c.event_id)!.outcome, 'unknown');
  // New work of this run is not the previous run's: a later start closes only what this run left.
  const d = command('s4');
  for (const e of [opened('s4'), d]) await second.publish(e);
  await second.close();

  const third = open();
  assert.equal(await closeCutWork(third, third, silentLogger, () => 10_000), { commands: 1, sessions: 1 });
  await third.close();
  const fourth = open();
  assert.equal(await closeCutWork(fourth, fourth, silentLogger, () => 11_000), { commands: 0, sessions: 0 });
  await fourth.close();
});

recovery('a record it cannot decode: nothing is closed from part of the log, and the start goes on', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'agate-cut-'));
  dirs.push(dir);
  const first = new LocalBus({ dir, fsync: true, logger: silentLogger });
  const c = command('s5');
  for (const e of [opened('s5'), c]) await first.publish(e);
  await first.close();
  const junk = Buffer.from('not an event');
  appendFileSync(join(dir, 'events.log'), Buffer.concat([frameHeader(junk), junk]));
  const second = new LocalBus({ dir, fsync: true, logger: silentLogger });
  assert.equal(await closeCutWork(second, second, silentLogger, () => 9_000), { commands: 0, sessions: 0 });
  await second.close();
});

cut.run();
recovery.run();

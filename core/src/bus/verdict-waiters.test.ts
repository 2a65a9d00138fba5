import { suite } from '../../../test/harness/suite.js';
import * as assert from 'uvu/assert';
import { randomUUID } from 'node:crypto';
import { SAMPLES } from '../../../schemas/src/samples.js';
import type { Command, Verdict } from '../../../schemas/src/events.js';
import { VerdictWaiters } from './verdict-waiters.js';

const waiters = suite('VerdictWaiters');
const command = (): Command => ({ ...SAMPLES.Command, event_id: randomUUID() });
const verdict = (c: Command, over: Partial<Verdict>): Verdict => ({ ...SAMPLES.Verdict, event_id: randomUUID(), command_id: c.event_id, ...over });
const published = () => Promise.resolve();

waiters('a hold moves the deadline to its expiry plus the normal deadline, then the final verdict answers', async () => {
  const w = new VerdictWaiters();
  const c = command();
  const holds: Verdict[] = [];
  const started = Date.now();
  const outcome = w.wait(c, 60, { onHold: (v) => holds.push(v) }, published);
  w.deliver(verdict(c, { decision: 'hold', hold_expires_at: (Date.now() + 150) * 1000, approval_id: 'a1' }));
  await new Promise((r) => setTimeout(r, 120)); // past the normal deadline: still waiting
  assert.is(w.size, 1);
  w.deliver(verdict(c, { decision: 'allow', approval_id: 'a1' }));
  const o = await outcome;
  assert.is(o.kind, 'verdict');
  assert.is((o as { verdict: Verdict }).verdict.decision, 'allow');
  assert.is(holds.length, 1);
  // Well past the normal 60 ms deadline. (Not >= 120: the 120 ms timer above may fire a
  // millisecond early by the wall clock, which made this fail now and then.)
  assert.ok(Date.now() - started >= 100, `answered after ${Date.now() - started} ms`);
  assert.is(w.size, 0);
});

waiters('no final verdict after a hold times out after expiry + deadline', async () => {
  const w = new VerdictWaiters();
  const c = command();
  const started = Date.now();
  const outcome = w.wait(c, 50, { onHold: () => undefined }, published);
  w.deliver(verdict(c, { decision: 'hold', hold_expires_at: (Date.now() + 100) * 1000 }));
  assert.is((await outcome).kind, 'timeout');
  const waited = Date.now() - started;
  assert.ok(waited >= 140 && waited < 1000, `waited ${waited} ms`);
});

waiters('without onHold, or without an expiry, a hold is the answer', async () => {
  const w = new VerdictWaiters();
  const a = command();
  const first = w.wait(a, 1000, {}, published);
  w.deliver(verdict(a, { decision: 'hold', hold_expires_at: (Date.now() + 100) * 1000 }));
  assert.is(((await first) as { verdict: Verdict }).verdict.decision, 'hold');
  const b = command();
  const second = w.wait(b, 1000, { onHold: () => assert.unreachable('no hold callback without an expiry') }, published);
  w.deliver(verdict(b, { decision: 'hold', hold_expires_at: null }));
  assert.is(((await second) as { verdict: Verdict }).verdict.decision, 'hold');
});

waiters('a failed publish rejects and forgets the waiter', async () => {
  const w = new VerdictWaiters();
  await w.wait(command(), 1000, {}, () => Promise.reject(new Error('disk full'))).then(
    () => assert.unreachable(),
    (err: Error) => assert.is(err.message, 'disk full'),
  );
  assert.is(w.size, 0);
});

// Issue 25 item 5: a publish still in flight at the deadline that then failed was forgotten, and
// with it the Command of a statement the client had been refused.
waiters('a publish failing after the deadline is reported through the timeout, not lost', async () => {
  const w = new VerdictWaiters();
  const c = command();
  const failure = new Error('broker away');
  const outcome = await w.wait(c, 30, {}, () => new Promise((_, reject) => setTimeout(() => reject(failure), 80)));
  assert.is(outcome.kind, 'timeout');
  assert.is(w.size, 0);
  if (outcome.kind !== 'timeout') return;
  const settled = await outcome.published.then(() => 'recorded', (err: unknown) => err);
  assert.is(settled, failure);
});

waiters('a publish completing after the deadline resolves the timeout\'s published', async () => {
  const w = new VerdictWaiters();
  let durable = false;
  const outcome = await w.wait(command(), 30, {}, () => new Promise((resolve) => setTimeout(() => ((durable = true), resolve()), 80)));
  assert.is(outcome.kind, 'timeout');
  assert.not.ok(durable, 'the deadline came first');
  if (outcome.kind === 'timeout') await outcome.published;
  assert.ok(durable);
});

waiters.run();

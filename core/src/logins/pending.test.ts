import { test } from '../../../test/harness/suite.js';
import * as assert from 'uvu/assert';
import { PendingLogins, type Abandoned } from './pending.js';

test('a login not done within the timeout is abandoned as timeout, and frees its slot', async () => {
  const p = new PendingLogins({ timeoutMs: 20, maxPending: 4 });
  const why: Abandoned[] = [];
  p.admit('a', (w) => why.push(w));
  const ok = p.admit('a', (w) => why.push(w));
  ok.done();
  await new Promise((r) => setTimeout(r, 60));
  assert.equal(why, ['timeout']);
  assert.is(p.size, 0);
});

test('at the cap, the oldest login of the busiest address is evicted for a newcomer', () => {
  const p = new PendingLogins({ timeoutMs: 60_000, maxPending: 3 });
  const evicted: string[] = [];
  const admit = (address: string, name: string) => p.admit(address, () => evicted.push(name));
  const logins = [admit('flood', 'f1'), admit('agent', 'a1'), admit('flood', 'f2')];
  logins.push(admit('agent', 'a2'));
  assert.equal(evicted, ['f1']);
  logins.push(admit('flood', 'f3'));
  assert.is(p.size, 3);
  for (const l of logins) l.done();
  assert.is(p.size, 0);
  // Then the agent's address held the most slots (2 to 1), so its oldest made room.
  assert.equal(evicted, ['f1', 'a1']);
});

test('a login in progress is not evicted while a silent one exists, even an older one from a busier address', () => {
  const p = new PendingLogins({ timeoutMs: 60_000, maxPending: 3 });
  const evicted: string[] = [];
  const agent = p.admit('shared', () => evicted.push('agent'));
  agent.progressed();
  p.admit('shared', () => evicted.push('idle1'));
  p.admit('other', () => evicted.push('idle2'));
  p.admit('shared', () => evicted.push('idle3'));
  assert.equal(evicted, ['idle1']);
  const busy = p.admit('shared', () => evicted.push('idle4'));
  busy.progressed();
  assert.equal(evicted, ['idle1', 'idle3']);
  // Only logins in progress and one silent one left: the silent one goes first.
  p.admit('x', () => evicted.push('late'));
  assert.equal(evicted, ['idle1', 'idle3', 'idle2']);
});

test('done() is idempotent and a done login is never abandoned', async () => {
  const p = new PendingLogins({ timeoutMs: 10, maxPending: 1 });
  let called = 0;
  const l = p.admit('a', () => (called += 1));
  l.done();
  l.done();
  assert.is(p.size, 0);
  assert.is(l.pending, false);
  await new Promise((r) => setTimeout(r, 30));
  assert.is(called, 0);
});

test.run();

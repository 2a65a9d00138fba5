import { suite } from '../../../test/harness/suite.js';
import * as assert from 'uvu/assert';
import { drainSessions, type DrainableSession } from './drain.js';

/** A session whose statement ends when the test says so. */
function session(sessions: Set<DrainableSession>, busy: boolean) {
  let end!: () => void;
  const s = {
    idle: !busy,
    reasons: [] as string[],
    finished: new Promise<void>((r) => (end = r)),
    terminate(reason: string) {
      s.reasons.push(reason);
      sessions.delete(s);
      end();
    },
  };
  sessions.add(s);
  return s;
}

const drain = suite('drainSessions');

drain('idle sessions close at once; a busy one closes when its statement ends', async () => {
  const sessions = new Set<DrainableSession>();
  const quiet = session(sessions, false);
  const busy = session(sessions, true);
  let done = false;
  const result = drainSessions(sessions, 10_000).then((r) => ((done = true), r));
  await new Promise((r) => setTimeout(r, 60));
  assert.is(quiet.reasons.length, 1);
  assert.is(busy.reasons.length, 0, 'a statement in flight is not cut');
  assert.is(done, false);
  busy.idle = true;
  assert.equal(await result, { idle: 2, cutOff: 0 });
  assert.is(busy.reasons.length, 1);
});

drain('a session still busy at the deadline is closed anyway', async () => {
  const sessions = new Set<DrainableSession>();
  const stuck = session(sessions, true);
  assert.equal(await drainSessions(sessions, 50), { idle: 0, cutOff: 1 });
  assert.match(stuck.reasons[0]!, /drain timeout/);
});

drain('nothing to drain resolves at once', async () => {
  assert.equal(await drainSessions(new Set(), 10_000), { idle: 0, cutOff: 0 });
});

drain.run();

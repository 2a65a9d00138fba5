import { suite } from '../../test/harness/suite.js';
import * as assert from 'uvu/assert';
import { Backoff, pause } from './retry.js';

const backoff = suite('Backoff');

backoff('steps double up to the cap; each wait lies in the upper half of its step', () => {
  const low = new Backoff({ firstMs: 100, maxMs: 1000 }, () => 0);
  assert.equal([1, 2, 3, 4, 5, 6].map(() => low.next()), [50, 100, 200, 400, 500, 500]);
  const high = new Backoff({ firstMs: 100, maxMs: 1000 }, () => 0.999999);
  assert.equal([1, 2, 3, 4, 5].map(() => high.next()), [100, 200, 400, 800, 1000]);
});

backoff('reset starts again from the first step', () => {
  const b = new Backoff({ firstMs: 10, maxMs: 100 }, () => 0);
  b.next();
  b.next();
  b.reset();
  assert.is(b.next(), 5);
});

backoff('a first step above the cap is the cap', () => {
  assert.is(new Backoff({ firstMs: 500, maxMs: 200 }, () => 0.999999).next(), 200);
});

backoff('waits drawn with the real random source stay in bounds and differ', () => {
  const waits = Array.from({ length: 50 }, () => new Backoff({ firstMs: 1000, maxMs: 1000 }).next());
  assert.ok(waits.every((w) => w >= 500 && w <= 1000));
  assert.ok(new Set(waits).size > 10, 'jittered');
});

const wait = suite('pause');

wait('waits, and an abort ends the wait early without throwing', async () => {
  const t0 = Date.now();
  await pause(30);
  assert.ok(Date.now() - t0 >= 25);
  const ac = new AbortController();
  const t1 = Date.now();
  setTimeout(() => ac.abort(), 10);
  await pause(10_000, ac.signal);
  assert.ok(Date.now() - t1 < 1000);
});

backoff.run();
wait.run();

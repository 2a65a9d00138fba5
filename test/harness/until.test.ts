import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import { until } from './until.js';

const test = suite('harness/until');

test('returns the first value that is not undefined, sync or async', async () => {
  let n = 0;
  assert.is(await until('three', () => (++n === 3 ? 'done' : undefined), 1000, 1), 'done');
  assert.is(await until('async', async () => 0, 1000, 1), 0, 'falsy values count');
});

test('times out naming what it waited for', async () => {
  try {
    await until('the moon', () => undefined, 20, 5);
    assert.unreachable();
  } catch (err) {
    assert.is((err as Error).message, 'timed out waiting for the moon');
  }
});

test('a probe that throws is tried again; the timeout names its last error', async () => {
  let n = 0;
  assert.is(await until('a late service', () => {
    if (++n < 3) throw new Error('connection refused');
    return 'up';
  }, 1000, 1), 'up');
  try {
    await until('a dead service', () => {
      throw new Error('connection refused');
    }, 20, 5);
    assert.unreachable();
  } catch (err) {
    assert.is((err as Error).message, 'timed out waiting for a dead service: connection refused');
  }
});

test.run();

import { suite } from './suite.js';
import * as assert from 'uvu/assert';
import { eventsSeen, until, untilTrue } from './until.js';

const test = suite('harness/until');

const failure = (p: Promise<unknown>): Promise<string> => p.then(() => assert.unreachable('resolved') as never, (err: Error) => err.message);

test('returns the first value that is not undefined, sync or async', async () => {
  let n = 0;
  assert.is(await until('three', () => (++n === 3 ? 'done' : undefined), { timeoutMs: 1000, everyMs: 1 }), 'done');
  assert.is(await until('async', async () => 0, 1000), 0, 'falsy values count');
});

test('times out naming what it waited for and how long', async () => {
  assert.is(await failure(until('the moon', () => undefined, { timeoutMs: 20, everyMs: 5 })), 'timed out after 20 ms waiting for the moon');
  let seen = 0;
  assert.is(await failure(until(() => `the moon (saw ${seen})`, () => void seen++, { timeoutMs: 20, everyMs: 5 })), `timed out after 20 ms waiting for the moon (saw ${seen})`, 'a function is read at the timeout');
});

test('a throwing probe fails at once unless errors are retried, then the last one is named', async () => {
  let calls = 0;
  assert.is(await failure(until('x', () => { calls++; throw new Error('boom'); }, 1000)), 'boom');
  assert.is(calls, 1);
  let n = 0;
  assert.is(await until('recovery', () => { if (++n < 3) throw new Error('not yet'); return n; }, { timeoutMs: 1000, everyMs: 1, retryErrors: true }), 3);
  assert.is(await failure(until('the server', () => { throw new Error('ECONNREFUSED'); }, { timeoutMs: 20, everyMs: 5, retryErrors: true })), 'timed out after 20 ms waiting for the server; last error: Error: ECONNREFUSED');
});

test('untilTrue waits for a yes', async () => {
  let n = 0;
  await untilTrue('the third try', async () => ++n === 3, { timeoutMs: 1000, everyMs: 1 });
  assert.is(n, 3);
  assert.is(await failure(untilTrue('never', () => false, { timeoutMs: 20, everyMs: 5 })), 'timed out after 20 ms waiting for never');
});

test('eventsSeen names how many events a wait saw and the last few, with their text', () => {
  assert.is(eventsSeen([]), '0 recorded');
  const events = [{ type: 'SessionOpened' }, { type: 'Command', text: 'SELECT 1' }, { type: 'Verdict' }];
  assert.is(eventsSeen(events, 2), '3 recorded; the last: Command "SELECT 1", Verdict');
});

test.run();

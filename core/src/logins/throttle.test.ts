import { test } from '../../../test/harness/suite.js';
import * as assert from 'uvu/assert';
import { LoginThrottle, sourceAddress } from './throttle.js';

const options = { maxFailures: 3, windowMs: 60_000, blockMs: 10_000, maxBlockMs: 40_000 };

test('the Nth failure within the window blocks the address; others stay open', () => {
  const t = new LoginThrottle(options);
  assert.is(t.failed('10.0.0.1', 0), false);
  assert.is(t.failed('10.0.0.1', 1000), false);
  assert.is(t.check('10.0.0.1', 1500).kind, 'open');
  assert.is(t.failed('10.0.0.1', 2000), true);
  const c = t.check('10.0.0.1', 3000);
  assert.is(c.kind, 'blocked');
  if (c.kind === 'blocked') assert.is(c.retryAfterMs, 9000);
  assert.is(t.check('10.0.0.2', 3000).kind, 'open');
  assert.is(t.check('10.0.0.1', 12_000).kind, 'open');
});

test('failures spread wider than the window never block', () => {
  const t = new LoginThrottle(options);
  for (let i = 0; i < 10; i++) assert.is(t.failed('a', i * 31_000), false);
});

test('only the first refusal of a block is to be recorded', () => {
  const t = new LoginThrottle(options);
  for (let i = 0; i < 3; i++) t.failed('a', i);
  const records = [10, 20, 30, 40].map((n) => t.check('a', n)).filter((c) => c.kind === 'blocked' && c.record);
  assert.is(records.length, 1);
});

test('each further block doubles, up to the maximum; a quiet spell resets it', () => {
  const t = new LoginThrottle(options);
  let now = 0;
  const block = () => {
    for (let i = 0; i < 3; i++) t.failed('a', now++);
    const c = t.check('a', now);
    return c.kind === 'blocked' ? c.blockMs : 0;
  };
  assert.is(block(), 10_000);
  now += 10_000;
  assert.is(block(), 20_000);
  now += 20_000;
  assert.is(block(), 40_000);
  now += 40_000;
  assert.is(block(), 40_000);
  now += 40_000 + 41_000;
  assert.is(block(), 10_000);
});

test('max_failures 0 turns throttling off', () => {
  const t = new LoginThrottle({ ...options, maxFailures: 0 });
  for (let i = 0; i < 100; i++) t.failed('a', i);
  assert.is(t.check('a', 100).kind, 'open');
  assert.is(t.size, 0);
});

test('sourceAddress writes IPv4-mapped addresses as IPv4', () => {
  assert.is(sourceAddress('::ffff:127.0.0.2'), '127.0.0.2');
  assert.is(sourceAddress('::1'), '::1');
  assert.is(sourceAddress(undefined), 'unknown');
});

test.run();

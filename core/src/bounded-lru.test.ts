import { suite } from '../../test/harness/suite.js';
import * as assert from 'uvu/assert';
import { BoundedLru } from './bounded-lru.js';

const lru = suite('BoundedLru');

lru('keeps at most its capacity, dropping the least recently used', () => {
  const m = new BoundedLru<string, number>(2);
  m.set('a', 1);
  m.set('b', 2);
  assert.is(m.get('a'), 1); // a is now the most recent
  m.set('c', 3);
  assert.is(m.size, 2);
  assert.is(m.get('b'), undefined);
  assert.is(m.get('a'), 1);
  assert.is(m.get('c'), 3);
});

lru('setting a key again replaces its value without growing', () => {
  const m = new BoundedLru<string, number>(2);
  m.set('a', 1);
  m.set('a', 2);
  assert.is(m.size, 1);
  assert.is(m.get('a'), 2);
});

lru('a capacity below one is refused', () => {
  assert.throws(() => new BoundedLru(0), /positive integer/);
});

lru.run();

import { suite } from '../../../test/harness/suite.js';
import * as assert from 'uvu/assert';
import { adjoins, joinAdjacent } from './byte-views.js';

const test = suite('byte views');

test('views side by side in one buffer join into one view of it, without a copy', () => {
  const chunk = Buffer.from('0123456789');
  const joined = joinAdjacent([chunk.subarray(0, 3), chunk.subarray(3, 7), chunk.subarray(7)]);
  assert.is(joined.length, 1);
  assert.is(joined[0]!.toString(), '0123456789');
  assert.ok(joined[0]!.buffer === chunk.buffer && joined[0]!.byteOffset === chunk.byteOffset, 'a view of the chunk, not a copy');
});

test('a gap, a view out of order or another buffer keeps the parts apart, in order', () => {
  const chunk = Buffer.from('0123456789');
  const other = Buffer.from('xy');
  const parts = [chunk.subarray(0, 2), chunk.subarray(3, 5), chunk.subarray(5, 6), other, chunk.subarray(6, 8), chunk.subarray(1, 2)];
  assert.equal(joinAdjacent(parts).map(String), ['01', '345', 'xy', '67', '1']);
  assert.not.ok(adjoins(chunk.subarray(0, 2), chunk.subarray(3, 5)));
  assert.not.ok(adjoins(chunk.subarray(3, 5), chunk.subarray(0, 3)));
  assert.equal(joinAdjacent([]), []);
});

test.run();

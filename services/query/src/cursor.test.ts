import { suite } from '../../../test/harness/suite.js';
import * as assert from 'uvu/assert';
import { errorCode } from '../../../test/harness/error-code.js';
import { decodeCursor, decodeTimeCursor, encodeCursor } from './cursor.js';

const test = suite('query/cursor');

test('a cursor round-trips; empty or absent is the first page', () => {
  assert.equal(decodeCursor(encodeCursor(['a', 3]), ['string', 'number']), ['a', 3]);
  assert.is(decodeCursor(null, ['number']), undefined);
  assert.is(decodeCursor('', ['number']), undefined);
});

test('a cursor of another shape, or not base64url JSON, is API_BAD_REQUEST', () => {
  assert.is(errorCode(() => decodeCursor(encodeCursor(['a']), ['number'])), 'API_BAD_REQUEST');
  assert.is(errorCode(() => decodeCursor('not a cursor!', ['number'])), 'API_BAD_REQUEST');
  assert.is(errorCode(() => decodeCursor(encodeCursor([-1]), ['number'])), 'API_BAD_REQUEST');
});

test('a time cursor: its time must be a store time before it is bound into a query', () => {
  assert.equal(decodeTimeCursor(encodeCursor(['2026-12-06 19:00:00.123456', 'id-1'])), { time: '2026-12-06 19:00:00.123456', id: 'id-1' });
  assert.is(decodeTimeCursor(null), undefined);
  assert.is(errorCode(() => decodeTimeCursor(encodeCursor(["2026-12-06' OR 1=1 --", 'x']))), 'API_BAD_REQUEST');
  assert.is(errorCode(() => decodeTimeCursor(encodeCursor([1, 'x']))), 'API_BAD_REQUEST');
});

test.run();

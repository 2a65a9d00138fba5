import { suite } from '../../../../test/harness/suite.js';
import * as assert from 'uvu/assert';
import { BufferReader } from './buffer-reader.js';

const code = (fn: () => unknown): string | undefined => {
  try { fn(); } catch (e) { return (e as { code?: string }).code; }
  return undefined;
};

const reads = suite('BufferReader reads');
reads('integers, strings and bytes in network order', () => {
  const buf = Buffer.from([0xff, 0xfe, 0xff, 0xff, 0xff, 0xff, 0x80, 0, 0, 1, 7, 0x61, 0x62, 0, 0x63, 0x64, 1, 2]);
  const r = new BufferReader(buf);
  assert.is(r.int16(), -2);
  assert.is(r.int32(), -1);
  assert.is(r.uint32(), 0x80000001);
  assert.is(r.byte(), 7);
  assert.is(r.cstring(), 'ab');
  assert.is(r.string(2), 'cd');
  assert.equal([...r.bytes(2)], [1, 2]);
  assert.is(r.remaining, 0);
});
reads('honours start and end bounds', () => {
  const r = new BufferReader(Buffer.from('xxab\0yy'), 2, 5);
  assert.is(r.cstring(), 'ab');
  assert.is(r.remaining, 0);
});
reads.run();

const bounds = suite('BufferReader bounds');
bounds('every short read is a ProtocolError, not a RangeError', () => {
  const one = () => new BufferReader(Buffer.from([1]));
  assert.is(code(() => one().int16()), 'PROTOCOL_VIOLATION');
  assert.is(code(() => one().int32()), 'PROTOCOL_VIOLATION');
  assert.is(code(() => one().uint32()), 'PROTOCOL_VIOLATION');
  assert.is(code(() => one().string(2)), 'PROTOCOL_VIOLATION');
  assert.is(code(() => one().bytes(2)), 'PROTOCOL_VIOLATION');
  assert.is(code(() => one().bytes(-1)), 'PROTOCOL_VIOLATION');
  assert.is(code(() => new BufferReader(Buffer.alloc(0)).byte()), 'PROTOCOL_VIOLATION');
});
bounds('a cstring whose NUL lies past the end bound is truncated', () => {
  assert.is(code(() => new BufferReader(Buffer.from('abc')).cstring()), 'PROTOCOL_VIOLATION');
  assert.is(code(() => new BufferReader(Buffer.from('abc\0'), 0, 3).cstring()), 'PROTOCOL_VIOLATION');
});
bounds.run();

import { suite } from '../../../test/harness/suite.js';
import * as assert from 'uvu/assert';
import { RowBinaryReader, RowBinaryWriter } from './row-binary.js';

const rb = suite('RowBinaryWriter / RowBinaryReader');

rb('values written are read back; lengths past 127 bytes take a multi-byte length', () => {
  const long = 'é'.repeat(200); // 400 UTF-8 bytes
  const w = new RowBinaryWriter(4); // forces growth
  w.string('').string(long).uint64(2 ** 40 + 3).int64(-5).bytes(Buffer.from([0, 9, 10, 13, 92])).fixed(Buffer.alloc(32, 7));
  const bytes = w.finish();
  assert.equal([...bytes.subarray(1, 3)], [0x90, 0x03], '400 as LEB128');
  const r = new RowBinaryReader(bytes);
  assert.is(r.string(), '');
  assert.is(r.string(), long);
  assert.is(r.uint64(), 2 ** 40 + 3);
  assert.is(r.int64(), -5);
  assert.is(r.string(), '\u0000\t\n\r\\');
  assert.ok(!r.done);
});

rb('strings around the one-byte length limit, in 1- to 4-byte UTF-8, read back whole', () => {
  const values = ['', 'a'.repeat(42), 'a'.repeat(43), '€'.repeat(42), '€'.repeat(43), '😀'.repeat(21), '😀'.repeat(22), 'é'.repeat(63), 'é'.repeat(64), 'x'.repeat(127), 'x'.repeat(128)];
  const w = new RowBinaryWriter(8);
  for (const v of values) w.string(v);
  const r = new RowBinaryReader(w.finish());
  for (const v of values) assert.is(r.string(), v);
  assert.ok(r.done);
  // '€' x 42 is 126 bytes (one-byte length); '€' x 43 is 129 bytes (two).
  const one = new RowBinaryWriter().string('€'.repeat(42)).finish();
  assert.is(one[0], 126);
  assert.equal([...new RowBinaryWriter().string('€'.repeat(43)).finish().subarray(0, 2)], [0x81, 0x01]);
});

rb('arrays and maps: an element count (LEB128) before the elements; Bool as one byte', () => {
  const many = Array.from({ length: 130 }, (_, i) => `t${i}`);
  const w = new RowBinaryWriter(2).strings([]).strings(['read', 'write']).strings(many).uint8(1).uint8(0).count(1).string('request').string('exec');
  const bytes = w.finish();
  const r = new RowBinaryReader(bytes);
  assert.is(r.varint(), 0);
  assert.is(r.varint(), 2);
  assert.equal([r.string(), r.string()], ['read', 'write']);
  assert.equal([...bytes.subarray(13, 15)], [0x82, 0x01], '130 as LEB128');
  assert.is(r.varint(), 130);
  assert.equal(many.map(() => r.string()), many);
  assert.equal([...r.fixed(2)], [1, 0]);
  assert.is(r.varint(), 1);
  assert.equal([r.string(), r.string()], ['request', 'exec']);
  assert.ok(r.done);
});

rb('a truncated result is a typed store error, not a RangeError', () => {
  const bytes = new RowBinaryWriter().string('abcdef').finish();
  try {
    new RowBinaryReader(bytes.subarray(0, 4)).string();
    assert.unreachable();
  } catch (err) {
    assert.is((err as { code: string }).code, 'STORE_FAILED');
  }
});

rb('a string written in parts (openString, text, raw, closeString) is the string written whole, whatever its length\'s LEB128 width', () => {
  for (const n of [0, 1, 127, 128, 16_383, 16_384, 2_097_151, 2_097_152]) {
    const value = `${'é€😀x'.slice(0, n % 4)}${'y'.repeat(Math.max(0, n - 4))}`;
    const whole = new RowBinaryWriter(4).uint8(1).string(value).uint8(2).finish();
    const parts = new RowBinaryWriter(4).uint8(1);
    const start = parts.openString();
    for (let at = 0; at < value.length; at += 1000) parts.text(value.slice(at, at + 1000));
    parts.raw(Buffer.alloc(0)).closeString(start).uint8(2);
    assert.ok(Buffer.from(parts.finish()).equals(Buffer.from(whole)), `a string of ${Buffer.byteLength(value)} bytes`);
  }
});

rb.run();

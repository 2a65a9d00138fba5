import { suite } from 'uvu';
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

rb('a truncated result is a typed store error, not a RangeError', () => {
  const bytes = new RowBinaryWriter().string('abcdef').finish();
  try {
    new RowBinaryReader(bytes.subarray(0, 4)).string();
    assert.unreachable();
  } catch (err) {
    assert.is((err as { code: string }).code, 'STORE_FAILED');
  }
});

rb.run();

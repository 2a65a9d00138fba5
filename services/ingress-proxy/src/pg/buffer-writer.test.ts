import { suite } from '../../../../test/harness/suite.js';
import * as assert from 'uvu/assert';
import { BufferWriter } from './buffer-writer.js';

const flush = suite('BufferWriter.flush');
flush('frames a typed message: type byte, then length counting itself and the body', () => {
  const out = new BufferWriter().addCString('hi').flush(0x51);
  assert.equal([...out], [0x51, 0, 0, 0, 7, 0x68, 0x69, 0]);
});
flush('frames an untyped packet without a type byte', () => {
  const out = new BufferWriter().addInt16(3).addInt16(0).flush();
  assert.equal([...out], [0, 0, 0, 8, 0, 3, 0, 0]);
});
flush('an empty body still gets a header, and the writer is reusable', () => {
  const w = new BufferWriter(1);
  const first = w.flush(0x53);
  const second = w.addByte(0x49).flush(0x5a);
  assert.equal([...first], [0x53, 0, 0, 0, 4]);
  assert.equal([...second], [0x5a, 0, 0, 0, 5, 0x49]);
});
flush.run();

const adds = suite('BufferWriter add*');
adds('integers accept signed and unsigned values; growth preserves content', () => {
  const w = new BufferWriter(8);
  w.addInt32(-1).addInt32(0xfffffffe).addInt16(-2).addByte(0x1ff);
  const big = Buffer.alloc(1000, 7);
  w.addBytes(big).addString('é');
  const out = w.flush();
  assert.is(out.readInt32BE(0), out.length);
  assert.is(out.readInt32BE(4), -1);
  assert.is(out.readUInt32BE(8), 0xfffffffe);
  assert.is(out.readInt16BE(12), -2);
  assert.is(out[14], 0xff);
  assert.ok(out.subarray(15, 1015).equals(big));
  assert.is(out.subarray(1015).toString(), 'é');
});
adds('a cstring with an embedded NUL is refused', () => {
  try { new BufferWriter().addCString('a\0b'); assert.unreachable(); } catch (e) {
    assert.is((e as { code: string }).code, 'PROTOCOL_VIOLATION');
  }
});
adds.run();

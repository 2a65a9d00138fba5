import { suite } from '../../../test/harness/suite.js';
import * as assert from 'uvu/assert';
import { crc32c } from './crc32c.js';

const test = suite('crc32c');

// RFC 3720 appendix B.4, "CRC Examples": four 32-byte buffers and an iSCSI read command PDU.
test('the RFC 3720 B.4 vectors', () => {
  assert.is(crc32c(Buffer.alloc(32, 0x00)), 0x8a9136aa);
  assert.is(crc32c(Buffer.alloc(32, 0xff)), 0x62a8ab43);
  assert.is(crc32c(Buffer.from(Array.from({ length: 32 }, (_, i) => i))), 0x46dd794e);
  assert.is(crc32c(Buffer.from(Array.from({ length: 32 }, (_, i) => 31 - i))), 0x113fdb5c);
  // "An iSCSI - SCSI Read (10) Command PDU", four bytes a row as the RFC draws it.
  const pdu = Buffer.from([
    0x01, 0xc0, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00,
    0x14, 0x00, 0x00, 0x00, 0x00, 0x00, 0x04, 0x00, 0x00, 0x00, 0x00, 0x14, 0x00, 0x00, 0x00, 0x18,
    0x28, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x02, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00,
  ]);
  assert.is(crc32c(pdu), 0xd9963a56);
});

test('the usual check value, and every length around the eight-byte steps', () => {
  assert.is(crc32c(Buffer.from('123456789')), 0xe3069283);
  assert.is(crc32c(Buffer.alloc(0)), 0);
  // Bit by bit, the definition itself, against the table-driven one.
  const slow = (b: Uint8Array) => {
    let c = 0xffffffff;
    for (const x of b) {
      c ^= x;
      for (let k = 0; k < 8; k++) c = c & 1 ? (c >>> 1) ^ 0x82f63b78 : c >>> 1;
    }
    return ~c >>> 0;
  };
  const data = Buffer.from(Array.from({ length: 40 }, (_, i) => (i * 37 + 11) & 0xff));
  for (let n = 0; n <= data.length; n++) assert.is(crc32c(data.subarray(0, n)), slow(data.subarray(0, n)), `length ${n}`);
});

test('continues across pieces as over the whole', () => {
  const a = Buffer.from('hello, ');
  const b = Buffer.from('world');
  assert.is(crc32c(b, crc32c(a)), crc32c(Buffer.concat([a, b])));
});

test.run();

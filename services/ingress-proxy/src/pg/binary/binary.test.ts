import { suite } from '../../../../../test/harness/suite.js';
import * as assert from 'uvu/assert';
import { valueText } from '../value-text.js';

// Byte vectors written from PostgreSQL's send functions (numeric_send, array_send, date_send,
// timestamp_send, interval_send, float4send, …), decoded as the server's text output prints them.
const i16 = (...n: number[]) => Buffer.concat(n.map((v) => { const b = Buffer.alloc(2); b.writeUInt16BE(v & 0xffff); return b; }));
const i32 = (...n: number[]) => Buffer.concat(n.map((v) => { const b = Buffer.alloc(4); b.writeInt32BE(v); return b; }));
const i64 = (v: bigint) => { const b = Buffer.alloc(8); b.writeBigInt64BE(v); return b; };
const bin = (oid: number, b: Buffer) => valueText(b, 1, oid);

const numeric = suite('numeric (binary)');
// ndigits | weight | sign | dscale | digits (base 10000)
numeric('integers, fractions, negatives, scale padding and the specials', () => {
  assert.is(bin(1700, i16(0, 0, 0, 0)), '0');
  assert.is(bin(1700, i16(0, 0, 0, 2)), '0.00');
  assert.is(bin(1700, i16(2, 0, 0, 2, 123, 4500)), '123.45'); // 123.45 → [0123][.4500]
  assert.is(bin(1700, i16(2, 1, 0x4000, 0, 1, 0)), '-10000');
  assert.is(bin(1700, i16(1, -1, 0, 4, 5)), '0.0005');
  assert.is(bin(1700, i16(1, -2, 0x4000, 8, 1234)), '-0.00001234');
  assert.is(bin(1700, i16(3, 2, 0, 3, 1, 2345, 6789)), '123456789.000');
  assert.is(bin(1700, i16(1, 1, 0, 0, 12)), '120000'); // trailing zero groups are not sent
  assert.is(bin(1700, i16(0, 0, 0xc000, 0)), 'NaN');
  assert.is(bin(1700, i16(0, 0, 0xd000, 0)), 'Infinity');
  assert.is(bin(1700, i16(0, 0, 0xf000, 0)), '-Infinity');
});
numeric('malformed bytes are shown as hex, never guessed', () => {
  assert.is(bin(1700, i16(2, 0, 0, 0, 1)), '\\x0002000000000000' + '0001'); // says 2 digits, has 1
  assert.is(bin(1700, i16(1, 0, 0, 0, 10000)), '\\x00010000000000002710'); // a digit past 9999
  assert.is(bin(1700, i16(1, 0, 0x1234, 0, 1)), '\\x00010000123400000001'); // no such sign
});
numeric.run();

const arrays = suite('arrays (binary)');
// ndim | has-nulls | element oid | (length, lower bound) per dim | (Int32 len, bytes) per element
arrays('one and two dimensions, NULLs, quoting, lower bounds, empty', () => {
  assert.is(bin(1007, Buffer.concat([i32(1, 0, 23, 3, 1), i32(4, 1), i32(4, 2), i32(4, -3)])), '{1,2,-3}');
  const text = (s: string) => Buffer.concat([i32(Buffer.byteLength(s)), Buffer.from(s)]);
  assert.is(bin(1009, Buffer.concat([i32(1, 1, 25, 5, 1), text('a'), i32(-1), text('b c'), text('say "hi"\\'), text('')])), '{a,NULL,"b c","say \\"hi\\"\\\\",""}');
  assert.is(bin(1009, Buffer.concat([i32(1, 0, 25, 1, 1), text('null')])), '{"null"}');
  assert.is(bin(1007, Buffer.concat([i32(2, 0, 23, 2, 1, 2, 1), i32(4, 1), i32(4, 2), i32(4, 3), i32(4, 4)])), '{{1,2},{3,4}}');
  assert.is(bin(1007, Buffer.concat([i32(1, 0, 23, 2, 0), i32(4, 7), i32(4, 8)])), '[0:1]={7,8}');
  assert.is(bin(1007, i32(0, 0, 23)), '{}');
  const num = Buffer.concat([i32(1, 0, 1700, 1, 1), i32(12), i16(2, 0, 0, 2, 3, 1400)]);
  assert.is(bin(1231, num), '{3.14}');
  const bytea = Buffer.concat([i32(1, 0, 17, 1, 1), i32(2), Buffer.from([0xca, 0xfe])]);
  assert.is(bin(1001, bytea), '{"\\\\xcafe"}');
});
arrays('an element count the bytes cannot hold, or bytes left over, is hex', () => {
  assert.match(bin(1007, i32(1, 0, 23, 1_000_000_000, 1)), /^\\x/);
  assert.match(bin(1007, Buffer.concat([i32(1, 0, 23, 1, 1), i32(4, 1), i32(9)])), /^\\x/);
  assert.match(bin(1007, Buffer.concat([i32(7, 0, 23), i32(1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1)])), /^\\x/); // past MAXDIM
});
arrays.run();

const times = suite('dates and times (binary)');
times('date, timestamp, timestamptz with trimmed fractions, BC and infinities', () => {
  assert.is(bin(1082, i32(0)), '2000-01-01');
  assert.is(bin(1082, i32(-1)), '1999-12-31');
  assert.is(bin(1082, i32(-730_119)), '0001-01-01');
  assert.is(bin(1082, i32(-730_120)), '0001-12-31 BC');
  assert.is(bin(1082, i32(0x7fffffff)), 'infinity');
  assert.is(bin(1082, i32(-0x80000000)), '-infinity');
  assert.is(bin(1114, i64(0n)), '2000-01-01 00:00:00');
  assert.is(bin(1114, i64(86_400_000_000n + 3_723_500_000n)), '2000-01-02 01:02:03.5');
  assert.is(bin(1114, i64(-1n)), '1999-12-31 23:59:59.999999');
  assert.is(bin(1184, i64(123_456n)), '2000-01-01 00:00:00.123456+00');
  assert.is(bin(1114, i64(0x7fffffffffffffffn)), 'infinity');
  assert.is(bin(1184, i64(-0x8000000000000000n)), '-infinity');
});
times('time, timetz and interval as IntervalStyle postgres prints them', () => {
  assert.is(bin(1083, i64(45_296_000_001n)), '12:34:56.000001');
  assert.is(bin(1266, Buffer.concat([i64(45_296_000_000n), i32(-19_800)])), '12:34:56+05:30');
  assert.is(bin(1266, Buffer.concat([i64(0n), i32(3_600)])), '00:00:00-01');
  const interval = (us: bigint, days: number, months: number) => bin(1186, Buffer.concat([i64(us), i32(days, months)]));
  assert.is(interval(0n, 0, 0), '00:00:00');
  assert.is(interval(14_706_500_000n, 3, 14), '1 year 2 mons 3 days 04:05:06.5');
  assert.is(interval(0n, 1, 12), '1 year 1 day');
  assert.is(interval(-3_600_000_000n, 0, 0), '-01:00:00');
  assert.is(interval(7_200_000_000n, -1, 0), '-1 days +02:00:00');
  assert.is(interval(0n, 0, -13), '-1 years -1 mons');
  assert.is(interval(360_000_000_000n, 0, 0), '100:00:00');
});
times.run();

const scalars = suite('other scalars (binary)');
scalars('floats print their shortest digits as the server does', () => {
  const f4 = (x: number) => { const b = Buffer.alloc(4); b.writeFloatBE(x); return bin(700, b); };
  const f8 = (x: number) => { const b = Buffer.alloc(8); b.writeDoubleBE(x); return bin(701, b); };
  assert.is(f4(0.1), '0.1');
  assert.is(f4(1.5), '1.5');
  assert.is(f4(123456), '123456');
  assert.is(f4(1234567), '1.234567e+06');
  assert.is(f8(0.1), '0.1');
  assert.is(f8(1e15), '1e+15');
  assert.is(f8(123456789012345), '123456789012345');
  assert.is(f8(0.0001), '0.0001');
  assert.is(f8(0.00001), '1e-05');
  assert.is(f8(-2.5e-300), '-2.5e-300');
  assert.is(f8(NaN), 'NaN');
  assert.is(f8(-Infinity), '-Infinity');
});
scalars('ints, bool, text, bytea, uuid, json and jsonb', () => {
  assert.is(bin(21, i16(-7)), '-7');
  assert.is(bin(23, i32(2147483647)), '2147483647');
  assert.is(bin(20, i64(-9223372036854775808n)), '-9223372036854775808');
  assert.is(bin(16, Buffer.from([0])), 'f');
  assert.is(bin(25, Buffer.from('naïve')), 'naïve');
  assert.is(bin(17, Buffer.from([0, 255])), '\\x00ff');
  assert.is(bin(2950, Buffer.from('11111111222233334444555555555555', 'hex')), '11111111-2222-3333-4444-555555555555');
  assert.is(bin(114, Buffer.from('{"a": 1}')), '{"a": 1}');
  assert.is(bin(3802, Buffer.concat([Buffer.from([1]), Buffer.from('{"a": 1}')])), '{"a": 1}');
  assert.is(bin(3802, Buffer.concat([Buffer.from([2]), Buffer.from('{}')])), '\\x027b7d'); // an unknown jsonb version
});
scalars.run();

import { arrayText } from './binary/array.js';
import { dateText, intervalText, timestampText, timetzText, timeText } from './binary/datetime.js';
import { float4Text, float8Text } from './binary/float.js';
import { numericText } from './binary/numeric.js';
import type { Masker } from '../masking/masker.js';

/**
 * Renders a bound parameter or result value as text for the audit trail, by type OID and format
 * code: text-format values are already the server's text; binary ones are decoded for every
 * built-in scalar type and arrays of them into that same text, so a record reads the same
 * whichever format the client asked for, and shown as `\x…` hex otherwise (the way PostgreSQL
 * prints bytea), as is a value whose bytes do not fit its type.
 */
export function valueText(value: Buffer, format: number, typeOid: number): string {
  if (format === 0) return value.toString('utf8');
  const decode = BINARY[typeOid];
  if (decode !== undefined) {
    try {
      const text = decode(value);
      if (text !== undefined) return text;
    } catch {
      // A wrong-sized value: fall through to hex, which is always faithful.
    }
  }
  return '\\x' + value.toString('hex');
}

/**
 * Whether a value recorded as `\x…` hex (a bytea, or the binary bytes of a type Agate does not
 * decode, such as a parameter whose type Parse left to the server) holds, read as UTF-8, text
 * the audit mask's detectors find: hex hides it from them, so the caller records it masked whole.
 */
export function hidesSecret(recorded: string, audit: Masker): boolean {
  const hex = /^\\x((?:[0-9a-fA-F]{2})+)$/.exec(recorded);
  return hex !== null && audit.maskText(Buffer.from(hex[1]!, 'hex').toString('utf8')).count > 0;
}

const text = (b: Buffer) => b.toString('utf8');
const sized = <T>(n: number, f: (b: Buffer) => T) => (b: Buffer): T | undefined => (b.length === n ? f(b) : undefined);
const array = (b: Buffer) => arrayText(b, (value, oid) => valueText(value, 1, oid));

type Decoder = (b: Buffer) => string | undefined;

/** Binary decoders by type OID (pg_type.dat), each printing what the server's text output would. */
const SCALARS: Record<number, Decoder> = {
  16: sized(1, (b) => (b[0] ? 't' : 'f')), // bool
  17: (b) => '\\x' + b.toString('hex'), // bytea
  18: sized(1, (b) => String.fromCharCode(b[0]!)), // "char"
  19: text, // name
  20: sized(8, (b) => b.readBigInt64BE().toString()), // int8
  21: sized(2, (b) => String(b.readInt16BE())), // int2
  23: sized(4, (b) => String(b.readInt32BE())), // int4
  25: text, // text
  26: sized(4, (b) => String(b.readUInt32BE())), // oid
  114: text, // json
  142: text, // xml
  700: float4Text, // float4
  701: float8Text, // float8
  705: text, // unknown
  1042: text, // bpchar
  1043: text, // varchar
  1082: dateText, // date
  1083: timeText, // time
  1114: (b) => timestampText(b, ''), // timestamp
  1184: (b) => timestampText(b, '+00'), // timestamptz, in UTC (the session's TimeZone is the client's business)
  1186: intervalText, // interval
  1266: timetzText, // timetz
  1700: numericText, // numeric
  2950: sized(16, (b) => b.toString('hex').replace(/^(.{8})(.{4})(.{4})(.{4})/, '$1-$2-$3-$4-')), // uuid
  3802: (b) => (b[0] === 1 ? b.toString('utf8', 1) : undefined), // jsonb, version 1
};
// The array types of the above: _bool, _bytea, _char, _name, _int2, _int4, _text, _bpchar,
// _varchar, _int8, _float4, _float8, _oid, _timestamp, _date, _time, _timestamptz, _interval,
// _numeric, _timetz, _uuid, _json, _xml, _jsonb.
const ARRAYS = [1000, 1001, 1002, 1003, 1005, 1007, 1009, 1014, 1015, 1016, 1021, 1022, 1028, 1115, 1182, 1183, 1185, 1187, 1231, 1270, 2951, 199, 143, 3807];
const BINARY: Readonly<Record<number, Decoder>> = { ...SCALARS, ...Object.fromEntries(ARRAYS.map((oid) => [oid, array])) };

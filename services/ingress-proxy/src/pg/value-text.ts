/**
 * Renders a bound parameter or result value as text for the audit trail, by type OID and format
 * code: text-format values are already text; binary ones are decoded for the common types and
 * shown as `\x…` hex otherwise (the way PostgreSQL prints bytea).
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

const PG_EPOCH_MS = Date.UTC(2000, 0, 1);
const text = (b: Buffer) => b.toString('utf8');
const sized = <T>(n: number, f: (b: Buffer) => T) => (b: Buffer): T | undefined => (b.length === n ? f(b) : undefined);

const BINARY: Record<number, (b: Buffer) => string | undefined> = {
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
  700: sized(4, (b) => String(b.readFloatBE())), // float4
  701: sized(8, (b) => String(b.readDoubleBE())), // float8
  705: text, // unknown
  1042: text, // bpchar
  1043: text, // varchar
  1082: sized(4, (b) => new Date(PG_EPOCH_MS + b.readInt32BE() * 86_400_000).toISOString().slice(0, 10)), // date
  1114: sized(8, (b) => timestamp(b).replace('T', ' ').replace('Z', '')), // timestamp
  1184: sized(8, (b) => timestamp(b).replace('T', ' ').replace('Z', '+00')), // timestamptz
  2950: sized(16, (b) => b.toString('hex').replace(/^(.{8})(.{4})(.{4})(.{4})/, '$1-$2-$3-$4-')), // uuid
  3802: (b) => (b[0] === 1 ? b.toString('utf8', 1) : undefined), // jsonb, version 1
};

/** Microseconds since 2000-01-01 as ISO text, keeping the microseconds Date would drop. */
function timestamp(b: Buffer): string {
  const us = b.readBigInt64BE();
  const ms = Number(us / 1000n);
  const micros = Number(((us % 1_000_000n) + 1_000_000n) % 1_000_000n);
  const iso = new Date(PG_EPOCH_MS + ms).toISOString();
  return `${iso.slice(0, 19)}.${String(micros).padStart(6, '0')}Z`;
}

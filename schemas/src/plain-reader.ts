import type avro from 'avsc';
import type { IdentityMemo } from './identity-memo.js';

/*
 * Avro binary decoding straight into plain objects, for the schemas the running code writes.
 * avsc reads a record into an instance of a generated class, which the codec then had to copy
 * into plain data (structuredClone) and copy again to put `type` in front: three object graphs
 * per event, and the larger part of a consumer's decode time (the ledger's most of all). This
 * reads each record once into an object literal of a fixed shape, `type` first. Bytes written
 * with an older schema still go through avsc's resolver (codec.ts): they are rare.
 */

/** Where a read stands in the bytes of one event body. */
export interface Cursor {
  buf: Buffer;
  pos: number;
}

export type Read = (c: Cursor) => unknown;

/** Raised for bytes that are not a value of the schema; the codec wraps it (EVENT_ENCODING). */
export class AvroReadError extends Error {}

/** Avro's zig-zag varint `long` (and `int`), refused past 2^53 as avsc does: no silent precision loss. */
function readLong(c: Cursor): number {
  const buf = c.buf;
  let b = buf[c.pos++]!;
  // The common case: small numbers (lengths, counts, indexes) in one byte.
  if (b < 0x80) return (b >>> 1) ^ -(b & 1);
  // Zig-zag: the first bit is the sign, the rest the magnitude (minus one when negative); the
  // magnitude is summed without that bit, so it stays exact up to 2^53.
  const negative = (b & 1) === 1;
  let n = (b & 0x7f) >>> 1;
  let scale = 0x40;
  for (;;) {
    if (c.pos >= buf.length) throw new AvroReadError('truncated varint');
    b = buf[c.pos++]!;
    n += (b & 0x7f) * scale;
    if (b < 0x80) break;
    scale *= 0x80;
    if (scale > 2 ** 62) throw new AvroReadError('varint longer than 10 bytes');
  }
  if (n > Number.MAX_SAFE_INTEGER || (negative && n >= Number.MAX_SAFE_INTEGER)) throw new AvroReadError('potential precision loss');
  return negative ? -n - 1 : n;
}

function readString(c: Cursor): string {
  const length = readLong(c);
  const end = c.pos + length;
  if (length < 0 || end > c.buf.length) throw new AvroReadError('truncated string');
  const s = c.buf.toString('utf8', c.pos, end);
  c.pos = end;
  return s;
}

function readBoolean(c: Cursor): boolean {
  if (c.pos >= c.buf.length) throw new AvroReadError('truncated boolean');
  return c.buf[c.pos++] !== 0;
}

function readDouble(c: Cursor): number {
  if (c.pos + 8 > c.buf.length) throw new AvroReadError('truncated double');
  const v = c.buf.readDoubleLE(c.pos);
  c.pos += 8;
  return v;
}

function readFloat(c: Cursor): number {
  if (c.pos + 4 > c.buf.length) throw new AvroReadError('truncated float');
  const v = c.buf.readFloatLE(c.pos);
  c.pos += 4;
  return v;
}

/**
 * Items of an array or entries of a map, in Avro's blocks: a count (negative: followed by the
 * block's size), 0 ends. `width`: the fewest bytes one item takes; a count the bytes left cannot
 * hold is refused before anything is read (a corrupt count must not allocate millions of items).
 */
function readBlocks(c: Cursor, width: number, item: (c: Cursor) => void): void {
  for (;;) {
    let n = readLong(c);
    if (n === 0) return;
    if (n < 0) {
      n = -n;
      readLong(c); // the block's size in bytes, for skipping
    }
    if (n * width > c.buf.length - c.pos) throw new AvroReadError(`a block of ${n} items in ${c.buf.length - c.pos} bytes`);
    for (let i = 0; i < n; i++) item(c);
  }
}

/** The fewest bytes a value of the type takes (null: none; a record: its fields'). */
function minWidth(type: avro.Type): number {
  switch (type.typeName) {
    case 'null': return 0;
    case 'float': return 4;
    case 'double': return 8;
    case 'record':
    case 'error': return (type as avro.types.RecordType).fields.reduce((sum, f) => sum + minWidth(f.type), 0);
    default: return 1;
  }
}

/**
 * A plain-object reader for an avsc type: what `type.fromBuffer` then structuredClone gave, in one pass.
 * `identities`: an event's `identity` is taken from it by the event's `session_id` (identity-memo.ts).
 */
export function plainReader(type: avro.Type, tag?: string, identities?: IdentityMemo): (bytes: Buffer) => unknown {
  const read = compile(type, tag, identities);
  return (buf) => {
    const c: Cursor = { buf, pos: 0 };
    const value = read(c);
    if (c.pos > buf.length) throw new AvroReadError('truncated buffer');
    if (c.pos < buf.length) throw new AvroReadError('trailing data');
    return value;
  };
}

/** `tag`: the value of a `type` field put first in a top-level record (the event type). */
function compile(type: avro.Type, tag?: string, identities?: IdentityMemo): Read {
  const name = type.typeName;
  switch (name) {
    case 'null': return () => null;
    case 'boolean': return readBoolean;
    case 'int':
    case 'long': return readLong;
    case 'float': return readFloat;
    case 'double': return readDouble;
    case 'string': return readString;
    case 'enum': {
      const symbols = (type as avro.types.EnumType).symbols;
      return (c) => {
        const i = readLong(c);
        const s = symbols[i];
        if (s === undefined) throw new AvroReadError(`enum index ${i} out of range`);
        return s;
      };
    }
    case 'array': {
      const items = (type as avro.types.ArrayType).itemsType;
      const item = compile(items);
      // Items that take no bytes (null) are bounded by a million instead.
      const width = minWidth(items) || 1e-6;
      return (c) => {
        const out: unknown[] = [];
        readBlocks(c, width, (c) => void out.push(item(c)));
        return out;
      };
    }
    case 'map': {
      const value = compile((type as avro.types.MapType).valuesType);
      return (c) => {
        const out: Record<string, unknown> = {};
        // defineProperty: a key such as `__proto__` (a token claim) stays an own entry.
        readBlocks(c, 1, (c) => void Object.defineProperty(out, readString(c), { value: value(c), enumerable: true, writable: true, configurable: true }));
        return out;
      };
    }
    case 'union:unwrapped':
    case 'union:wrapped': {
      const branches = (type as unknown as { types: avro.Type[] }).types;
      const reads = branches.map((b) => compile(b));
      const wrapped = name === 'union:wrapped';
      return (c) => {
        const i = readLong(c);
        const read = reads[i];
        if (read === undefined) throw new AvroReadError(`union branch ${i} out of range`);
        const v = read(c);
        // avsc's wrapped unions hold a non-null value under its branch's name.
        return wrapped && v !== null ? { [branches[i]!.branchName!]: v } : v;
      };
    }
    case 'record':
    case 'error': {
      const fields = (type as avro.types.RecordType).fields;
      const reads: ((c: Cursor, session?: unknown) => unknown)[] = fields.map((f) => compile(f.type));
      const session = fields.findIndex((f) => f.name === 'session_id');
      const identity = fields.findIndex((f) => f.name === 'identity');
      // Fields are read in order: the session id comes before the identity in every schema that has both.
      const memo = identities !== undefined && tag !== undefined && session >= 0 && session < identity && fields[identity]!.type.typeName === 'record';
      if (memo) {
        const read = reads[identity]!;
        reads[identity] = (c, id) => identities.read(c, id, read);
      }
      // An object literal of one fixed shape per record type, in schema order (a generated
      // function: V8 then gives every value of the type one hidden class). Avro names are
      // identifiers, quoted all the same.
      const props = fields.map((f, i) => `${JSON.stringify(f.name)}: ${memo && i === identity ? `r[${i}](c, s)` : `${memo && i === session ? 's = ' : ''}r[${i}](c)`}`);
      if (tag !== undefined) props.unshift(`"type": ${JSON.stringify(tag)}`);
      return new Function('r', `return function (c) { let s; return { ${props.join(', ')} }; };`)(reads) as Read;
    }
    default:
      // fixed, bytes and logical types with their own JS form: no current schema has them.
      throw new Error(`plainReader: Avro type ${name} is not supported`);
  }
}

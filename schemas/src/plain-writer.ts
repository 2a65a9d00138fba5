import type avro from 'avsc';

/*
 * Avro binary encoding of plain objects, one writer compiled per schema: plain-reader.ts's
 * counterpart. avsc writes a record through its field types' shared `_write` methods, which
 * look enum symbols, union branches and map entries up by key in objects shared by every event
 * type (the megamorphic keyed loads of `agate start`'s profile), and writes every string through
 * one generic `Tap.writeString`. Here each field gets a closure of its own type, enum symbols and
 * union branches are decided by comparisons, and a record is one generated function of its
 * fields. The bytes are avsc's exactly, and whatever avsc refuses is refused (an error, never
 * bytes): plain-writer.test.ts compares the two on random events of every type.
 */

/** Where a write stands: the buffer grows (copied, doubled) when a value does not fit. */
export interface Sink {
  buf: Buffer;
  pos: number;
}

export type Write = (s: Sink, v: unknown) => void;

/** Raised for a value that is not of the schema; the codec wraps it (EVENT_ENCODING). */
export class AvroWriteError extends Error {}

/** avsc's bound for a long: no silent precision loss on the way back. */
const MAX_LONG = 9007199254740990;

function ensure(s: Sink, n: number): void {
  if (s.pos + n <= s.buf.length) return;
  const grown = Buffer.allocUnsafe(Math.max(s.buf.length * 2, s.pos + n));
  s.buf.copy(grown, 0, 0, s.pos);
  s.buf = grown;
}

/** Avro's zig-zag varint; `n` an integer within ±MAX_LONG (checked by the caller). */
function putLong(s: Sink, n: number): void {
  ensure(s, 10);
  const buf = s.buf;
  let pos = s.pos;
  if (n >= -0x40000000 && n < 0x40000000) {
    // Zig-zag in 32-bit integers: the sign to the lowest bit.
    let z = n >= 0 ? n << 1 : (~n << 1) | 1;
    while (z > 0x7f) {
      buf[pos++] = (z & 0x7f) | 0x80;
      z >>>= 7;
    }
    buf[pos++] = z;
  } else {
    // Past 30 bits, in doubles: exact, since the magnitude stays below 2^54.
    let z = n >= 0 ? n * 2 : -n * 2 - 1;
    while (z >= 0x80) {
      buf[pos++] = (z % 0x80) | 0x80;
      z = Math.floor(z / 0x80);
    }
    buf[pos++] = z;
  }
  s.pos = pos;
}

function writeLong(s: Sink, v: unknown): void {
  if (typeof v !== 'number' || v % 1 !== 0 || !(v >= -MAX_LONG && v <= MAX_LONG)) throw new AvroWriteError(`not a long: ${String(v)}`);
  putLong(s, v);
}

function writeInt(s: Sink, v: unknown): void {
  if (v !== ((v as number) | 0)) throw new AvroWriteError(`not an int: ${String(v)}`);
  putLong(s, v as number);
}

function writeBoolean(s: Sink, v: unknown): void {
  if (typeof v !== 'boolean') throw new AvroWriteError(`not a boolean: ${String(v)}`);
  ensure(s, 1);
  s.buf[s.pos++] = v ? 1 : 0;
}

function writeNull(_s: Sink, v: unknown): void {
  if (v !== null) throw new AvroWriteError(`not null: ${String(v)}`);
}

function writeString(s: Sink, v: unknown): void {
  if (typeof v !== 'string') throw new AvroWriteError(`not a string: ${String(v)}`);
  putString(s, v);
}

/**
 * A string's length then its UTF-8 bytes. Most are short ASCII (ids, names, tags): written a
 * character at a time behind a one-byte length, redone the long way at the first other one.
 */
function putString(s: Sink, v: string): void {
  const n = v.length;
  if (n < 64) {
    ensure(s, n + 1);
    const buf = s.buf;
    const start = s.pos;
    let i = 0;
    for (; i < n; i++) {
      const c = v.charCodeAt(i);
      if (c >= 0x80) break;
      buf[start + 1 + i] = c;
    }
    if (i === n) {
      buf[start] = n << 1;
      s.pos = start + 1 + n;
      return;
    }
  }
  const len = Buffer.byteLength(v);
  putLong(s, len);
  ensure(s, len);
  // As avsc writes them: up to 64 bytes by hand (a lone surrogate as its own three bytes), longer through the encoder.
  if (len > 64) s.buf.write(v, s.pos, len, 'utf8');
  else putUtf8(s.buf, s.pos, v, len);
  s.pos += len;
}

/** UTF-8 by hand, `len` bytes at most; a surrogate without its pair takes three bytes of its own. */
function putUtf8(buf: Buffer, pos: number, v: string, len: number): void {
  const end = pos + len;
  for (let i = 0; i < v.length && pos < end; i++) {
    let c = v.charCodeAt(i);
    if (c < 0x80) {
      buf[pos++] = c;
    } else if (c < 0x800) {
      buf[pos++] = (c >> 6) | 0xc0;
      buf[pos++] = (c & 0x3f) | 0x80;
    } else if ((c & 0xfc00) === 0xd800 && (v.charCodeAt(i + 1) & 0xfc00) === 0xdc00) {
      c = 0x10000 + ((c & 0x3ff) << 10) + (v.charCodeAt(++i) & 0x3ff);
      buf[pos++] = (c >> 18) | 0xf0;
      buf[pos++] = ((c >> 12) & 0x3f) | 0x80;
      buf[pos++] = ((c >> 6) & 0x3f) | 0x80;
      buf[pos++] = (c & 0x3f) | 0x80;
    } else {
      buf[pos++] = (c >> 12) | 0xe0;
      buf[pos++] = ((c >> 6) & 0x3f) | 0x80;
      buf[pos++] = (c & 0x3f) | 0x80;
    }
  }
}

/** Options of compile: how a record field is written instead of by its type (the codec's identity cache). */
export type FieldOverride = (field: string, type: avro.Type, write: Write) => Write | undefined;

/** A writer for an avsc type: `type.encode`'s bytes. */
export function plainWriter(type: avro.Type, override?: FieldOverride): Write {
  return compile(type, override);
}

function compile(type: avro.Type, override?: FieldOverride): Write {
  const name = type.typeName;
  switch (name) {
    case 'null': return writeNull;
    case 'boolean': return writeBoolean;
    case 'int': return writeInt;
    case 'long': return writeLong;
    case 'string': return writeString;
    case 'enum': {
      // A symbol's index by comparison: the schemas' enums have two to four symbols. (avsc looks
      // it up in an object, so it takes an inherited name such as `toString` as the first symbol.)
      const symbols = (type as avro.types.EnumType).symbols;
      return (s, v) => {
        const i = symbols.indexOf(v as string);
        if (i < 0 || typeof v !== 'string') throw new AvroWriteError(`not a symbol of ${type.name ?? 'enum'}: ${String(v)}`);
        putLong(s, i);
      };
    }
    case 'array': {
      const item = compile((type as avro.types.ArrayType).itemsType);
      return (s, v) => {
        if (!Array.isArray(v)) throw new AvroWriteError('not an array');
        // One block of all the items, then the empty block that ends the array.
        if (v.length > 0) {
          putLong(s, v.length);
          for (let i = 0; i < v.length; i++) item(s, v[i]);
        }
        putLong(s, 0);
      };
    }
    case 'map': {
      const value = compile((type as avro.types.MapType).valuesType);
      return (s, v) => {
        if (!v || typeof v !== 'object' || Array.isArray(v)) throw new AvroWriteError('not a map');
        const keys = Object.keys(v);
        if (keys.length > 0) {
          putLong(s, keys.length);
          for (const key of keys) {
            putString(s, key);
            value(s, (v as Record<string, unknown>)[key]);
          }
        }
        putLong(s, 0);
      };
    }
    case 'union:unwrapped': {
      const branches = (type as unknown as { types: avro.Type[] }).types;
      const nullAt = branches.findIndex((b) => b.typeName === 'null');
      // The schemas' unions are a null and one other branch (an optional value).
      if (branches.length !== 2 || nullAt < 0) throw new Error(`plainWriter: union ${branches.map((b) => b.typeName).join('|')} is not supported`);
      const otherAt = 1 - nullAt;
      const other = compile(branches[otherAt]!);
      const accepts = branchCheck(branches[otherAt]!);
      return (s, v) => {
        if (v === null) {
          putLong(s, nullAt);
          return;
        }
        // avsc picks the branch by the value's kind, and refuses a value of no branch's kind.
        if (!accepts(v)) throw new AvroWriteError(`not a value of the union: ${String(v)}`);
        putLong(s, otherAt);
        other(s, v);
      };
    }
    case 'record': {
      const fields = (type as avro.types.RecordType).fields;
      const writes: Write[] = [];
      const defaults: (Buffer | undefined)[] = [];
      for (const f of fields) {
        const own = compile(f.type, override);
        writes.push(override?.(f.name, f.type, own) ?? own);
        const d = f.defaultValue() as unknown;
        defaults.push(d === undefined ? undefined : f.type.toBuffer(d));
      }
      // One generated function per record type: each field read by name (a property load of
      // its own, monomorphic per event type), a missing field with a default as its bytes.
      const body = fields.map((f, i) => defaults[i] === undefined
        ? `w[${i}](s, v[${JSON.stringify(f.name)}]);`
        : `{ const x = v[${JSON.stringify(f.name)}]; if (x === undefined) put(s, d[${i}]); else w[${i}](s, x); }`).join('\n');
      return new Function('w', 'd', 'put', 'AvroWriteError', `return function (s, v) {
        if (v === null || typeof v !== 'object') throw new AvroWriteError('not a record');
        ${body}
      };`)(writes, defaults, putBytes, AvroWriteError) as Write;
    }
    default:
      // wrapped unions, fixed, bytes, float, double: no current schema has them.
      throw new Error(`plainWriter: Avro type ${name} is not supported`);
  }
}

export function putBytes(s: Sink, bytes: Buffer): void {
  ensure(s, bytes.length);
  bytes.copy(s.buf, s.pos);
  s.pos += bytes.length;
}

/** Whether avsc would take a non-null value for a union's branch of this type (its kind only). */
function branchCheck(type: avro.Type): (v: unknown) => boolean {
  switch (type.typeName) {
    case 'string':
    case 'enum': return (v) => typeof v === 'string';
    case 'int':
    case 'long': return (v) => typeof v === 'number';
    case 'boolean': return (v) => typeof v === 'boolean';
    case 'array': return (v) => Array.isArray(v);
    default: return (v) => typeof v === 'object' && !Array.isArray(v) && !Buffer.isBuffer(v);
  }
}

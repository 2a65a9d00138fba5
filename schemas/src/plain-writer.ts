import type avro from 'avsc';

/*
 * Avro binary encoding of plain objects, one writer generated per schema: plain-reader.ts's
 * counterpart. avsc writes a record through its field types' shared `_write` methods, which
 * look enum symbols and union branches up by key in objects shared by every event type (the
 * megamorphic keyed loads of `agate start`'s profile) and call each item's writer through the
 * type object. Here a whole event type is one generated function: its fields, arrays, maps and
 * unions written inline, enum symbols and union branches decided by comparisons, strings and
 * longs through two helpers. The bytes are avsc's exactly, and whatever avsc refuses is refused
 * (an error, never bytes): plain-writer.test.ts compares the two on random events of every type.
 * (A first version with a closure per field, shared by all types, measured mixed against avsc.)
 */

/** Where a write stands: the buffer grows (copied, doubled) when a value does not fit. */
export interface Sink {
  buf: Buffer;
  pos: number;
}

export type Write = (s: Sink, v: unknown) => void;

/** Raised for a value that is not of the schema; the codec wraps it (EVENT_ENCODING). */
class AvroWriteError extends Error {}

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

/**
 * How a record field is written instead of inline (the codec's identity cache): given the
 * field, a function that wraps the field type's own writer, or undefined.
 */
type FieldOverride = (field: string, type: avro.Type) => ((write: Write) => Write) | undefined;

/**
 * A writer for an avsc type: `type.encode`'s bytes. The whole type is generated as one function
 * (fields, arrays, maps and unions inline, strings and longs through the two helpers), so that
 * no call in it goes through a closure shared by other fields or other event types.
 */
export function plainWriter(type: avro.Type, override?: FieldOverride): Write {
  const g = new Generator(override);
  const body = g.value(type, 'v', 'value');
  return new Function('h', `const { putLong, putString, writeLong, writeString, putBytes, ensure, AvroWriteError, d, o } = h;
    return function (s, v) { ${body} };`)({ putLong, putString, writeLong, writeString, putBytes, ensure, AvroWriteError, d: g.defaults, o: g.overrides }) as Write;
}

/** The source of a writer: statements that write the value of a JS expression. */
class Generator {
  readonly defaults: Buffer[] = [];
  readonly overrides: Write[] = [];
  #names = 0;

  constructor(readonly override: FieldOverride | undefined) {}

  #name(prefix: string): string {
    return `${prefix}${this.#names++}`;
  }

  /** Statements writing `v` (a variable name) of `type`; `path` names it in errors. */
  value(type: avro.Type, v: string, path: string): string {
    const refuse = (what: string) => `throw new AvroWriteError(${JSON.stringify(`${path}: not ${what}`)});`;
    switch (type.typeName) {
      case 'null': return `if (${v} !== null) ${refuse('null')}`;
      case 'boolean': return `if (typeof ${v} !== 'boolean') ${refuse('a boolean')} ensure(s, 1); s.buf[s.pos++] = ${v} ? 1 : 0;`;
      case 'int': return `if (${v} !== (${v} | 0)) ${refuse('an int')} putLong(s, ${v});`;
      case 'long': return `writeLong(s, ${v});`;
      case 'string': return `writeString(s, ${v});`;
      case 'enum': {
        // A symbol's index by comparison: the schemas' enums have two to four symbols. (avsc looks
        // it up in an object, so it took an inherited name such as `toString` as the first symbol.)
        const symbols = (type as avro.types.EnumType).symbols;
        return `${symbols.map((sym, i) => `if (${v} === ${JSON.stringify(sym)}) putLong(s, ${i}); else `).join('')}${refuse(`a symbol of ${type.name ?? 'the enum'}`)}`;
      }
      case 'array': {
        const i = this.#name('i');
        const x = this.#name('x');
        // One block of all the items, then the empty block that ends the array.
        return `if (!Array.isArray(${v})) ${refuse('an array')}
          if (${v}.length > 0) {
            putLong(s, ${v}.length);
            for (let ${i} = 0; ${i} < ${v}.length; ${i}++) { const ${x} = ${v}[${i}]; ${this.value((type as avro.types.ArrayType).itemsType, x, `${path}[]`)} }
          }
          putLong(s, 0);`;
      }
      case 'map': {
        const keys = this.#name('k');
        const key = this.#name('key');
        const x = this.#name('x');
        return `if (!${v} || typeof ${v} !== 'object' || Array.isArray(${v})) ${refuse('a map')}
          const ${keys} = Object.keys(${v});
          if (${keys}.length > 0) {
            putLong(s, ${keys}.length);
            for (const ${key} of ${keys}) { putString(s, ${key}); const ${x} = ${v}[${key}]; ${this.value((type as avro.types.MapType).valuesType, x, `${path}{}`)} }
          }
          putLong(s, 0);`;
      }
      case 'union:unwrapped': {
        const branches = (type as unknown as { types: avro.Type[] }).types;
        const nullAt = branches.findIndex((b) => b.typeName === 'null');
        // The schemas' unions are a null and one other branch (an optional value).
        if (branches.length !== 2 || nullAt < 0) throw new Error(`plainWriter: union ${branches.map((b) => b.typeName).join('|')} is not supported`);
        const other = branches[1 - nullAt]!;
        // avsc picks the branch by the value's kind, and refuses a value of no branch's kind.
        return `if (${v} === null) putLong(s, ${nullAt});
          else if (${kindCheck(other, v)}) { putLong(s, ${1 - nullAt}); ${this.value(other, v, path)} }
          else ${refuse('a value of the union')}`;
      }
      case 'record': {
        const fields = (type as avro.types.RecordType).fields;
        const parts = [`if (${v} === null || typeof ${v} !== 'object') ${refuse('a record')}`];
        for (const f of fields) {
          const x = this.#name('f');
          const fieldPath = `${path}.${f.name}`;
          const wrap = this.override?.(f.name, f.type);
          const own = wrap?.(plainWriter(f.type));
          let write = this.value(f.type, x, fieldPath);
          if (own !== undefined) {
            this.overrides.push(own);
            write = `o[${this.overrides.length - 1}](s, ${x});`;
          }
          const d = f.defaultValue() as unknown;
          parts.push(`const ${x} = ${v}[${JSON.stringify(f.name)}];`);
          if (d === undefined) {
            parts.push(write);
          } else {
            // A missing field with a default: the default's bytes.
            this.defaults.push(f.type.toBuffer(d));
            parts.push(`if (${x} === undefined) putBytes(s, d[${this.defaults.length - 1}]); else { ${write} }`);
          }
        }
        return parts.join('\n');
      }
      default:
        // wrapped unions, fixed, bytes, float, double: no current schema has them.
        throw new Error(`plainWriter: Avro type ${type.typeName} is not supported`);
    }
  }
}

/** Whether avsc would take a non-null value for a union's branch of this type (its kind only), as an expression. */
function kindCheck(type: avro.Type, v: string): string {
  switch (type.typeName) {
    case 'string':
    case 'enum': return `typeof ${v} === 'string'`;
    case 'int':
    case 'long': return `typeof ${v} === 'number'`;
    case 'boolean': return `typeof ${v} === 'boolean'`;
    case 'array': return `Array.isArray(${v})`;
    default: return `typeof ${v} === 'object' && !Array.isArray(${v}) && !Buffer.isBuffer(${v})`;
  }
}

export function putBytes(s: Sink, bytes: Buffer): void {
  ensure(s, bytes.length);
  bytes.copy(s.buf, s.pos);
  s.pos += bytes.length;
}

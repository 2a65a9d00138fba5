import { AgateError, ErrorCode } from '../errors.js';

/**
 * A cursor over ClickHouse RowBinary output: fixed-width little-endian integers, and strings as
 * an unsigned LEB128 length followed by the bytes. Reading past the end is a typed error, never
 * a RangeError, so a truncated result is reported as a store failure.
 */
export class RowBinaryReader {
  #at = 0;

  readonly #bytes: Buffer;

  constructor(bytes: Buffer) {
    this.#bytes = bytes;
  }

  get done(): boolean {
    return this.#at >= this.#bytes.length;
  }

  uint64(): number {
    this.#need(8);
    const v = this.#bytes.readBigUInt64LE(this.#at);
    this.#at += 8;
    return Number(v);
  }

  int64(): number {
    this.#need(8);
    const v = this.#bytes.readBigInt64LE(this.#at);
    this.#at += 8;
    return Number(v);
  }

  /** An unsigned LEB128 number: a string's length, or an array's. */
  varint(): number {
    let value = 0;
    let shift = 0;
    for (;;) {
      this.#need(1);
      const b = this.#bytes[this.#at++]!;
      value += (b & 0x7f) * 2 ** shift;
      if (b < 0x80) return value;
      shift += 7;
    }
  }

  /** FixedString(n) (or n raw bytes): a view into the result. */
  fixed(n: number): Buffer {
    this.#need(n);
    const v = this.#bytes.subarray(this.#at, this.#at + n);
    this.#at += n;
    return v;
  }

  string(): string {
    const length = this.varint();
    this.#need(length);
    const s = this.#bytes.toString('utf8', this.#at, this.#at + length);
    this.#at += length;
    return s;
  }

  #need(n: number): void {
    if (this.#at + n > this.#bytes.length) throw new AgateError(ErrorCode.STORE_FAILED, `a RowBinary result ended ${this.#at + n - this.#bytes.length} byte(s) early`);
  }
}

/**
 * Builds RowBinary rows in one growing buffer: strings as an unsigned LEB128 length and their
 * UTF-8 bytes, integers little-endian, FixedString as its raw bytes. The engine reads this
 * without the per-byte unescaping and number parsing a text format needs.
 */
export class RowBinaryWriter {
  #buf: Buffer;
  #at = 0;

  /** A fresh buffer of `capacity` bytes, or memory to reuse (e.g. handed back by a worker after transfer()). */
  constructor(capacity: number | ArrayBuffer = 1 << 16) {
    this.#buf = typeof capacity === 'number' ? owned(capacity) : Buffer.from(capacity);
  }

  string(value: string): this {
    if (value.length < SHORT) {
      // At most 3 UTF-8 bytes per UTF-16 unit, so under 128 bytes: a one-byte length, known
      // once the bytes are written (no separate pass to count them).
      this.#reserve(1 + 3 * value.length);
      const n = this.#buf.write(value, this.#at + 1, 'utf8');
      this.#buf[this.#at] = n;
      this.#at += 1 + n;
      return this;
    }
    const max = Buffer.byteLength(value);
    this.#reserve(max + 5);
    this.#varint(max);
    this.#at += this.#buf.write(value, this.#at, 'utf8');
    return this;
  }

  /**
   * Starts a string whose bytes are written piece by piece (text(), raw()) and whose length is
   * filled in by closeString(start): a long value built from parts is never joined into one
   * JavaScript string first. Returns where it starts.
   */
  openString(): number {
    this.#reserve(OPEN_LENGTH);
    const start = this.#at;
    this.#at += OPEN_LENGTH;
    return start;
  }

  /** UTF-8 of `value` with no length prefix (a part of an open string). */
  text(value: string): this {
    const n = value.length;
    this.#reserve(3 * n);
    if (n < SHORT) {
      // Byte by byte while ASCII: Buffer#write's own cost is most of a short string's.
      const buf = this.#buf;
      let at = this.#at;
      let i = 0;
      for (; i < n; i++) {
        const c = value.charCodeAt(i);
        if (c >= 0x80) break;
        buf[at++] = c;
      }
      if (i === n) {
        this.#at = at;
        return this;
      }
    }
    this.#at += this.#buf.write(value, this.#at, 'utf8');
    return this;
  }

  /** Bytes with no length prefix (a part of an open string). */
  raw(value: Uint8Array): this {
    const n = value.length;
    this.#reserve(n);
    if (n < SHORT) {
      // A few bytes (a JSON member's name): a loop costs less than TypedArray#set's call.
      const buf = this.#buf;
      const at = this.#at;
      for (let i = 0; i < n; i++) buf[at + i] = value[i]!;
    } else {
      this.#buf.set(value, this.#at);
    }
    this.#at += n;
    return this;
  }

  /** Writes the length of the string opened at `start`, moving its bytes when the length takes fewer or more bytes than were left for it. */
  closeString(start: number): this {
    const from = start + OPEN_LENGTH;
    const length = this.#at - from;
    const size = varintSize(length);
    if (size !== OPEN_LENGTH) {
      this.#reserve(size - OPEN_LENGTH);
      this.#buf.copyWithin(start + size, from, this.#at);
      this.#at += size - OPEN_LENGTH;
    }
    const end = this.#at;
    this.#at = start;
    this.#varint(length);
    this.#at = end;
    return this;
  }

  bytes(value: Uint8Array): this {
    this.#reserve(value.length + 5);
    this.#varint(value.length);
    this.#buf.set(value, this.#at);
    this.#at += value.length;
    return this;
  }

  /** FixedString(N): exactly the bytes given. */
  fixed(value: Uint8Array): this {
    this.#reserve(value.length);
    this.#buf.set(value, this.#at);
    this.#at += value.length;
    return this;
  }

  /** An Array's or a Map's element count (LEB128, as the format prefixes them). */
  count(n: number): this {
    this.#reserve(5);
    this.#varint(n);
    return this;
  }

  /** Each string of an Array(String) (or Array(LowCardinality(String))), after its count. */
  strings(values: readonly string[]): this {
    this.count(values.length);
    for (const v of values) this.string(v);
    return this;
  }

  /** UInt8, and Bool (one byte, 0 or 1). */
  uint8(value: number): this {
    this.#reserve(1);
    this.#buf[this.#at++] = value;
    return this;
  }

  /** A safe integer as UInt64 (two 32-bit halves: no BigInt on the hot path). */
  uint64(value: number): this {
    this.#reserve(8);
    this.#buf.writeUInt32LE(value >>> 0, this.#at);
    this.#buf.writeUInt32LE(Math.floor(value / 2 ** 32), this.#at + 4);
    this.#at += 8;
    return this;
  }

  int64(value: number): this {
    if (value >= 0) return this.uint64(value);
    this.#reserve(8);
    this.#buf.writeBigInt64LE(BigInt(value), this.#at);
    this.#at += 8;
    return this;
  }

  /** Bytes written so far: an offset for `view` and `overwrite`. */
  get length(): number {
    return this.#at;
  }

  /** Skips `n` bytes to be filled in later with `overwrite` (e.g. a hash of what follows). */
  skip(n: number): number {
    this.#reserve(n);
    const at = this.#at;
    this.#at += n;
    return at;
  }

  /** Bytes [from, length) as a view, valid until the next write. */
  view(from: number): Buffer {
    return this.#buf.subarray(from, this.#at);
  }

  overwrite(at: number, value: Uint8Array): void {
    if (at < 0 || at + value.length > this.#at) throw new RangeError(`overwrite of ${value.length} bytes at ${at} is outside the ${this.#at} written`);
    this.#buf.set(value, at);
  }

  /** The rows written so far (a view, valid until the next write). */
  finish(): Buffer {
    return this.#buf.subarray(0, this.#at);
  }

  /**
   * Hands over the rows written so far with the memory they live in (for a worker thread:
   * transferring it copies nothing) and starts over with no memory.
   */
  transfer(): { memory: ArrayBuffer; length: number } {
    const out = { memory: this.#buf.buffer as ArrayBuffer, length: this.#at };
    this.#buf = owned(0);
    this.#at = 0;
    return out;
  }

  #varint(n: number): void {
    while (n >= 0x80) {
      this.#buf[this.#at++] = (n & 0x7f) | 0x80;
      n = Math.floor(n / 128);
    }
    this.#buf[this.#at++] = n;
  }

  #reserve(n: number): void {
    if (this.#at + n <= this.#buf.length) return;
    const next = owned(Math.max(this.#buf.length * 2, this.#at + n));
    this.#buf.copy(next, 0, 0, this.#at);
    this.#buf = next;
  }
}

/** Bytes left for an open string's length: LEB128 of up to 2 MiB, enough for any event's body (larger ones move). */
const OPEN_LENGTH = 3;

/** Bytes of n's unsigned LEB128 encoding. */
export function varintSize(n: number): number {
  let size = 1;
  while (n >= 0x80) (n = Math.floor(n / 0x80), size++);
  return size;
}

/** Strings shorter than this many UTF-16 units take under 128 UTF-8 bytes. */
const SHORT = 43;

/** A buffer with its own memory: unlike allocUnsafe's pooled slices, it can be transferred. */
function owned(size: number): Buffer {
  return Buffer.from(new ArrayBuffer(size));
}

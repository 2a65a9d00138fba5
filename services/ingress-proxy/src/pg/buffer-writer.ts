import { ProtocolError } from '../../../../core/src/errors.js';

/** Room kept at the front of the buffer for the type byte and Int32 length written by flush. */
const HEADER = 5;
const EMPTY = Buffer.alloc(0);

/**
 * A growable writer for one PostgreSQL message at a time. The body is appended after a reserved
 * 5-byte header; {@link BufferWriter.flush} fills in the type byte and length and hands the bytes
 * over. Each instance owns its storage, so writers are never shared between callers.
 */
export class BufferWriter {
  private buffer = EMPTY;
  private offset = HEADER;
  private readonly initialSize: number;

  /** `initialSize` is the first allocation, header included; storage is allocated on first use. */
  constructor(initialSize = 256) {
    this.initialSize = Math.max(initialSize, HEADER);
  }

  /** Grows by ~1.5x plus the request so a run of small appends stays amortised O(1). */
  private ensure(n: number): void {
    if (this.buffer.length - this.offset >= n) return;
    const old = this.buffer;
    this.buffer = Buffer.allocUnsafe(Math.max(this.initialSize, old.length + (old.length >> 1)) + n);
    old.copy(this.buffer, 0, 0, this.offset);
  }

  /** Appends one byte. */
  addByte(value: number): this {
    this.ensure(1);
    this.buffer[this.offset++] = value & 0xff;
    return this;
  }

  /** Appends a big-endian Int16; the low 16 bits of `value` are written, so signed or unsigned both work. */
  addInt16(value: number): this {
    this.ensure(2);
    this.buffer[this.offset++] = (value >>> 8) & 0xff;
    this.buffer[this.offset++] = value & 0xff;
    return this;
  }

  /** Appends a big-endian Int32; accepts -1 (NULL lengths) as well as unsigned OIDs. */
  addInt32(value: number): this {
    this.ensure(4);
    this.buffer[this.offset++] = (value >>> 24) & 0xff;
    this.buffer[this.offset++] = (value >>> 16) & 0xff;
    this.buffer[this.offset++] = (value >>> 8) & 0xff;
    this.buffer[this.offset++] = value & 0xff;
    return this;
  }

  /**
   * Appends UTF-8 text and a NUL terminator. An embedded NUL would end the string early and
   * let the remainder be read as further fields, so it is refused.
   */
  addCString(text: string): this {
    if (text.includes('\0')) throw new ProtocolError('cstring must not contain NUL');
    this.addString(text);
    return this.addByte(0);
  }

  /** Appends UTF-8 text with no terminator or length prefix. */
  addString(text: string): this {
    const len = Buffer.byteLength(text);
    this.ensure(len);
    this.buffer.write(text, this.offset, len, 'utf8');
    this.offset += len;
    return this;
  }

  /** Appends raw bytes. */
  addBytes(bytes: Uint8Array): this {
    this.ensure(bytes.length);
    this.buffer.set(bytes, this.offset);
    this.offset += bytes.length;
    return this;
  }

  /**
   * Frames what was written and resets the writer. With `code`, the result is a typed message:
   * type byte, then Int32 length counting itself and the body but not the type byte. Without
   * `code`, it is an untyped packet (Int32 length then body), the startup-phase framing.
   * The returned Buffer is handed over (not copied); the writer starts afresh with new storage.
   */
  flush(code?: number): Buffer {
    this.ensure(0); // a message with an empty body still needs its header bytes
    const start = code === undefined ? 1 : 0;
    this.buffer.writeInt32BE(this.offset - 1, 1);
    if (code !== undefined) this.buffer[0] = code;
    const framed = this.buffer.subarray(start, this.offset);
    this.buffer = EMPTY;
    this.offset = HEADER;
    return framed;
  }
}

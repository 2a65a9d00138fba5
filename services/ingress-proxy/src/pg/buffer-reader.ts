import { ProtocolError } from '../../../../core/src/errors.js';

/**
 * A bounds-checked cursor over one PostgreSQL message body. All integers are big-endian
 * ("network byte order", protocol docs §55.7). Every read checks the bytes remaining first, so
 * a short or lying frame surfaces as a typed {@link ProtocolError}, never a RangeError.
 */
export class BufferReader {
  private offset: number;
  private readonly end: number;

  /** Reads `buffer` from `start` (default 0) up to `end` (default its length). */
  constructor(private readonly buffer: Buffer, start = 0, end = buffer.length) {
    this.offset = start;
    this.end = end;
  }

  /** Bytes not yet read. */
  get remaining(): number {
    return this.end - this.offset;
  }

  /** Current position within the underlying buffer. */
  get position(): number {
    return this.offset;
  }

  private need(n: number, what: string): number {
    if (n < 0 || this.end - this.offset < n) throw new ProtocolError(`${what} truncated`);
    const at = this.offset;
    this.offset += n;
    return at;
  }

  /** One unsigned byte. */
  byte(): number {
    return this.buffer[this.need(1, 'byte')]!;
  }

  /** Signed Int16 (format codes). */
  int16(): number {
    return this.buffer.readInt16BE(this.need(2, 'int16'));
  }

  /** Unsigned Int16: counts are read this way by the server (pq_getmsgint with 2 bytes). */
  uint16(): number {
    return this.buffer.readUInt16BE(this.need(2, 'int16'));
  }

  /** Signed Int32 (lengths, where -1 means NULL). */
  int32(): number {
    return this.buffer.readInt32BE(this.need(4, 'int32'));
  }

  /** Unsigned Int32 (OIDs). */
  uint32(): number {
    return this.buffer.readUInt32BE(this.need(4, 'int32'));
  }

  /** A NUL-terminated UTF-8 string ("String" in the protocol docs); the NUL must lie within bounds. */
  cstring(): string {
    const nul = this.buffer.indexOf(0, this.offset);
    if (nul === -1 || nul >= this.end) throw new ProtocolError('cstring truncated');
    const text = this.buffer.toString('utf8', this.offset, nul);
    this.offset = nul + 1;
    return text;
  }

  /** `length` bytes decoded as UTF-8. */
  string(length: number): string {
    const at = this.need(length, 'string');
    return this.buffer.toString('utf8', at, at + length);
  }

  /** `length` raw bytes as a view (no copy) over the underlying buffer. */
  bytes(length: number): Buffer {
    const at = this.need(length, 'bytes');
    return this.buffer.subarray(at, at + length);
  }

  /** Everything not yet read, as a view. */
  rest(): Buffer {
    return this.bytes(this.remaining);
  }
}

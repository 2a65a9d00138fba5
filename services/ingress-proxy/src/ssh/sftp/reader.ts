import { ErrorCode, ProtocolError } from '../../../../../core/src/errors.js';

/** A bounds-checked cursor over one SFTP packet body: a short packet is a typed error, never a RangeError. */
export class PacketReader {
  #at = 0;

  constructor(private readonly buf: Buffer) {}

  #need(n: number): void {
    if (this.#at + n > this.buf.length) throw new ProtocolError(`sftp packet ends early: ${n} more bytes expected at offset ${this.#at}`, ErrorCode.PROTOCOL_VIOLATION);
  }

  /** Bytes read so far. */
  get offset(): number {
    return this.#at;
  }

  /** Everything after the cursor, as a view. */
  rest(): Buffer {
    const v = this.buf.subarray(this.#at);
    this.#at = this.buf.length;
    return v;
  }

  byte(): number {
    this.#need(1);
    return this.buf[this.#at++]!;
  }

  uint32(): number {
    this.#need(4);
    const v = this.buf.readUInt32BE(this.#at);
    this.#at += 4;
    return v;
  }

  uint64(): number {
    this.#need(8);
    const v = this.buf.readBigUInt64BE(this.#at);
    this.#at += 8;
    return Number(v); // offsets past 2^53 lose precision; they only feed the sequential check
  }

  bytes(): Buffer {
    const n = this.uint32();
    this.#need(n);
    const v = this.buf.subarray(this.#at, this.#at + n);
    this.#at += n;
    return v;
  }

  string(): string {
    return this.bytes().toString('utf8');
  }

  /** A handle: opaque bytes, kept as hex so it can key a map. */
  handle(): string {
    return this.bytes().toString('hex');
  }
}

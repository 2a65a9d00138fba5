import { AgateError, ErrorCode } from '../errors.js';

/**
 * A cursor over ClickHouse RowBinary output: fixed-width little-endian integers, and strings as
 * an unsigned LEB128 length followed by the bytes. Reading past the end is a typed error, never
 * a RangeError, so a truncated result is reported as a store failure.
 */
export class RowBinaryReader {
  #at = 0;

  constructor(private readonly bytes: Buffer) {}

  get done(): boolean {
    return this.#at >= this.bytes.length;
  }

  uint64(): number {
    this.#need(8);
    const v = this.bytes.readBigUInt64LE(this.#at);
    this.#at += 8;
    return Number(v);
  }

  int64(): number {
    this.#need(8);
    const v = this.bytes.readBigInt64LE(this.#at);
    this.#at += 8;
    return Number(v);
  }

  string(): string {
    let length = 0;
    let shift = 0;
    for (;;) {
      this.#need(1);
      const b = this.bytes[this.#at++]!;
      length += (b & 0x7f) * 2 ** shift;
      if (b < 0x80) break;
      shift += 7;
    }
    this.#need(length);
    const s = this.bytes.toString('utf8', this.#at, this.#at + length);
    this.#at += length;
    return s;
  }

  #need(n: number): void {
    if (this.#at + n > this.bytes.length) throw new AgateError(ErrorCode.STORE_FAILED, `a RowBinary result ended ${this.#at + n - this.bytes.length} byte(s) early`);
  }
}

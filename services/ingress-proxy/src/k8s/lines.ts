import { ProtocolError, ErrorCode } from '../../../../core/src/errors.js';

/**
 * Splits a watch stream (one JSON event per line) into whole lines, however the chunks fall.
 * A line longer than `maxLine` is a protocol error: the proxy faces untrusted bytes, and an
 * unbounded line would be an unbounded buffer.
 */
export class LineSplitter {
  #parts: Buffer[] = [];
  #size = 0;

  readonly #maxLine: number;

  constructor(maxLine: number) {
    this.#maxLine = maxLine;
  }

  /** The complete lines in this chunk (without their newline), in order. */
  push(chunk: Buffer): Buffer[] {
    const lines: Buffer[] = [];
    let start = 0;
    for (let nl = chunk.indexOf(0x0a, start); nl !== -1; nl = chunk.indexOf(0x0a, start)) {
      const piece = chunk.subarray(start, nl);
      this.#check(piece.length);
      lines.push(this.#parts.length === 0 ? piece : Buffer.concat([...this.#parts, piece]));
      this.#parts = [];
      this.#size = 0;
      start = nl + 1;
    }
    if (start < chunk.length) {
      const rest = chunk.subarray(start);
      this.#check(rest.length);
      this.#parts.push(rest);
      this.#size += rest.length;
    }
    return lines;
  }

  /** What is left when the stream ends: a last line without a newline, if any. */
  end(): Buffer | undefined {
    if (this.#size === 0) return undefined;
    const last = Buffer.concat(this.#parts);
    this.#parts = [];
    this.#size = 0;
    return last;
  }

  #check(more: number): void {
    if (this.#size + more > this.#maxLine) throw new ProtocolError(`a watch event is larger than ${this.#maxLine} bytes`, ErrorCode.PROTOCOL_FRAME_TOO_LARGE);
  }
}

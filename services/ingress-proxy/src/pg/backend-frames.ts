import { ErrorCode, ProtocolError } from '../../../../core/src/errors.js';

/** One complete backend message as it arrived: the type byte and the whole frame. */
export interface BackendFrame {
  code: number;
  raw: Buffer;
}

const HEADER = 5; // type byte + Int32 length

/**
 * Splits the upstream server's byte stream into whole typed frames (1 type byte, Int32 length
 * including itself), so the proxy can forward each frame unchanged and decode only the few it
 * records. The declared length is checked against `maxMessageSize` as soon as it is readable,
 * before the body is buffered.
 *
 * `push` takes ownership of each chunk (socket chunks are never reused): frames are emitted as
 * views into it, and only a frame that spans chunks is joined, once, when it is complete.
 */
export class BackendFrameReader {
  #parts: Buffer[] = [];
  #have = 0;
  /** Bytes the pending frame needs in all; 0 while its header is incomplete. */
  #need = 0;

  readonly #onFrame: (frame: BackendFrame) => void;
  readonly #maxMessageSize: number;

  constructor(onFrame: (frame: BackendFrame) => void, maxMessageSize: number) {
    this.#onFrame = onFrame;
    this.#maxMessageSize = maxMessageSize;
  }

  push(chunk: Buffer): void {
    let data = chunk;
    if (this.#have > 0) {
      this.#parts.push(chunk);
      this.#have += chunk.length;
      if (this.#need === 0 && this.#have >= HEADER) this.#need = this.#frameSize(Buffer.concat(this.#parts, this.#have), 0);
      if (this.#need === 0 || this.#have < this.#need) return;
      data = Buffer.concat(this.#parts, this.#have);
      this.#parts = [];
      this.#have = 0;
      this.#need = 0;
    }
    let pos = 0;
    while (data.length - pos >= HEADER) {
      const size = this.#frameSize(data, pos);
      if (data.length - pos < size) break;
      this.#onFrame({ code: data[pos]!, raw: data.subarray(pos, pos + size) });
      pos += size;
    }
    if (pos < data.length) {
      this.#parts = [data.subarray(pos)];
      this.#have = data.length - pos;
      this.#need = this.#have >= HEADER ? this.#frameSize(data, pos) : 0;
    }
  }

  #frameSize(buf: Buffer, pos: number): number {
    const len = buf.readInt32BE(pos + 1); // the length counts itself but not the type byte
    if (len < 4) throw new ProtocolError(`upstream sent a frame with invalid length ${len}`);
    if (len > this.#maxMessageSize) {
      throw new ProtocolError(`upstream frame of ${len} bytes exceeds the ${this.#maxMessageSize}-byte limit`, ErrorCode.PROTOCOL_FRAME_TOO_LARGE);
    }
    return len + 1;
  }
}

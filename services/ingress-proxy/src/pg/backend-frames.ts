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
    let pos = 0;
    if (this.#have > 0) {
      // A frame began in an earlier chunk: join only the bytes it still lacks, so the frames that
      // follow in this chunk stay views of it (a 2 GB result would otherwise be copied once more).
      if (this.#need === 0) {
        pos = this.#take(chunk, 0, HEADER - this.#have);
        if (this.#have < HEADER) return;
        const header = Buffer.concat(this.#parts, this.#have);
        this.#parts = [header];
        this.#need = this.#frameSize(header, 0);
      }
      pos = this.#take(chunk, pos, this.#need - this.#have);
      if (this.#have < this.#need) return;
      const frame = Buffer.concat(this.#parts, this.#have);
      this.#parts = [];
      this.#have = 0;
      this.#need = 0;
      this.#onFrame({ code: frame[0]!, raw: frame });
    }
    while (chunk.length - pos >= HEADER) {
      const size = this.#frameSize(chunk, pos);
      if (chunk.length - pos < size) break;
      this.#onFrame({ code: chunk[pos]!, raw: chunk.subarray(pos, pos + size) });
      pos += size;
    }
    if (pos < chunk.length) {
      this.#parts = [chunk.subarray(pos)];
      this.#have = chunk.length - pos;
      this.#need = this.#have >= HEADER ? this.#frameSize(chunk, pos) : 0;
    }
  }

  /** Keeps up to `wanted` bytes of `chunk` from `pos` for the pending frame; returns where it stopped. */
  #take(chunk: Buffer, pos: number, wanted: number): number {
    const end = Math.min(chunk.length, pos + wanted);
    if (end > pos) {
      this.#parts.push(chunk.subarray(pos, end));
      this.#have += end - pos;
    }
    return end;
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

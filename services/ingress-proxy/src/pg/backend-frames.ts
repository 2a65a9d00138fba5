import { ErrorCode, ProtocolError } from '../../../../core/src/errors.js';

/** One complete backend message as it arrived: the type byte and the whole frame. */
export interface BackendFrame {
  code: number;
  raw: Buffer;
}

/**
 * Splits the upstream server's byte stream into whole typed frames (1 type byte, Int32 length
 * including itself), so the proxy can forward each frame unchanged and decode only the few it
 * records. The declared length is checked against `maxMessageSize` before anything is buffered.
 */
export class BackendFrameReader {
  #pending: Buffer[] = [];
  #pendingBytes = 0;

  constructor(private readonly onFrame: (frame: BackendFrame) => void, private readonly maxMessageSize: number) {}

  push(chunk: Buffer): void {
    let buf = chunk;
    if (this.#pendingBytes > 0) {
      this.#pending.push(chunk);
      // Join only once the pending frame is complete: a large row arriving in many chunks is
      // copied once, not once per chunk.
      if (this.#pendingBytes + chunk.length < this.#needed(chunk)) {
        this.#pendingBytes += chunk.length;
        return;
      }
      this.#pending.pop();
      buf = Buffer.concat(this.#pending, this.#pendingBytes + chunk.length);
      this.#pending = [];
      this.#pendingBytes = 0;
    }
    let pos = 0;
    while (buf.length - pos >= 5) {
      const len = buf.readInt32BE(pos + 1); // length excludes the type byte
      if (len < 4) throw new ProtocolError(`upstream sent a frame with invalid length ${len}`);
      if (len > this.maxMessageSize) throw new ProtocolError(`upstream frame of ${len} bytes exceeds the ${this.maxMessageSize}-byte limit`, ErrorCode.PROTOCOL_FRAME_TOO_LARGE);
      if (buf.length - pos < len + 1) break;
      this.onFrame({ code: buf[pos]!, raw: buf.subarray(pos, pos + len + 1) });
      pos += len + 1;
    }
    if (pos < buf.length) {
      // Copy the tail: the chunk's memory may be reused by the caller.
      const tail = Buffer.from(buf.subarray(pos));
      this.#pending.push(tail);
      this.#pendingBytes = tail.length;
    }
  }

  /** Bytes the pending frame needs in all; 5 while its header is still incomplete. */
  #needed(next: Buffer): number {
    const head = Buffer.concat([...this.#pending.slice(0, -1), next].map((b) => b.subarray(0, 5))).subarray(0, 5);
    if (head.length < 5) return 5;
    const len = head.readInt32BE(1);
    // The main loop re-checks the limit; until then never buffer past it.
    return len < 4 || len > this.maxMessageSize ? 0 : len + 1;
  }
}

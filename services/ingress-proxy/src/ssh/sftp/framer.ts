import { ErrorCode, ProtocolError } from '../../../../../core/src/errors.js';
import { MAX_PACKET } from './messages.js';

/**
 * Cuts a byte stream into SFTP packets (uint32 length, then that many bytes). Chunks are kept
 * in a list and joined once per packet, so a large packet arriving in many pieces is copied once.
 * A length above `maxPacket` is refused before anything is allocated.
 */
export class PacketFramer {
  #chunks: Buffer[] = [];
  #buffered = 0;

  constructor(private readonly maxPacket = MAX_PACKET + 1024) {}

  /** Adds bytes; returns every packet now complete, each with its length prefix. */
  push(chunk: Buffer): Buffer[] {
    this.#chunks.push(chunk);
    this.#buffered += chunk.length;
    const packets: Buffer[] = [];
    for (;;) {
      if (this.#buffered < 4) break;
      const length = this.#peekLength();
      if (length > this.maxPacket) throw new ProtocolError(`sftp packet of ${length} bytes exceeds the limit of ${this.maxPacket}`, ErrorCode.PROTOCOL_FRAME_TOO_LARGE);
      if (length < 1) throw new ProtocolError('sftp packet of length 0', ErrorCode.PROTOCOL_VIOLATION);
      if (this.#buffered < 4 + length) break;
      packets.push(this.#take(4 + length));
    }
    return packets;
  }

  /** Bytes held waiting for the rest of a packet. */
  get buffered(): number {
    return this.#buffered;
  }

  #peekLength(): number {
    const first = this.#chunks[0]!;
    if (first.length >= 4) return first.readUInt32BE(0);
    const head = Buffer.concat(this.#chunks, Math.min(this.#buffered, 8));
    return head.readUInt32BE(0);
  }

  #take(n: number): Buffer {
    const first = this.#chunks[0]!;
    let out: Buffer;
    if (first.length >= n) {
      out = first.subarray(0, n);
      if (first.length === n) this.#chunks.shift();
      else this.#chunks[0] = first.subarray(n);
    } else {
      out = Buffer.allocUnsafe(n);
      let filled = 0;
      while (filled < n) {
        const c = this.#chunks[0]!;
        const used = Math.min(c.length, n - filled);
        c.copy(out, filled, 0, used);
        filled += used;
        if (used === c.length) this.#chunks.shift();
        else this.#chunks[0] = c.subarray(used);
      }
    }
    this.#buffered -= n;
    return out;
  }
}

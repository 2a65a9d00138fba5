import { ErrorCode, ProtocolError } from '../../../../../core/src/errors.js';
import { MAX_PACKET } from './messages.js';

/**
 * What the framer hands on: a whole packet, or a large data-carrying packet (a write request, a
 * data reply) as a head followed by the rest of its bytes as they arrive.
 */
export type Frame =
  /** A complete packet, length prefix included. */
  | { kind: 'packet'; packet: Buffer }
  /** The first `HEAD_BYTES` of a streamed packet, prefix included; `length` counts the whole packet with its prefix. */
  | { kind: 'head'; head: Buffer; length: number }
  /** More bytes of the streamed packet, as they arrived (never copied); `last` ends the packet. */
  | { kind: 'rest'; bytes: Buffer; last: boolean };

/** Enough for any write or data header: prefix, type, id, a handle of at most 256 bytes (draft-02 §3), offset, data length. */
export const HEAD_BYTES = 512;
/** Packets up to this size come out whole; only bulk data is worth streaming. */
const STREAM_ABOVE = 16 * 1024;

interface FramerOptions {
  /** A length above this is refused before anything is allocated. */
  maxPacket?: number;
  /** Packet types delivered as head and rest when large (their data is the packet's last field). */
  streamed?: readonly number[];
}

/**
 * Cuts a byte stream into SFTP packets (uint32 length, then that many bytes). Chunks are kept
 * in a list and joined once per packet. A large packet of a `streamed` type is not held until it
 * is complete: its head comes out once HEAD_BYTES have arrived and the rest as it arrives, so a
 * 256 KiB write moves on while its later bytes are still on the wire, and is never copied.
 */
export class PacketFramer {
  #chunks: Buffer[] = [];
  #buffered = 0;
  /** Bytes of the streamed packet still to come; 0 between packets. */
  #remaining = 0;
  readonly #maxPacket: number;
  readonly #streamed: ReadonlySet<number>;

  constructor(options: FramerOptions = {}) {
    this.#maxPacket = options.maxPacket ?? MAX_PACKET + 1024;
    this.#streamed = new Set(options.streamed ?? []);
  }

  /** Adds bytes; returns every frame now complete, in order. */
  push(chunk: Buffer): Frame[] {
    this.#chunks.push(chunk);
    this.#buffered += chunk.length;
    const frames: Frame[] = [];
    for (;;) {
      if (this.#remaining > 0) {
        if (this.#buffered === 0) break;
        const bytes = this.#takeUpTo(this.#remaining);
        this.#remaining -= bytes.length;
        frames.push({ kind: 'rest', bytes, last: this.#remaining === 0 });
        continue;
      }
      if (this.#buffered < 4) break;
      const length = this.#peek(4).readUInt32BE(0);
      if (length > this.#maxPacket) throw new ProtocolError(`sftp packet of ${length} bytes exceeds the limit of ${this.#maxPacket}`, ErrorCode.PROTOCOL_FRAME_TOO_LARGE);
      if (length < 1) throw new ProtocolError('sftp packet of length 0', ErrorCode.PROTOCOL_VIOLATION);
      const total = 4 + length;
      if (total > STREAM_ABOVE && this.#buffered >= 5 && this.#streamed.has(this.#peek(5)[4]!)) {
        if (this.#buffered < HEAD_BYTES) break;
        const head = this.#take(HEAD_BYTES);
        this.#remaining = total - HEAD_BYTES;
        frames.push({ kind: 'head', head, length: total });
        continue;
      }
      if (this.#buffered < total) break;
      frames.push({ kind: 'packet', packet: this.#take(total) });
    }
    return frames;
  }

  /** Bytes held waiting for the rest of a packet (or of a streamed packet's head). */
  get buffered(): number {
    return this.#buffered;
  }

  /** The first n buffered bytes (n small), without consuming them. */
  #peek(n: number): Buffer {
    const first = this.#chunks[0]!;
    return first.length >= n ? first : Buffer.concat(this.#chunks, n);
  }

  /** Up to n bytes from the first chunk, as a view (the rest of a streamed packet). */
  #takeUpTo(n: number): Buffer {
    const first = this.#chunks[0]!;
    if (first.length <= n) {
      this.#chunks.shift();
      this.#buffered -= first.length;
      return first;
    }
    this.#chunks[0] = first.subarray(n);
    this.#buffered -= n;
    return first.subarray(0, n);
  }

  /** Exactly n bytes: a view when the first chunk holds them, otherwise one copy. */
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

import { ErrorCode, ProtocolError } from '../../../../core/src/errors.js';

/** WebSocket opcodes (RFC 6455 §5.2). */
export const enum Opcode {
  Continuation = 0x0,
  Text = 0x1,
  Binary = 0x2,
  Close = 0x8,
  Ping = 0x9,
  Pong = 0xa,
}

/** One whole frame: its payload unmasked (a copy), and the bytes it came in, to forward as they were. */
interface Frame {
  fin: boolean;
  opcode: number;
  payload: Buffer;
  raw: Buffer;
}

/**
 * Splits one direction of a WebSocket connection into whole frames, however the chunks fall.
 * Only the framing RFC 6455 defines without extensions is read (Agate offers the server none):
 * a reserved bit set, an unknown opcode, a control frame longer than 125 bytes or fragmented, a
 * client frame not masked (or a server frame masked), or a payload over `maxPayload` is a
 * {@link ProtocolError}, and the reader is unusable after it.
 */
export class FrameReader {
  readonly #fromClient: boolean;
  readonly #maxPayload: number;
  #buffer: Buffer = Buffer.alloc(0);
  #failed = false;

  constructor(fromClient: boolean, maxPayload: number) {
    this.#fromClient = fromClient;
    this.#maxPayload = maxPayload;
  }

  /** The frames this chunk completes, in order; a partial frame is kept for the next chunk. */
  push(chunk: Buffer): Frame[] {
    if (this.#failed) throw new ProtocolError('the WebSocket stream already failed', ErrorCode.PROTOCOL_VIOLATION);
    this.#buffer = this.#buffer.length === 0 ? chunk : Buffer.concat([this.#buffer, chunk]);
    const frames: Frame[] = [];
    try {
      for (let frame = this.#next(); frame !== undefined; frame = this.#next()) frames.push(frame);
    } catch (err) {
      this.#failed = true;
      throw err;
    }
    return frames;
  }

  /** Bytes of a frame not yet complete. */
  get pending(): number {
    return this.#buffer.length;
  }

  /*
   *  byte 0: FIN RSV1 RSV2 RSV3 opcode(4)
   *  byte 1: MASK length(7): 126 → 16-bit length follows, 127 → 64-bit length follows
   *  then the 4-byte masking key when MASK, then the payload
   */
  #next(): Frame | undefined {
    const b = this.#buffer;
    if (b.length < 2) return undefined;
    const fin = (b[0]! & 0x80) !== 0;
    if ((b[0]! & 0x70) !== 0) throw violation('a reserved bit is set (no extension was negotiated)');
    const opcode = b[0]! & 0x0f;
    if (!KNOWN.has(opcode)) throw violation(`unknown opcode 0x${opcode.toString(16)}`);
    const masked = (b[1]! & 0x80) !== 0;
    if (masked !== this.#fromClient) throw violation(this.#fromClient ? 'a client frame is not masked' : 'a server frame is masked');
    let length = b[1]! & 0x7f;
    let at = 2;
    if (length === 126) {
      if (b.length < 4) return undefined;
      length = b.readUInt16BE(2);
      at = 4;
    } else if (length === 127) {
      if (b.length < 10) return undefined;
      const big = b.readBigUInt64BE(2);
      if (big > BigInt(this.#maxPayload)) throw tooLarge(this.#maxPayload);
      length = Number(big);
      at = 10;
    }
    if (opcode >= 0x8 && (length > 125 || !fin)) throw violation('a control frame is longer than 125 bytes or fragmented');
    if (length > this.#maxPayload) throw tooLarge(this.#maxPayload);
    const end = at + (masked ? 4 : 0) + length;
    if (b.length < end) return undefined;
    const payload = Buffer.from(b.subarray(end - length, end)); // a copy: unmasked in place
    if (masked) {
      const key = b.subarray(at, at + 4);
      for (let i = 0; i < payload.length; i++) payload[i]! ^= key[i & 3]!;
    }
    const raw = b.subarray(0, end);
    this.#buffer = b.subarray(end);
    return { fin, opcode, payload, raw };
  }
}

const KNOWN = new Set<number>([Opcode.Continuation, Opcode.Text, Opcode.Binary, Opcode.Close, Opcode.Ping, Opcode.Pong]);

function violation(why: string): ProtocolError {
  return new ProtocolError(`WebSocket frame: ${why}`, ErrorCode.PROTOCOL_VIOLATION);
}

function tooLarge(max: number): ProtocolError {
  return new ProtocolError(`WebSocket frame: the payload is larger than ${max} bytes`, ErrorCode.PROTOCOL_FRAME_TOO_LARGE);
}

// WebSocket frames written by hand (RFC 6455 §5.2) for tests: the stub kubelet's answers and
// raw clients' hostile frames. Written apart from Agate's reader so the two check each other.
import { randomBytes } from 'node:crypto';

interface FrameOptions {
  fin?: boolean;
  /** Client frames are masked; server frames are not. */
  mask?: boolean;
  /** Bits 4–6 of the first byte (RSV1–3), for frames breaking the rules. */
  rsv?: number;
}

export function wsFrame(opcode: number, payload: Buffer, o: FrameOptions = {}): Buffer {
  const fin = o.fin ?? true;
  const len = payload.length;
  const head = [((fin ? 0x80 : 0) | ((o.rsv ?? 0) << 4) | opcode) & 0xff];
  const maskBit = o.mask ? 0x80 : 0;
  let ext = Buffer.alloc(0);
  if (len < 126) head.push(maskBit | len);
  else if (len < 65536) {
    head.push(maskBit | 126);
    ext = Buffer.alloc(2);
    ext.writeUInt16BE(len);
  } else {
    head.push(maskBit | 127);
    ext = Buffer.alloc(8);
    ext.writeBigUInt64BE(BigInt(len));
  }
  if (!o.mask) return Buffer.concat([Buffer.from(head), ext, payload]);
  const key = randomBytes(4);
  const body = Buffer.from(payload);
  for (let i = 0; i < body.length; i++) body[i]! ^= key[i & 3]!;
  return Buffer.concat([Buffer.from(head), ext, key, body]);
}

/** A channel message of the remote-command protocol: one binary frame, the channel first. */
export function channelFrame(channel: number, data: string | Buffer, o: FrameOptions = {}): Buffer {
  return wsFrame(0x2, Buffer.concat([Buffer.from([channel]), Buffer.from(data)]), o);
}

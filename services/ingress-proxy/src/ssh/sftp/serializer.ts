import { PacketType, type StatusCode } from './messages.js';

/** SSH_FXP_STATUS: uint32 id, uint32 code, string message, string language tag. */
export function statusPacket(id: number, code: StatusCode, message: string): Buffer {
  const text = Buffer.from(message, 'utf8');
  const body = Buffer.alloc(1 + 4 + 4 + 4 + text.length + 4);
  let at = body.writeUInt8(PacketType.Status, 0);
  at = body.writeUInt32BE(id, at);
  at = body.writeUInt32BE(code, at);
  at = body.writeUInt32BE(text.length, at);
  at += text.copy(body, at);
  body.writeUInt32BE(0, at); // empty language tag
  const length = Buffer.alloc(4);
  length.writeUInt32BE(body.length, 0);
  return Buffer.concat([length, body]);
}

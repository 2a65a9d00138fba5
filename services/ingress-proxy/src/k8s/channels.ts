import { ErrorCode, ProtocolError } from '../../../../core/src/errors.js';
import { FrameReader, Opcode } from './ws-frames.js';

/**
 * The WebSocket subprotocols of exec and attach whose messages Agate reads: every message is
 * binary (or text, read the same way by the kubelet's reader) and its first byte names the
 * channel. The base64 variants and port-forward's protocols are not offered to the API server
 * on a recorded stream.
 */
export const CHANNEL_PROTOCOLS = ['v5.channel.k8s.io', 'v4.channel.k8s.io', 'v3.channel.k8s.io', 'v2.channel.k8s.io', 'channel.k8s.io'] as const;

/** Channel numbers of the remote-command protocol, by name in the record. */
const NAMES: Record<number, string> = { 0: 'stdin', 1: 'stdout', 2: 'stderr', 3: 'error', 4: 'resize', 255: 'close' };

export function channelName(channel: number): string {
  return NAMES[channel] ?? `channel ${channel}`;
}

/** The bytes one message (or fragment of one) carried on a channel. */
export interface ChannelData {
  channel: number;
  data: Buffer;
}

/** What one chunk of one direction held: the frames to forward, and what they carried. */
interface ChannelChunk {
  /** The whole frames of the chunk, as they came (a partial frame waits for the next chunk). */
  forward: Buffer;
  data: ChannelData[];
  /** A close frame: its status code and reason. */
  closed?: string;
}

/**
 * One direction of an exec or attach over WebSocket, read as the side receiving it reads it.
 * The kubelet (and the API server translating for it) reads the client's frames one by one
 * (golang.org/x/net/websocket): every data frame, a continuation too, is a message of its own
 * whose first byte is its channel, and an empty one is skipped. kubectl (client-go's gorilla
 * reader) joins the server's fragments into one message whose first byte is the channel. Pings
 * and pongs are forwarded unrecorded; a close frame is recorded. Anything {@link FrameReader}
 * refuses, or on the server's side a continuation with no message to continue, is a
 * {@link ProtocolError}.
 */
export class ChannelReader {
  readonly #frames: FrameReader;
  readonly #perFrame: boolean;
  /** The channel of the message being continued; null before its first byte; undefined between messages. */
  #channel: number | null | undefined;

  constructor(fromClient: boolean, maxPayload: number) {
    this.#frames = new FrameReader(fromClient, maxPayload);
    this.#perFrame = fromClient;
  }

  push(chunk: Buffer): ChannelChunk {
    const frames = this.#frames.push(chunk);
    const out: ChannelChunk = { forward: frames.length === 1 ? frames[0]!.raw : Buffer.concat(frames.map((f) => f.raw)), data: [] };
    for (const f of frames) {
      if (f.opcode === Opcode.Ping || f.opcode === Opcode.Pong) continue;
      if (f.opcode === Opcode.Close) {
        out.closed = f.payload.length >= 2 ? `${f.payload.readUInt16BE(0)} ${f.payload.subarray(2).toString('utf8').slice(0, 120)}`.trim() : 'no status';
        continue;
      }
      if (this.#perFrame) {
        // The fin bit and the opcode make no difference to the kubelet's reader.
        if (f.payload.length > 0) out.data.push({ channel: f.payload[0]!, data: f.payload.subarray(1) });
        continue;
      }
      if (f.opcode === Opcode.Continuation) {
        if (this.#channel === undefined) throw new ProtocolError('WebSocket frame: a continuation frame with no message to continue', ErrorCode.PROTOCOL_VIOLATION);
      } else {
        if (this.#channel !== undefined) throw new ProtocolError('WebSocket frame: a new message before the previous one ended', ErrorCode.PROTOCOL_VIOLATION);
        this.#channel = null;
      }
      let payload = f.payload;
      if (this.#channel === null && payload.length > 0) {
        this.#channel = payload[0]!;
        payload = payload.subarray(1);
      }
      if (this.#channel !== null && this.#channel !== undefined && (payload.length > 0 || f.fin)) out.data.push({ channel: this.#channel, data: payload });
      if (f.fin) this.#channel = undefined;
    }
    return out;
  }
}

/**
 * The subprotocol the API server chose in its 101 answer, when it is one Agate offered and reads;
 * otherwise why the stream cannot be read.
 */
export function chosenProtocol(headText: string, offered: readonly string[]): { ok: true; protocol: string } | { ok: false; why: string } {
  const upgrade = /\r\nupgrade:[ \t]*([^\r]*)/i.exec(headText)?.[1]?.trim() ?? '';
  if (upgrade.toLowerCase() !== 'websocket') return { ok: false, why: `the API server switched to "${upgrade.slice(0, 40)}", not the WebSocket asked for` };
  if (/\r\nsec-websocket-extensions:/i.test(headText)) return { ok: false, why: 'the API server negotiated a WebSocket extension, which Agate did not offer and cannot read' };
  const protocol = /\r\nsec-websocket-protocol:[ \t]*([^\r]*)/i.exec(headText)?.[1]?.trim() ?? '';
  if (!offered.includes(protocol)) return { ok: false, why: `the API server chose the subprotocol "${protocol.slice(0, 40)}", not one Agate offered and reads` };
  return { ok: true, protocol };
}

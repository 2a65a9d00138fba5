import { createHash, hash, randomUUID, type Hash } from 'node:crypto';
import { nowMicros, type Command, type Response } from '../../../../schemas/src/events.js';
import type { Masker } from '../masking/masker.js';
import { channelName, type ChannelData } from './channels.js';
import { LineWindow } from './line-window.js';
import { cut } from './recording.js';

const STREAM_COLUMNS = ['time', 'channel', 'bytes', 'digest', 'data'];
const CHANNEL_COLUMNS = ['channel', 'messages', 'bytes', 'digest'];

/** Where the recording goes: `emit` resolves once durable (rejects when it cannot be recorded). */
interface StreamSink {
  emit(event: Response): Promise<void>;
  emitLogged(event: Response): void;
}

interface StreamRecordingOptions {
  command: Command;
  sink: StreamSink;
  audit: Masker;
  /** Each recorded message's text is cut to this many characters (its digest covers all of it). */
  valueChars: number;
  /** Rows of output held before they are published. */
  chunkRows?: number;
  /** Text waiting for a line end longer than this is recorded by the next {@link StreamRecording.flush}. */
  idleMs?: number;
  now?: () => number;
}

/** Channels whose bytes are text a secret may be split across: stdin, stdout, stderr. */
const TEXT_CHANNELS: ReadonlySet<number> = new Set([0, 1, 2]);

/**
 * The recording of an exec or attach stream, channel by channel, as Response events of its
 * command (`stream part N`), one row per message: seconds since the start, the channel, its
 * size, and the text it completes with that text's digest. The text of stdin, stdout and stderr
 * is held back per channel until a line end ({@link LineWindow}), so a secret split across
 * messages is masked whole; a row whose message ends no line has no text and no digest (a
 * digest of a few bytes would give them away), and text left waiting longer than `idleMs` gets a
 * row of its own (size 0). Text is masked with the audit rules and cut to `valueChars`; binary
 * data is described, not copied. What the client sends is recorded before it is forwarded
 * ({@link input} resolves once durable); what the pod sends is batched and recorded as it
 * passes. The totals per channel close the stream ({@link summary}), their digests over every byte.
 */
export class StreamRecording {
  readonly #o: Required<Pick<StreamRecordingOptions, 'chunkRows' | 'idleMs' | 'now'>> & StreamRecordingOptions;
  readonly #start: number;
  readonly #channels = new Map<number, { messages: number; bytes: number; hash: Hash; window?: LineWindow }>();
  #rows: (string | null)[][] = [];
  #bytes = 0;
  #masked = 0;
  #part = 0;

  constructor(options: StreamRecordingOptions) {
    this.#o = { chunkRows: 64, idleMs: 1000, now: () => performance.now(), ...options };
    this.#start = this.#o.now();
  }

  /** The client's messages, recorded (with the output before them) before they may be forwarded. */
  input(data: readonly ChannelData[]): Promise<void> {
    for (const d of data) this.#row(d);
    const event = this.#event();
    return event === undefined ? Promise.resolve() : this.#o.sink.emit(event);
  }

  /** The pod's messages, as they pass to the client. */
  output(data: readonly ChannelData[]): void {
    for (const d of data) this.#row(d);
    if (this.#rows.length >= this.#o.chunkRows || this.#bytes >= 32 * 1024) this.flush();
  }

  /**
   * Publishes what is held (a quiet stream is not kept in memory until it ends), with the text
   * that has waited `idleMs` for a line end (a prompt stays without one).
   */
  flush(): void {
    const now = this.#o.now();
    for (const [channel, c] of this.#channels) this.#settled(channel, c.window?.idle(now, this.#o.idleMs));
    const event = this.#event();
    if (event !== undefined) this.#o.sink.emitLogged(event);
  }

  /** Every channel's messages, bytes and digest, for the stream's closing Response. */
  summary(): { columns: string[]; sample: (string | null)[][]; rows: number } {
    for (const [channel, c] of this.#channels) this.#settled(channel, c.window?.take());
    this.flush();
    const sample = [...this.#channels].sort(([a], [b]) => a - b).map(([ch, c]) => [channelName(ch), String(c.messages), String(c.bytes), `sha256:${c.hash.copy().digest('hex')}`]);
    return { columns: CHANNEL_COLUMNS, sample, rows: sample.length };
  }

  #row({ channel, data }: ChannelData): void {
    let c = this.#channels.get(channel);
    if (c === undefined) this.#channels.set(channel, (c = { messages: 0, bytes: 0, hash: createHash('sha256') }));
    c.messages += 1;
    c.bytes += data.length;
    c.hash.update(data);
    this.#bytes += data.length;
    let text: Buffer | undefined = data;
    if (TEXT_CHANNELS.has(channel)) text = (c.window ??= new LineWindow()).push(data, this.#o.now());
    this.#rows.push([this.#time(), channelName(channel), String(data.length), ...this.#textCells(text)]);
  }

  /** A row of its own for text settled apart from any message (idle, or the stream's end). */
  #settled(channel: number, text: Buffer | undefined): void {
    if (text !== undefined) this.#rows.push([this.#time(), channelName(channel), '0', ...this.#textCells(text)]);
  }

  #textCells(text: Buffer | undefined): [string | null, string] {
    return text === undefined ? [null, ''] : [`sha256:${hash('sha256', text, 'hex')}`, this.#text(text)];
  }

  #time(): string {
    return String(Math.round(this.#o.now() - this.#start) / 1000);
  }

  #text(data: Buffer): string {
    let text: string;
    try {
      text = UTF8.decode(data);
    } catch {
      return `[${data.length} bytes, not UTF-8]`;
    }
    const masked = this.#o.audit.maskText(text);
    this.#masked += masked.count;
    return cut(masked.text, this.#o.valueChars);
  }

  #event(): Response | undefined {
    if (this.#rows.length === 0) return undefined;
    const { command } = this.#o;
    const event: Response = {
      type: 'Response', event_id: randomUUID(), time: nowMicros(), session_id: command.session_id, command_id: command.event_id,
      status: 'ok', command_tag: `stream part ${++this.#part}`, rows: this.#rows.length, bytes: this.#bytes, duration_us: 0,
      error_code: null, error_message: null, digest: null, columns: STREAM_COLUMNS, sample: this.#rows, masked_values: this.#masked,
    };
    this.#rows = [];
    this.#bytes = 0;
    this.#masked = 0;
    return event;
  }
}

const UTF8 = new TextDecoder('utf-8', { fatal: true });

import type { Masker } from '../masking/masker.js';

/** asciicast v2 event codes: terminal output, keyboard input, resize (`COLSxROWS`). */
type CastCode = 'o' | 'i' | 'r';
/** One asciicast v2 event line: seconds since the recording started, code, data. */
type CastEvent = [time: number, code: CastCode, data: string];

/** A batch of recorded events, masked, ready to be published as one event. */
export interface CastChunk {
  part: number;
  events: CastEvent[];
  /** Raw bytes the chunk covers (before masking). */
  bytes: number;
  /** Spans the masker replaced. */
  masked: number;
}

interface CastRecorderOptions {
  masker: Masker;
  /** Called with each full chunk; the caller publishes it (in order). */
  flush: (chunk: CastChunk) => void;
  /** Data bytes per chunk before it is flushed. */
  chunkBytes?: number;
  /** Bytes of one stream kept back waiting for a line end, so a secret is masked whole. */
  lineBytes?: number;
  /** Clock in milliseconds (tests pass their own). */
  now?: () => number;
}

/**
 * Records a terminal session as asciicast v2 events, masked before they leave the proxy. Output
 * and input are each held back until a line end (or `lineBytes`), so a token printed or pasted
 * across several SSH packets is still seen whole by the masker; an event's time is that of its
 * first byte. Memory is bounded by `lineBytes` per stream plus one chunk.
 */
export class CastRecorder {
  readonly #masker: Masker;
  readonly #flush: (chunk: CastChunk) => void;
  readonly #chunkBytes: number;
  readonly #lineBytes: number;
  readonly #now: () => number;
  readonly #start: number;
  readonly #pending = { o: { text: '', at: 0 }, i: { text: '', at: 0 } };
  readonly #decoders = { o: new TextDecoder('utf-8'), i: new TextDecoder('utf-8') };
  #events: CastEvent[] = [];
  #bytes = 0;
  #masked = 0;
  #part = 0;
  totalBytes = 0;

  constructor(options: CastRecorderOptions) {
    this.#masker = options.masker;
    this.#flush = options.flush;
    this.#chunkBytes = options.chunkBytes ?? 32 * 1024;
    this.#lineBytes = options.lineBytes ?? 4096;
    this.#now = options.now ?? (() => performance.now());
    this.#start = this.#now();
  }

  output(data: Buffer): void {
    this.#take('o', data);
  }

  input(data: Buffer): void {
    this.#take('i', data);
  }

  resize(cols: number, rows: number): void {
    this.#settle('o');
    this.#settle('i');
    this.#push([this.#time(), 'r', `${cols}x${rows}`], 0);
  }

  /**
   * Publishes what was recorded so far, so a quiet session is not held in memory (or lost with
   * the proxy) until 32 KiB accumulate. Text waiting for a line end is included once it has
   * waited `idleMs`: a prompt stays on screen without a newline.
   */
  tick(idleMs = 1000): void {
    const now = this.#time();
    for (const code of ['o', 'i'] as const) {
      const p = this.#pending[code];
      if (p.text !== '' && now - p.at >= idleMs / 1000) this.#settle(code);
    }
    this.#emit();
  }

  /** Emits everything held back; call when the session ends. */
  end(): void {
    this.#settle('o', true);
    this.#settle('i', true);
    this.#emit();
  }

  #take(code: 'o' | 'i', data: Buffer): void {
    this.totalBytes += data.length;
    this.#bytes += data.length;
    const p = this.#pending[code];
    if (p.text === '') p.at = this.#time();
    // stream: a UTF-8 sequence split between packets stays whole.
    p.text += this.#decoders[code].decode(data, { stream: true });
    const cut = Math.max(p.text.lastIndexOf('\n'), p.text.lastIndexOf('\r'));
    if (cut >= 0) this.#settle(code, false, cut + 1);
    if (p.text.length >= this.#lineBytes) this.#settle(code);
  }

  /** Turns held-back text (up to `upTo`) into an event. */
  #settle(code: 'o' | 'i', final = false, upTo?: number): void {
    const p = this.#pending[code];
    if (final) p.text += this.#decoders[code].decode();
    const text = upTo === undefined ? p.text : p.text.slice(0, upTo);
    if (text === '') return;
    p.text = p.text.slice(text.length);
    const at = p.at;
    p.at = this.#time();
    const masked = this.#masker.maskText(text);
    this.#masked += masked.count;
    this.#push([at, code, masked.text], text.length);
  }

  #push(event: CastEvent, size: number): void {
    this.#events.push(event);
    if (this.#bytes >= this.#chunkBytes || size >= this.#chunkBytes) this.#emit();
  }

  #emit(): void {
    if (this.#events.length === 0) return;
    // asciicast requires non-decreasing times; held-back input may start before earlier output.
    this.#events.sort((a, b) => a[0] - b[0]);
    this.#flush({ part: ++this.#part, events: this.#events, bytes: this.#bytes, masked: this.#masked });
    this.#events = [];
    this.#bytes = 0;
    this.#masked = 0;
  }

  #time(): number {
    return Math.round(this.#now() - this.#start) / 1000;
  }
}

/** Bytes one channel may hold back waiting for a line end (as the SSH recording holds a terminal's). */
export const LINE_WINDOW_BYTES = 4096;

/**
 * A channel's bytes held back until a line end, so that a secret a client (or a process) sent in
 * two messages reaches the masker whole. What is given back (settled) ends at the last line end
 * (`\n` or `\r`) of a message, or is all of it once `max` bytes are held (but a character the
 * message's end cut short); the rest waits for the next message, {@link idle} or {@link take}.
 * Memory is bounded by `max` plus one message.
 */
export class LineWindow {
  readonly #max: number;
  #held: Buffer[] = [];
  #size = 0;
  /** When the first byte still held came (the caller's clock). */
  #since = 0;

  constructor(max = LINE_WINDOW_BYTES) {
    this.#max = max;
  }

  /** Adds one message; the bytes settled by it, or undefined while all of it is held. */
  push(data: Buffer, now: number): Buffer | undefined {
    if (data.length === 0) return undefined;
    if (this.#size === 0) this.#since = now;
    const end = Math.max(data.lastIndexOf(LF), data.lastIndexOf(CR));
    let settled: Buffer | undefined;
    if (end >= 0) {
      settled = this.#join(data.subarray(0, end + 1));
      this.#keep(data.subarray(end + 1), now);
    } else {
      this.#held.push(data);
      this.#size += data.length;
    }
    if (this.#size < this.#max) return settled;
    // Over the bound: all of it goes, but a character cut short by the message's end.
    const held = this.#join();
    const cut = wholeChars(held);
    this.#keep(held.subarray(cut), now);
    return settled === undefined ? held.subarray(0, cut) : Buffer.concat([settled, held.subarray(0, cut)]);
  }

  /** Everything held, once it has waited `ms` (a prompt stays without a line end); else undefined. */
  idle(now: number, ms: number): Buffer | undefined {
    return this.#size > 0 && now - this.#since >= ms ? this.take() : undefined;
  }

  /** Everything held (the stream ended), or undefined when nothing is. */
  take(): Buffer | undefined {
    if (this.#size === 0) return undefined;
    const held = this.#join();
    this.#keep(EMPTY, 0);
    return held;
  }

  /** What is held followed by `tail`; what is held is then nothing. */
  #join(tail?: Buffer): Buffer {
    const parts = tail === undefined ? this.#held : [...this.#held, tail];
    const out = parts.length === 1 ? parts[0]! : Buffer.concat(parts);
    this.#held = [];
    this.#size = 0;
    return out;
  }

  #keep(rest: Buffer, now: number): void {
    this.#held = rest.length === 0 ? [] : [rest];
    this.#size = rest.length;
    this.#since = now;
  }
}

const LF = 0x0a;
const CR = 0x0d;
const EMPTY = Buffer.alloc(0);

/** The length of `b` without a UTF-8 sequence its end cuts short (binary data: all of it). */
function wholeChars(b: Buffer): number {
  for (let p = b.length - 1; p >= 0 && p >= b.length - 3; p--) {
    const byte = b[p]!;
    if ((byte & 0xc0) === 0x80) continue; // a continuation byte: look further back
    const needs = byte >= 0xf8 ? 1 : byte >= 0xf0 ? 4 : byte >= 0xe0 ? 3 : byte >= 0xc0 ? 2 : 1;
    return b.length - p < needs ? p : b.length;
  }
  return b.length;
}

import type { Readable } from 'node:stream';
import { stringDeserializer, type Message } from '@platformatic/kafka';

/** A record as the bus reads it: header names as strings; key, header values and value as the bytes sent. */
export type BusRecord = Message<Buffer | undefined, Buffer | undefined, string, Buffer | undefined>;

/**
 * Header names back to strings; keys and header values stay bytes, read only where wanted (the
 * verdict consumer's stream: the subscriptions fetch themselves, kafka-fetch-loop.ts).
 */
export const BUS_DESERIALIZERS = {
  headerKey: (b?: Buffer) => stringDeserializer(b) ?? '',
};

/**
 * Reads a consumer's record stream in the bus's batches: whatever the stream has buffered (what
 * the last fetches brought), up to a limit, and waits only when it has nothing. The stream keeps
 * fetching while its buffer is under its high-water mark, so a slow handler holds back the fetches
 * (backpressure) instead of letting records pile up.
 */
export class RecordReader {
  #wake: (() => void) | undefined;
  #error: Error | undefined;
  #ended = false;

  constructor(private readonly stream: Readable) {
    // A 'readable' listener for the stream's life: it keeps the stream fetching between reads.
    stream.on('readable', () => this.#poke());
    stream.on('error', (err: Error) => {
      this.#error = err;
      this.#poke();
    });
    for (const end of ['end', 'close'] as const) {
      stream.on(end, () => {
        this.#ended = true;
        this.#poke();
      });
    }
  }

  /** The next records (at most `max`), or null once the stream ended; throws the stream's error. */
  async next(max: number): Promise<BusRecord[] | null> {
    for (;;) {
      const out: BusRecord[] = [];
      while (out.length < max) {
        const record = this.stream.read() as BusRecord | null;
        if (record === null) break;
        out.push(record);
      }
      if (out.length > 0) return out;
      if (this.#error !== undefined) throw this.#error;
      if (this.#ended) return null;
      await new Promise<void>((resolve) => (this.#wake = resolve));
    }
  }

  #poke(): void {
    const wake = this.#wake;
    this.#wake = undefined;
    wake?.();
  }
}

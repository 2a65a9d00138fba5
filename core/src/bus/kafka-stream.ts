import type { Readable } from 'node:stream';
import { stringDeserializer, type Message } from '@platformatic/kafka';

/** A record as the bus reads it: header names as strings; key, header values and value as the bytes sent. */
export type BusRecord = Message<Buffer | undefined, Buffer | undefined, string, Buffer | undefined>;

/**
 * Header names back to strings; keys and header values stay bytes, read only where wanted: a
 * subscription reads every record of the events topic and skips most by their type header,
 * compared as bytes (TypeFilter), and uses neither the key nor the traceparent.
 */
export const BUS_DESERIALIZERS = {
  headerKey: (b?: Buffer) => stringDeserializer(b) ?? '',
};

/** Event type names, matched as the bytes of a record's `agate-type` header. */
export class TypeFilter {
  readonly #byLength = new Map<number, Buffer[]>();

  constructor(types: Iterable<string>) {
    for (const t of types) {
      const bytes = Buffer.from(t);
      const same = this.#byLength.get(bytes.length);
      if (same === undefined) this.#byLength.set(bytes.length, [bytes]);
      else same.push(bytes);
    }
  }

  /** Whether a type header names one of the types; a record without one is admitted (its decoded type tells). */
  admits(header: Buffer | undefined): boolean {
    if (header === undefined) return true;
    const same = this.#byLength.get(header.length);
    if (same === undefined) return false;
    for (const bytes of same) if (bytes.equals(header)) return true;
    return false;
  }
}

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

/** Records in their partitions, each partition's in the order read. */
export function byPartition(records: readonly BusRecord[]): Map<number, BusRecord[]> {
  const out = new Map<number, BusRecord[]>();
  for (const r of records) {
    const list = out.get(r.partition);
    if (list === undefined) out.set(r.partition, [r]);
    else list.push(r);
  }
  return out;
}

import type { KafkaRecord } from '@platformatic/kafka';

/**
 * A record's event type, as its publisher wrote it in the `agate-type` header, read as bytes: a
 * subscription reads every record of the events topic and skips most by this header alone,
 * before decoding anything (kafka-fetch-loop.ts hands records over as the client parsed them).
 */
const TYPE_HEADER = Buffer.from('agate-type');

/** A record's `agate-type` header, as bytes; undefined when it has none. */
export function typeHeaderOf(record: KafkaRecord): Buffer | undefined {
  for (const [name, value] of record.headers) {
    if (name !== null && name.length === TYPE_HEADER.length && name.equals(TYPE_HEADER)) return value ?? undefined;
  }
  return undefined;
}

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

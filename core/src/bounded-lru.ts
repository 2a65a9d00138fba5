/**
 * A map that keeps at most `capacity` entries, dropping the least recently used one past it: the
 * memo for work repeated on the hot path (the same statement text read again and again), bounded
 * so that a client sending endless distinct texts costs a fixed amount of memory.
 */
export class BoundedLru<K, V> {
  readonly #entries = new Map<K, V>();
  readonly #capacity: number;

  constructor(capacity: number) {
    if (!Number.isInteger(capacity) || capacity < 1) throw new RangeError(`capacity must be a positive integer, got ${capacity}`);
    this.#capacity = capacity;
  }

  /** The entry, now marked most recently used; undefined when absent. */
  get(key: K): V | undefined {
    const hit = this.#entries.get(key);
    if (hit !== undefined) {
      // Map iteration order is insertion order: re-inserting marks the entry most recent.
      this.#entries.delete(key);
      this.#entries.set(key, hit);
    }
    return hit;
  }

  set(key: K, value: V): void {
    this.#entries.delete(key);
    this.#entries.set(key, value);
    if (this.#entries.size > this.#capacity) this.#entries.delete(this.#entries.keys().next().value!);
  }

  get size(): number {
    return this.#entries.size;
  }
}

/** Bytes appended chunk by chunk into one buffer that grows geometrically (no copy per chunk). */
export class GrowBuffer {
  #buf = Buffer.alloc(0);
  #length = 0;

  get length(): number {
    return this.#length;
  }

  append(chunk: Buffer): void {
    if (this.#length + chunk.length > this.#buf.length) {
      const next = Buffer.alloc(Math.max(this.#length + chunk.length, this.#buf.length * 2, 4096));
      this.#buf.copy(next, 0, 0, this.#length);
      this.#buf = next;
    }
    chunk.copy(this.#buf, this.#length);
    this.#length += chunk.length;
  }

  /** The bytes so far (a view: valid until the next append). */
  view(): Buffer {
    return this.#buf.subarray(0, this.#length);
  }
}

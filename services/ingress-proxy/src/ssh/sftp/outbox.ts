import { adjoins } from '../../byte-views.js';

/**
 * Bytes on their way to one stream, gathered while a chunk's frames are relayed and written in as
 * few writes as they allow: views that sit side by side in memory (the pieces the framer cut from
 * one chunk) go out as one, so a relayed chunk leaves as the one SSH packet it came in as rather
 * than as a header, a body and the next packet's start.
 */
export class Outbox {
  #pending: Buffer | undefined;

  constructor(private readonly write: (bytes: Buffer) => void) {}

  add(bytes: Buffer): void {
    const p = this.#pending;
    if (p !== undefined && adjoins(p, bytes)) {
      this.#pending = Buffer.from(p.buffer, p.byteOffset, p.length + bytes.length);
      return;
    }
    if (p !== undefined) this.write(p);
    this.#pending = bytes;
  }

  /** Writes what is gathered; call before waiting on anything and at the end of each chunk. */
  flush(): void {
    const p = this.#pending;
    if (p === undefined) return;
    this.#pending = undefined;
    this.write(p);
  }
}

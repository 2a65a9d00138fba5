import type { Writable } from 'node:stream';

/**
 * Writes towards the client, counted, so a relay can close the channel (exit status, EOF) only
 * after ssh2 has sent every byte written before it.
 */
export class ClientWrites {
  #pending = 0;
  #onFlushed: (() => void) | undefined;

  readonly #written = (): void => {
    this.#pending -= 1;
    if (this.#pending === 0) this.#onFlushed?.();
  };

  /** Writes `chunk` to `to`; false when `to` wants the caller to wait for 'drain'. */
  write(to: Writable | NodeJS.WritableStream, chunk: Buffer): boolean {
    this.#pending += 1;
    return (to as Writable).write(chunk, this.#written);
  }

  /** Runs `fn` now when nothing is in flight, otherwise once the last pending write completes. */
  whenFlushed(fn: () => void): void {
    if (this.#pending === 0) fn();
    else this.#onFlushed = fn;
  }
}

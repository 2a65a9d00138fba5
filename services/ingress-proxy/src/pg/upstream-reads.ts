import type { OnReadOpts, Socket } from 'node:net';

/** Bytes asked of the kernel per read, as Node's own reads do. */
const READ_SIZE = 64 * 1024;
/** A read at least this large (a result streaming) is handed over whole instead of copied. */
const HAND_OVER = 16 * 1024;

type Listener = (chunk: Buffer) => void;

/**
 * Reads a clear-text upstream socket into one reused buffer (net's `onread`), instead of Node's
 * default of a fresh 64 KiB allocation, shrunk to size, and a trip through the stream's buffering
 * for every read: a statement's reply cost a C allocation that fragmented the allocator's arenas
 * and half a KiB of objects. With `onread`, `pause()` also stops reading from the kernel.
 *
 * Every chunk a listener gets is its own, as a 'data' chunk is (BackendFrameReader keeps views
 * into it and the relay writes them out): a small read is copied out of the reused buffer, a large
 * one is handed over whole and the next read gets a new buffer, so a streamed result is not
 * copied. Chunks read while nobody listens wait, in order, for the next listener.
 */
export class UpstreamReads {
  #buffer = Buffer.allocUnsafeSlow(READ_SIZE);
  #listener: Listener | undefined;
  #waiting: Buffer[] = [];

  /** For `net.connect({ onread })`. */
  readonly options: OnReadOpts = {
    buffer: () => this.#buffer,
    // true: go on reading (false would pause the socket).
    callback: (n: number) => (this.#read(n), true),
  };

  /** Sends every later chunk, and first any that waited, to `listener`; undefined makes them wait. */
  listen(listener: Listener | undefined): void {
    this.#listener = listener;
    while (this.#listener !== undefined && this.#waiting.length > 0) this.#listener(this.#waiting.shift()!);
  }

  #read(n: number): void {
    if (n <= 0) return;
    let chunk: Buffer;
    if (n >= HAND_OVER) {
      chunk = this.#buffer.subarray(0, n);
      this.#buffer = Buffer.allocUnsafeSlow(READ_SIZE);
    } else {
      chunk = Buffer.allocUnsafe(n);
      this.#buffer.copy(chunk, 0, 0, n);
    }
    if (this.#listener === undefined) this.#waiting.push(chunk);
    else this.#listener(chunk);
  }
}

/**
 * Sends `socket`'s chunks to `listener`, through `reads` when the socket was opened with them,
 * else as 'data' events. Returns what stops it.
 */
export function onChunks(socket: Socket, reads: UpstreamReads | undefined, listener: Listener): () => void {
  if (reads !== undefined) {
    reads.listen(listener);
    return () => reads.listen(undefined);
  }
  socket.on('data', listener);
  return () => socket.off('data', listener);
}

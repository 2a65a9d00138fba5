import type { ClientChannel, ServerChannel } from 'ssh2';
import { AgateError, ErrorCode, ProtocolError } from '../../../../../core/src/errors.js';
import { ClientWrites } from '../client-writes.js';
import { SftpEngine } from './engine.js';
import type { SftpHooks, SftpOutcome } from './hooks.js';

export type { FileRequest, FileResult } from './hooks.js';

/**
 * Relays an sftp channel packet by packet. Opens, removes, renames, mkdir/rmdir, setstat and
 * links are decided before they reach the target (a refused one gets SSH_FX_PERMISSION_DENIED
 * with Agate's reason); reads and writes are accounted to their open file, whose bytes and
 * digest are recorded when it is closed. Everything else is forwarded the moment it arrives,
 * and large writes and data replies piece by piece (their data hashed on the way), so the
 * requests a client keeps in flight stay in flight. The client is not read while a decision is
 * pending or the target is behind; the target is paused while the client is behind, so the SSH
 * window follows the slower side.
 */
export function relaySftp<T>(client: ServerChannel, upstream: ClientChannel, hooks: SftpHooks<T>): Promise<SftpOutcome> {
  return new Promise((resolve) => new SftpChannelRelay(client, upstream, hooks, resolve).start());
}

/** The socket side of the relay: wires both channels to an `SftpEngine` and applies backpressure. */
class SftpChannelRelay<T> {
  readonly #engine: SftpEngine<T>;
  readonly #writes = new ClientWrites();
  /** Reasons the client is not being read (a pending decision, a full target channel); paused while above 0. */
  #holds = 0;
  #targetFull = false;
  /** The last decision still pending; the client's EOF must reach the target after it. */
  #decided: Promise<void> = Promise.resolve();
  #exitCode: number | null = null;
  #signal: string | null = null;
  #finished = false;
  #failure: AgateError | undefined;

  constructor(
    private readonly client: ServerChannel,
    private readonly upstream: ClientChannel,
    hooks: SftpHooks<T>,
    private readonly resolve: (outcome: SftpOutcome) => void,
  ) {
    this.#engine = new SftpEngine(hooks, {
      toTarget: (bytes) => this.#toTarget(bytes),
      toClient: (bytes) => this.#writes.write(client, bytes),
      hold: () => this.#hold(),
      release: () => this.#release(),
    });
  }

  start(): void {
    const { client, upstream } = this;
    client.on('data', (chunk: Buffer) => this.#fromClient(chunk));
    client.on('end', () => void this.#decided.then(() => upstream.end()));
    upstream.on('data', (chunk: Buffer) => this.#fromTarget(chunk));
    upstream.stderr.on('data', (chunk: Buffer) => client.stderr.write(chunk));
    upstream.on('exit', (code: number | null, sig?: string) => {
      if (typeof code === 'number') this.#exitCode = code;
      else if (sig !== undefined) this.#signal = sig;
    });
    client.resume(); // paused while the channel itself was decided
    upstream.on('close', () => {
      // The exit status must follow every byte of output, so wait until ssh2 has sent them.
      this.#writes.whenFlushed(() => {
        if (this.#exitCode !== null) client.exit(this.#exitCode);
        client.end();
        this.#finish(false);
      });
    });
    client.on('close', () => {
      if (!this.#finished) upstream.close();
      this.#finish(!this.#finished && this.#failure === undefined);
    });
  }

  #fromClient(chunk: Buffer): void {
    try {
      const waiting = this.#engine.fromClient(chunk);
      if (waiting !== undefined) this.#decided = waiting.catch((err: unknown) => this.#fail(err));
    } catch (err) {
      this.#fail(err);
    }
  }

  #fromTarget(chunk: Buffer): void {
    try {
      if (this.#engine.fromTarget(chunk)) return;
      this.upstream.pause();
      this.client.once('drain', () => this.upstream.resume());
    } catch (err) {
      this.#fail(err);
    }
  }

  #toTarget(bytes: Buffer): void {
    if (this.upstream.write(bytes) || this.#targetFull) return;
    this.#targetFull = true;
    this.#hold();
    this.upstream.once('drain', () => {
      this.#targetFull = false;
      this.#release();
    });
  }

  #hold(): void {
    if (this.#holds++ === 0) this.client.pause();
  }

  #release(): void {
    if (--this.#holds === 0 && !this.#finished) this.client.resume();
  }

  /** A protocol error: the client is told why on stderr and both channels close. */
  #fail(err: unknown): void {
    this.#failure = err instanceof AgateError ? err : new ProtocolError(`sftp relay failed: ${String(err)}`, ErrorCode.PROTOCOL_VIOLATION, { cause: err });
    this.client.stderr.write(`Agate closed the sftp channel: ${this.#failure.message}\n`);
    this.client.close();
    this.upstream.close();
    // Recorded now: ssh2 reports a server channel closed only once its input was read to the
    // end, and the client may be paused here (a decision was pending), so 'close' may never come.
    this.#finish(false);
  }

  #finish(clientGone: boolean): void {
    if (this.#finished) return;
    this.#finished = true;
    this.#engine.stop();
    const { bytesUp, bytesDown } = this.#engine.state;
    // No digest of the channel itself: each file has its own, and hashing the stream twice halves download speed.
    this.resolve({ exitCode: this.#exitCode, signal: this.#signal, bytes: bytesDown, bytesUp, digest: null, clientGone, error: this.#failure });
  }
}

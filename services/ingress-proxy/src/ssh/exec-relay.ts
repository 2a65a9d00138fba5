import { createHash } from 'node:crypto';
import type { AgateError } from '../../../../core/src/errors.js';
import type { Readable, Writable } from 'node:stream';
import type { ClientChannel, ServerChannel } from 'ssh2';
import { ChannelTally } from './channel-tally.js';
import { ClientWrites } from './client-writes.js';

/** How a relayed command ended, and what reached the client. */
export interface ExecOutcome {
  /** Exit status, or null when the command died of a signal or the channel closed without one. */
  exitCode: number | null;
  signal: string | null;
  /** With `signal`: the target said the process dumped core. */
  coreDumped?: boolean;
  /** Bytes of stdout and stderr delivered to the client. */
  bytes: number;
  /** Bytes the client sent to the target (stdin; for sftp, the requests and uploaded data). */
  bytesUp: number;
  /** `sha256:<hex>` over stdout and stderr in delivery order; null when nothing came back. */
  digest: string | null;
  /** `sha256:<hex>` over what the client sent (an upload: `cat > f`, rsync, a git pack); set by relayExec only. */
  digestUp?: string | null;
  /** Set when the client went away before the command finished. */
  clientGone: boolean;
  /** Set when Agate itself ended the channel (an sftp protocol violation, a shell line it could not take back); both sides were closed. */
  error?: AgateError;
}

/** What a caller can hook into an exec relay. */
export interface ExecTaps {
  /** Sees each chunk the client sends (stdin), before it is forwarded. */
  up?: (chunk: Buffer) => void;
  /** Sees each chunk of stdout, before it is forwarded. */
  down?: (chunk: Buffer) => void;
  /** false for channels that carry no exit status (a forwarded TCP connection). */
  exitStatus?: boolean;
  /**
   * Stands between the client's stdin and the target (a push held until decided): takes what the
   * client sends and writes on to `upstream`; `reply` writes to the client in order with stdout.
   */
  gate?: (upstream: Writable, reply: (chunk: Buffer) => void) => Writable;
}

/**
 * Pipes one exec (or subsystem) channel between the client and the target: stdin up, stdout and stderr down,
 * then the exit status. Backpressure follows the consumer: a source is paused while its
 * destination's buffer is full, so ssh2 stops granting window to the side that is ahead.
 */
export function relayExec(client: ServerChannel, upstream: ClientChannel, taps: ExecTaps = {}): Promise<ExecOutcome> {
  return new Promise((resolve) => new ExecRelay(client, upstream, taps, resolve).start());
}

/** One exec channel's relay: its state in fields, one method per direction. */
class ExecRelay {
  readonly #tally = new ChannelTally();
  readonly #hashUp = createHash('sha256');
  readonly #writes = new ClientWrites();
  #finished = false;
  /** A forwarded TCP connection's target said EOF: the client closing after it is a clean end. */
  #upstreamEnded = false;

  constructor(
    private readonly client: ServerChannel,
    private readonly upstream: ClientChannel,
    private readonly taps: ExecTaps,
    private readonly resolve: (outcome: ExecOutcome) => void,
  ) {}

  start(): void {
    const { client, upstream, taps } = this;
    if (taps.down !== undefined) upstream.on('data', taps.down);
    this.#down(upstream, client);
    this.#down(upstream.stderr, client.stderr);

    const sink = taps.gate?.(upstream, (chunk) => void this.#writes.write(client, chunk)) ?? upstream;
    client.on('data', (chunk: Buffer) => this.#up(chunk, sink));
    client.on('end', () => sink.end());
    client.resume(); // the session paused it while the verdict was pending

    // A forwarded TCP connection half-closes like TCP: the target's EOF is passed on once its
    // bytes are, so the far end sees the close (an exec's EOF waits for its exit status instead).
    if (taps.exitStatus === false) {
      upstream.on('end', () => {
        this.#upstreamEnded = true;
        this.#writes.whenFlushed(() => client.end());
      });
    }

    this.#tally.watchExit(upstream);
    upstream.on('close', () => {
      // The exit status must follow every byte of output, so wait until ssh2 has sent them.
      this.#writes.whenFlushed(() => {
        // A forwarded TCP channel has no exit status to send.
        if (taps.exitStatus !== false) this.#tally.sendExit(client);
        client.end();
        this.#finish(false);
      });
    });
    client.on('close', () => {
      if (!this.#finished) upstream.close();
      // Both ends of a forwarded connection said EOF: the client closing first is a clean end.
      this.#finish(!this.#upstreamEnded);
    });
  }

  /** Target output to the client; the source pauses while the client's buffer is full. */
  #down(from: Readable, to: Writable): void {
    from.on('data', (chunk: Buffer) => {
      this.#tally.delivered(chunk);
      if (!this.#writes.write(to, chunk)) {
        from.pause();
        to.once('drain', () => from.resume());
      }
    });
  }

  /** Client input to the target (through the gate, if any); the client pauses while it is full. */
  #up(chunk: Buffer, sink: Writable): void {
    this.#tally.bytesUp += chunk.length;
    this.#hashUp.update(chunk);
    this.taps.up?.(chunk);
    if (!sink.write(chunk)) {
      this.client.pause();
      sink.once('drain', () => this.client.resume());
    }
  }

  #finish(clientGone: boolean): void {
    if (this.#finished) return;
    this.#finished = true;
    const { exitCode, signal, coreDumped, bytes, bytesUp } = this.#tally;
    const digestUp = bytesUp === 0 ? null : `sha256:${this.#hashUp.digest('hex')}`;
    this.resolve({ exitCode, signal, coreDumped, bytes, bytesUp, digest: this.#tally.digest(), digestUp, clientGone });
  }
}

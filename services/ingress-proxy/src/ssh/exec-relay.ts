import { createHash } from 'node:crypto';
import type { Readable, Writable } from 'node:stream';
import type { ClientChannel, ServerChannel } from 'ssh2';
import { ClientWrites } from './client-writes.js';

/** How a relayed command ended, and what reached the client. */
export interface ExecOutcome {
  /** Exit status, or null when the command died of a signal or the channel closed without one. */
  exitCode: number | null;
  signal: string | null;
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
}

/**
 * Pipes one exec (or subsystem) channel between the client and the target: stdin up, stdout and stderr down,
 * then the exit status. Backpressure follows the consumer: a source is paused while its
 * destination's buffer is full, so ssh2 stops granting window to the side that is ahead.
 */
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

export function relayExec(client: ServerChannel, upstream: ClientChannel, taps: ExecTaps = {}): Promise<ExecOutcome> {
  return new Promise((resolve) => {
    const hash = createHash('sha256');
    const hashUp = createHash('sha256');
    let bytes = 0;
    let bytesUp = 0;
    const writes = new ClientWrites();
    let exitCode: number | null = null;
    let signal: string | null = null;
    let finished = false;

    const tap = (chunk: Buffer) => {
      hash.update(chunk);
      bytes += chunk.length;
    };
    const down = (from: Readable, to: Writable) => {
      from.on('data', (chunk: Buffer) => {
        tap(chunk);
        if (!writes.write(to, chunk)) {
          from.pause();
          to.once('drain', () => from.resume());
        }
      });
    };
    if (taps.down !== undefined) upstream.on('data', taps.down);
    down(upstream, client);
    down(upstream.stderr, client.stderr);

    const sink = taps.gate?.(upstream, (chunk) => void writes.write(client, chunk)) ?? upstream;
    client.on('data', (chunk: Buffer) => {
      bytesUp += chunk.length;
      hashUp.update(chunk);
      taps.up?.(chunk);
      if (!sink.write(chunk)) {
        client.pause();
        sink.once('drain', () => client.resume());
      }
    });
    client.on('end', () => sink.end());
    client.resume(); // the session paused it while the verdict was pending

    // A forwarded TCP connection half-closes like TCP: the target's EOF is passed on once its
    // bytes are, so the far end sees the close (an exec's EOF waits for its exit status instead).
    let upstreamEnded = false;
    if (taps.exitStatus === false) {
      upstream.on('end', () => {
        upstreamEnded = true;
        writes.whenFlushed(() => client.end());
      });
    }

    upstream.on('exit', (code: number | null, sig?: string) => {
      if (typeof code === 'number') exitCode = code;
      else if (sig !== undefined) signal = sig;
    });

    const finish = (clientGone: boolean) => {
      if (finished) return;
      finished = true;
      const digestUp = bytesUp === 0 ? null : `sha256:${hashUp.digest('hex')}`;
      resolve({ exitCode, signal, bytes, bytesUp, digest: bytes === 0 ? null : `sha256:${hash.digest('hex')}`, digestUp, clientGone });
    };
    upstream.on('close', () => {
      // The exit status must follow every byte of output, so wait until ssh2 has sent them.
      const end = () => {
        // A forwarded TCP channel has no exit status to send.
        if (taps.exitStatus !== false) {
          if (signal !== null) client.exit(signal, false, '');
          else client.exit(exitCode ?? 255);
        }
        client.end();
        finish(false);
      };
      writes.whenFlushed(end);
    });
    client.on('close', () => {
      if (!finished) upstream.close();
      // Both ends of a forwarded connection said EOF: the client closing first is a clean end.
      finish(!upstreamEnded);
    });
  });
}

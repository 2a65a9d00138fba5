import { createHash } from 'node:crypto';
import type { ClientChannel, ServerChannel } from 'ssh2';

/**
 * What a command relay (exec, shell) keeps about its channel: the output delivered and its
 * digest, the input sent, and the target's exit status, kept to pass on once output is flushed.
 */
export class ChannelTally {
  exitCode: number | null = null;
  signal: string | null = null;
  /** The exit-signal's core-dump flag, as the target sent it. */
  coreDumped = false;
  /** Bytes of stdout and stderr delivered to the client. */
  bytes = 0;
  /** Bytes the client sent to the target. */
  bytesUp = 0;
  readonly #hash = createHash('sha256');

  /** Output delivered to the client: counted and hashed in delivery order. */
  delivered(chunk: Buffer): void {
    this.#hash.update(chunk);
    this.bytes += chunk.length;
  }

  /** `sha256:<hex>` over the output; null when none came. Call once, at the end. */
  digest(): string | null {
    return this.bytes === 0 ? null : `sha256:${this.#hash.digest('hex')}`;
  }

  /** Keeps the target's exit status (or the signal it died of) as it arrives. */
  watchExit(upstream: ClientChannel): void {
    upstream.on('exit', (code: number | null, sig?: string, coreDumped?: boolean) => {
      if (typeof code === 'number') this.exitCode = code;
      else if (sig !== undefined) [this.signal, this.coreDumped] = [sig, coreDumped === true];
    });
  }

  /** Passes the exit on to the client: the signal, else the status, else 255 (the target gave none). */
  sendExit(client: ServerChannel): void {
    if (this.signal !== null) client.exit(this.signal, this.coreDumped, '');
    else client.exit(this.exitCode ?? 255);
  }
}

import type { AddressInfo } from 'node:net';
import { listenOn } from '../listen.js';
import { drainSessions } from '../drain.js';
import ssh2 from 'ssh2';
import type { Connection, Server } from 'ssh2';
import type { Logger } from '../../../../core/src/log.js';
import { SshSession, type SshSessionDeps } from './session.js';

export interface SshProxyOptions extends SshSessionDeps {
  /** The proxy's own host key (private key, OpenSSH or PEM). */
  hostKey: Buffer;
  /** Connections beyond this are dropped before the handshake. */
  maxConnections: number;
}

/** The socket adapter of the SSH proxy: ssh2's server accepts clients, one `SshSession` each. */
export class SshProxyServer {
  readonly #server: Server;
  readonly #sessions = new Set<SshSession>();
  readonly #log: Logger;

  constructor(private readonly options: SshProxyOptions) {
    this.#log = options.logger.child({ component: 'ssh-proxy' });
    this.#server = new ssh2.Server({ hostKeys: [options.hostKey], ident: 'Agate' }, (conn, info) => this.#accept(conn, info));
  }

  listen(host: string, port: number): Promise<AddressInfo> {
    return listenOn(this.#server, host, port);
  }

  get sessions(): number {
    return this.#sessions.size;
  }

  /** Stops accepting; closes each session once no channel is open, the rest after `timeoutMs`. */
  async drain(timeoutMs: number): Promise<void> {
    this.#server.close();
    const { idle, cutOff } = await drainSessions(this.#sessions, timeoutMs);
    this.#log.info('drained', { sessions_closed_idle: idle, sessions_cut_off: cutOff });
  }

  /** Stops accepting and disconnects every client, recording each session's end. */
  async shutdown(): Promise<void> {
    const closed = new Promise<void>((r) => this.#server.close(() => r()));
    for (const s of this.#sessions) s.terminate('Agate is shutting down');
    await Promise.all([...this.#sessions].map((s) => s.finished));
    await closed;
  }

  #accept(conn: Connection, info: ssh2.ClientInfo): void {
    if (this.#sessions.size >= this.options.maxConnections) {
      this.#log.warn('refusing a connection: too many sessions', { limit: this.options.maxConnections });
      conn.on('error', () => {});
      conn.end();
      return;
    }
    // ssh2 writes every SSH packet on its own; with Nagle a small one (an sftp status, a window
    // adjust) waits for the previous segment's ACK, a stall on every sftp round trip.
    // (ssh2's server-side connection has setNoDelay; @types/ssh2 leaves it out.)
    (conn as Connection & { setNoDelay(noDelay: boolean): void }).setNoDelay(true);
    const session = new SshSession(conn, info, this.options);
    this.#sessions.add(session);
    void session.finished.then(() => this.#sessions.delete(session));
  }
}

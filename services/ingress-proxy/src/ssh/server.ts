import { randomUUID } from 'node:crypto';
import { createServer, type AddressInfo, type Server as NetServer, type Socket } from 'node:net';
import { listenOn } from '../listen.js';
import { drainSessions } from '../drain.js';
import ssh2 from 'ssh2';
import type { Connection, Server } from 'ssh2';
import { ErrorCode } from '../../../../core/src/errors.js';
import { abandonedMessage, type PendingLogin } from '../../../../core/src/logins/pending.js';
import { sourceAddress, throttledMessage } from '../../../../core/src/logins/throttle.js';
import type { Logger } from '../../../../core/src/log.js';
import { nowMicros } from '../../../../schemas/src/events.js';
import { SessionEvents } from '../session-events.js';
import { SshSession, type SshSessionDeps } from './session.js';

export interface SshProxyOptions extends SshSessionDeps {
  /** The proxy's own host key (private key, OpenSSH or PEM). */
  hostKey: Buffer;
  /** Logged-in connections beyond this are dropped before the handshake. */
  maxConnections: number;
}

/**
 * The socket adapter of the SSH proxy. Agate's own TCP listener admits each socket first (a
 * throttled address is refused, a connection still logging in holds one of `logins.max_pending`
 * slots and must log in within `logins.timeout_ms`, version exchange included), then hands it
 * to ssh2's server, which runs one `SshSession` per client.
 */
export class SshProxyServer {
  readonly #tcp: NetServer;
  readonly #server: Server;
  readonly #sessions = new Set<SshSession>();
  /** Admitted sockets by `ip:port`, until ssh2 reports the connection (after the version exchange). */
  readonly #admitted = new Map<string, PendingLogin>();
  readonly #log: Logger;
  /** Refusals and timeouts before any session exists are recorded through this sink. */
  readonly #refusals: SessionEvents;
  readonly #options: SshProxyOptions;

  constructor(options: SshProxyOptions) {
    this.#options = options;
    this.#log = options.logger.child({ component: 'ssh-proxy' });
    this.#refusals = new SessionEvents(options.bus, this.#log);
    this.#server = new ssh2.Server({ hostKeys: [options.hostKey], ident: 'Agate' }, (conn, info) => this.#accept(conn, info));
    this.#tcp = createServer((socket) => this.#admit(socket));
  }

  listen(host: string, port: number): Promise<AddressInfo> {
    return listenOn(this.#tcp, host, port);
  }

  get sessions(): number {
    return this.#sessions.size;
  }

  /** The live session with this id, if this server holds it (an administrator may terminate it). */
  find(sessionId: string): SshSession | undefined {
    for (const s of this.#sessions) if (s.id === sessionId) return s;
    return undefined;
  }

  /** Stops accepting; closes each session once no channel is open, the rest after `timeoutMs`. */
  async drain(timeoutMs: number): Promise<void> {
    // The TCP listener is Agate's own (logins are admitted before ssh2 sees a socket).
    this.#tcp.close();
    const { idle, cutOff } = await drainSessions(this.#sessions, timeoutMs);
    this.#log.info('drained', { sessions_closed_idle: idle, sessions_cut_off: cutOff });
  }

  /** Stops accepting and disconnects every client, recording each session's end. */
  async shutdown(): Promise<void> {
    const closed = new Promise<void>((r) => this.#tcp.close(() => r()));
    for (const s of this.#sessions) s.terminate('Agate is shutting down');
    await Promise.all([...this.#sessions].map((s) => s.finished));
    await closed;
  }

  #admit(socket: Socket): void {
    socket.on('error', () => {});
    const { logins } = this.#options;
    const address = sourceAddress(socket.remoteAddress);
    const clientAddress = `${address}:${socket.remotePort ?? 0}`;
    const check = logins.throttle.check(address);
    if (check.kind === 'blocked') {
      const message = throttledMessage(check, logins.throttle.windowMs);
      if (check.record) {
        this.#log.warn('refusing connections from a throttled address', { address, retry_after_ms: check.retryAfterMs });
        this.#record(clientAddress, ErrorCode.AUTH_THROTTLED, message);
      }
      // RFC 4253 §4.2: the server may send lines before its version; OpenSSH shows none, but it closes.
      socket.end(`Agate refused the connection: ${message}\r\n`);
      return;
    }
    if (this.#sessions.size - logins.pending.size >= this.#options.maxConnections) {
      this.#log.warn('refusing a connection: too many sessions', { limit: this.#options.maxConnections });
      socket.destroy();
      return;
    }
    const key = `${socket.remoteAddress}:${socket.remotePort}`;
    const login = logins.pending.admit(address, (why) => {
      // No version exchange yet, so no session: the listener records and closes.
      logins.throttle.failed(address);
      this.#record(clientAddress, why === 'timeout' ? ErrorCode.AUTH_TIMEOUT : ErrorCode.AUTH_EVICTED, abandonedMessage(why, logins.pending.options));
      socket.destroy();
    });
    this.#admitted.set(key, login);
    socket.once('close', () => {
      this.#admitted.delete(key);
      login.done();
    });
    this.#server.injectSocket(socket);
  }

  #record(clientAddress: string, code: string, message: string): void {
    void this.#refusals.emitLogged({
      type: 'AuthenticationFailed', event_id: randomUUID(), time: nowMicros(), session_id: randomUUID(), proxy_id: this.#options.proxyId,
      protocol: 'ssh', target: '', client_address: clientAddress, reason_code: code, message, claimed_issuer: null, claimed_subject: null,
    });
  }

  #accept(conn: Connection, info: ssh2.ClientInfo): void {
    const key = `${info.ip}:${info.port}`;
    const login = this.#admitted.get(key);
    this.#admitted.delete(key);
    if (login === undefined || !login.pending) {
      conn.on('error', () => {});
      conn.end();
      return;
    }
    login.progressed(); // the version exchange is done
    // ssh2 writes every SSH packet on its own; with Nagle a small one (an sftp status, a window
    // adjust) waits for the previous segment's ACK, a stall on every sftp round trip.
    // (ssh2's server-side connection has setNoDelay; @types/ssh2 leaves it out.)
    (conn as Connection & { setNoDelay(noDelay: boolean): void }).setNoDelay(true);
    const session = new SshSession(conn, info, this.#options, login);
    this.#sessions.add(session);
    void session.finished.then(() => this.#sessions.delete(session));
  }
}

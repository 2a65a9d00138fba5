import { randomUUID } from 'node:crypto';
import { createServer, type Server, type Socket } from 'node:net';
import { listenOn } from '../listen.js';
import { drainSessions } from '../drain.js';
import type { AddressInfo } from 'node:net';
import { ErrorCode } from '../../../../core/src/errors.js';
import { sourceAddress, throttledMessage } from '../../../../core/src/logins/throttle.js';
import type { Logger } from '../../../../core/src/log.js';
import { nowMicros } from '../../../../schemas/src/events.js';
import { SessionEvents } from '../session-events.js';
import { serialize } from './backend-serializer.js';
import { CancelRegistry } from './cancel.js';
import { PgSession, type PgSessionDeps } from './session.js';

interface PgProxyOptions extends Omit<PgSessionDeps, 'cancel'> {
  /** Authenticated sessions beyond this are refused with SQLSTATE 53300 instead of exhausting memory. */
  maxConnections: number;
}

/** The socket adapter of the PostgreSQL proxy: accepts clients and runs a `PgSession` for each. */
export class PgProxyServer {
  readonly #server: Server;
  readonly #sessions = new Set<PgSession>();
  readonly #log: Logger;
  readonly #deps: PgSessionDeps;
  /** Refusals before any session exists (a throttled address) are recorded through this sink. */
  readonly #refusals: SessionEvents;

  readonly #options: PgProxyOptions;

  constructor(options: PgProxyOptions) {
    this.#options = options;
    this.#deps = { ...options, cancel: new CancelRegistry() };
    this.#log = options.logger.child({ component: 'pg-proxy' });
    this.#refusals = new SessionEvents(options.bus, this.#log);
    this.#server = createServer((socket) => this.#accept(socket));
  }

  listen(host: string, port: number): Promise<AddressInfo> {
    return listenOn(this.#server, host, port);
  }

  get sessions(): number {
    return this.#sessions.size;
  }

  /** The live session with this id, if this server holds it (an administrator may terminate it). */
  find(sessionId: string): PgSession | undefined {
    for (const s of this.#sessions) if (s.id === sessionId) return s;
    return undefined;
  }

  async close(): Promise<void> {
    const closed = new Promise<void>((r) => this.#server.close(() => r()));
    await Promise.all([...this.#sessions].map(async (s) => s.finished));
    await closed;
  }

  /** Stops accepting; closes each session once no statement is in flight, the rest after `timeoutMs`. */
  async drain(timeoutMs: number): Promise<void> {
    this.#server.close();
    const { idle, cutOff } = await drainSessions(this.#sessions, timeoutMs);
    this.#log.info('drained', { sessions_closed_idle: idle, sessions_cut_off: cutOff });
  }

  /** Stops accepting and disconnects every client, recording each session's end. */
  async shutdown(): Promise<void> {
    this.#server.close();
    for (const s of this.#sessions) s.terminate('Agate is shutting down');
    await Promise.all([...this.#sessions].map((s) => s.finished));
  }

  /**
   * Admission, before a byte is read: a throttled address is refused (recorded once per block);
   * the session cap counts authenticated sessions only, and connections still logging in have
   * their own cap and deadline (`logins`), so unauthenticated sockets never lock agents out.
   */
  #accept(socket: Socket): void {
    socket.on('error', () => {});
    const { logins } = this.#options;
    const address = sourceAddress(socket.remoteAddress);
    const check = logins.throttle.check(address);
    if (check.kind === 'blocked') {
      const message = throttledMessage(check, logins.throttle.windowMs);
      if (check.record) {
        this.#log.warn('refusing connections from a throttled address', { address, retry_after_ms: check.retryAfterMs });
        void this.#refusals.emitLogged({
          type: 'AuthenticationFailed', event_id: randomUUID(), time: nowMicros(), session_id: randomUUID(), proxy_id: this.#options.proxyId,
          protocol: 'postgres', target: '', client_address: `${address}:${socket.remotePort ?? 0}`, reason_code: ErrorCode.AUTH_THROTTLED, message,
          claimed_issuer: null, claimed_subject: null,
        });
      }
      socket.end(serialize.errorResponse({ severity: 'FATAL', code: '08004', message: `Agate refused the connection: ${message}` }));
      return;
    }
    if (this.#sessions.size - logins.pending.size >= this.#options.maxConnections) {
      this.#log.warn('refusing a connection: too many sessions', { limit: this.#options.maxConnections });
      socket.end(serialize.errorResponse({ severity: 'FATAL', code: '53300', message: 'Agate has too many open sessions; try again later' }));
      return;
    }
    const session = new PgSession(socket, this.#deps, logins.pending.admit(address, () => socket.destroy()));
    this.#sessions.add(session);
    void session.finished.then(() => this.#sessions.delete(session));
  }
}

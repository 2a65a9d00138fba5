import { createServer, type Server, type Socket } from 'node:net';
import { listenOn } from '../listen.js';
import { drainSessions } from '../drain.js';
import type { AddressInfo } from 'node:net';
import type { Logger } from '../../../../core/src/log.js';
import { serialize } from './backend-serializer.js';
import { CancelRegistry } from './cancel.js';
import { PgSession, type PgSessionDeps } from './session.js';

export interface PgProxyOptions extends Omit<PgSessionDeps, 'cancel'> {
  /** Connections beyond this are refused with SQLSTATE 53300 instead of exhausting memory. */
  maxConnections: number;
}

/** The socket adapter of the PostgreSQL proxy: accepts clients and runs a `PgSession` for each. */
export class PgProxyServer {
  readonly #server: Server;
  readonly #sessions = new Set<PgSession>();
  readonly #log: Logger;
  readonly #deps: PgSessionDeps;

  constructor(private readonly options: PgProxyOptions) {
    this.#deps = { ...options, cancel: new CancelRegistry() };
    this.#log = options.logger.child({ component: 'pg-proxy' });
    this.#server = createServer((socket) => this.#accept(socket));
  }

  listen(host: string, port: number): Promise<AddressInfo> {
    return listenOn(this.#server, host, port);
  }

  get sessions(): number {
    return this.#sessions.size;
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

  #accept(socket: Socket): void {
    if (this.#sessions.size >= this.options.maxConnections) {
      this.#log.warn('refusing a connection: too many sessions', { limit: this.options.maxConnections });
      socket.on('error', () => {});
      socket.end(serialize.errorResponse({ severity: 'FATAL', code: '53300', message: 'Agate has too many open sessions; try again later' }));
      return;
    }
    const session = new PgSession(socket, this.#deps);
    this.#sessions.add(session);
    void session.finished.then(() => this.#sessions.delete(session));
  }
}

import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import type { Logger } from '../log.js';
import { metrics, metricsRegistry } from './metrics.js';
import type { Readiness } from './readiness.js';

/**
 * The ops listener every `agate` process can serve (config `ops.listen`): `/healthz` (the process
 * is alive: its event loop turns and no component has stopped for good), `/readyz` (every component reports ready; 503 with the
 * reasons otherwise) and `/metrics` (Prometheus text format). No authentication and nothing
 * secret: bind it to loopback or a pod address that only the kubelet and Prometheus reach.
 */
export class OpsServer {
  readonly #server: Server;

  constructor(private readonly readiness: Readiness, private readonly logger: Logger) {
    this.#server = createServer((req, res) => void this.#handle(req, res));
    // Probes come every few seconds on fresh connections; none should keep the process alive.
    this.#server.keepAliveTimeout = 5_000;
  }

  listen(host: string, port: number): Promise<AddressInfo> {
    return new Promise((resolve, reject) => {
      this.#server.once('error', reject);
      this.#server.listen(port, host, () => {
        this.#server.off('error', reject);
        resolve(this.#server.address() as AddressInfo);
      });
    });
  }

  close(): Promise<void> {
    return new Promise((resolve) => {
      this.#server.close(() => resolve());
      this.#server.closeAllConnections();
    });
  }

  async #handle(req: IncomingMessage, res: ServerResponse): Promise<void> {
    const path = (req.url ?? '/').split('?')[0];
    if (req.method !== 'GET' && req.method !== 'HEAD') return send(res, 405, 'application/json', JSON.stringify({ error: 'only GET' }));
    try {
      switch (path) {
        case '/healthz': {
          // Alive unless a component has stopped for good (a restart is the remedy).
          const live = await this.readiness.liveness();
          return send(res, live.ready ? 200 : 503, 'application/json', JSON.stringify(live.ready ? { status: 'ok' } : { status: 'not alive', components: live.components }));
        }
        case '/readyz': {
          const report = await this.readiness.report();
          metrics.ready.set(report.ready ? 1 : 0);
          return send(res, report.ready ? 200 : 503, 'application/json', JSON.stringify({ status: report.ready ? 'ready' : 'not ready', components: report.components }));
        }
        case '/metrics': {
          // The readiness gauge is current at every scrape, not only when a probe asked.
          metrics.ready.set((await this.readiness.report()).ready ? 1 : 0);
          return send(res, 200, metricsRegistry.contentType, await metricsRegistry.metrics());
        }
        default:
          return send(res, 404, 'application/json', JSON.stringify({ error: 'not found; try /healthz, /readyz or /metrics' }));
      }
    } catch (err) {
      this.logger.error('ops endpoint failed', { path, error: (err as Error).message });
      send(res, 500, 'application/json', JSON.stringify({ error: 'internal error' }));
    }
  }
}

function send(res: ServerResponse, status: number, type: string, body: string): void {
  res.writeHead(status, { 'Content-Type': type, 'Cache-Control': 'no-store', 'Content-Length': Buffer.byteLength(body) });
  res.end(body);
}

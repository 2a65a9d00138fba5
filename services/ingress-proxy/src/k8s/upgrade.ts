import { createHash } from 'node:crypto';
import { isIP, type Socket } from 'node:net';
import { connect } from 'node:tls';
import type { KubeUpstream } from './upstream.js';

export type UpgradeOutcome =
  | { kind: 'unreachable'; error: Error }
  | { kind: 'relayed'; code: number; statusLine: string; bytesUp: number; bytesDown: number; digest: string | null; durationUs: number };

/** The API server's first line is read within this many bytes, or the relay gives up on naming it. */
const MAX_STATUS_LINE = 256;

/**
 * Relays an upgraded connection (exec, attach, port-forward over WebSocket or SPDY) after its
 * request was decided: opens TLS to the API server, sends `requestHead` (the engine rebuilt it
 * without the client's token, with Agate's credential), then pipes both ways with backpressure (`pipe`),
 * counting bytes each way and hashing what the server sent. Resolves when both sides are closed.
 */
export function relayUpgrade(client: Socket, head: Buffer, requestHead: string, upstream: KubeUpstream): Promise<UpgradeOutcome> {
  const host = upstream.server.hostname;
  const port = Number(upstream.server.port || 443);
  const started = process.hrtime.bigint();
  return new Promise((resolve) => {
    const server = connect({ host, port, ...upstream.tls, servername: upstream.tls.servername ?? (isIP(host) === 0 ? host : undefined), rejectUnauthorized: true, ALPNProtocols: ['http/1.1'] });
    let connected = false;
    let bytesUp = 0;
    let bytesDown = 0;
    let statusLine = '';
    const hash = createHash('sha256');
    server.once('error', (error) => {
      if (!connected) return resolve({ kind: 'unreachable', error });
      client.destroy();
    });
    server.once('secureConnect', () => {
      connected = true;
      server.write(requestHead);
      if (head.length > 0) {
        bytesUp += head.length;
        server.write(head);
      }
      client.on('data', (chunk: Buffer) => (bytesUp += chunk.length));
      server.on('data', (chunk: Buffer) => {
        if (statusLine === '' || (!statusLine.includes('\r\n') && statusLine.length < MAX_STATUS_LINE)) statusLine += chunk.toString('latin1', 0, MAX_STATUS_LINE);
        bytesDown += chunk.length;
        hash.update(chunk);
      });
      client.pipe(server);
      server.pipe(client);
      let open = 2;
      const closed = () => {
        if (--open > 0) return;
        const first = statusLine.split('\r\n')[0] ?? '';
        const code = Number(/^HTTP\/1\.[01] (\d{3})/.exec(first)?.[1] ?? 0);
        resolve({ kind: 'relayed', code, statusLine: first.slice(0, 120), bytesUp, bytesDown, digest: bytesDown === 0 ? null : `sha256:${hash.digest('hex')}`, durationUs: Number((process.hrtime.bigint() - started) / 1000n) });
      };
      client.once('close', () => {
        server.destroy();
        closed();
      });
      server.once('close', () => {
        client.destroy();
        closed();
      });
    });
  });
}

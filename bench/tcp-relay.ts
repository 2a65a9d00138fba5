/**
 * A bare TCP relay in its own Node process, for `npm run bench -- pg` (diagnosis only): every
 * byte from the client to the upstream and back, one write per chunk, no parsing, no audit. It is
 * the floor any proxy written for Node pays on this machine: what is left between it and
 * PgBouncer is the runtime's socket path, not Agate's work. Prints `listening <port>`.
 *   node dist/bench/tcp-relay.js UPSTREAM_PORT
 */
import { createServer, connect } from 'node:net';

const upstreamPort = Number(process.argv[2]);
if (!Number.isInteger(upstreamPort) || upstreamPort <= 0) {
  console.error('usage: tcp-relay.js UPSTREAM_PORT');
  process.exit(2);
}

const server = createServer({ noDelay: true }, (client) => {
  const upstream = connect({ host: '127.0.0.1', port: upstreamPort, noDelay: true });
  client.pipe(upstream);
  upstream.pipe(client);
  const close = () => {
    client.destroy();
    upstream.destroy();
  };
  client.on('error', close).on('close', close);
  upstream.on('error', close).on('close', close);
});
server.listen(0, '127.0.0.1', () => {
  const address = server.address();
  if (address === null || typeof address === 'string') throw new Error('no TCP address');
  console.log(`listening ${address.port}`);
});
process.on('SIGTERM', () => process.exit(0));

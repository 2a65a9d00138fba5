import { connect, createServer, type AddressInfo, type Server, type Socket } from 'node:net';
import * as assert from 'uvu/assert';
import { suite } from '../../../../test/harness/suite.js';
import { onChunks, UpstreamReads } from './upstream-reads.js';

const test = suite('upstream reads');

/** A loopback server whose one connection is `peer`, and a client socket reading with `reads`. */
async function pair(reads: UpstreamReads): Promise<{ client: Socket; peer: Socket; server: Server }> {
  const server = createServer();
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  const accepted = new Promise<Socket>((r) => server.once('connection', r));
  const client = connect({ host: '127.0.0.1', port: (server.address() as AddressInfo).port, onread: reads.options });
  const peer = await accepted;
  return { client, peer, server };
}

function close(p: { client: Socket; peer: Socket; server: Server }): Promise<void> {
  p.client.destroy();
  p.peer.destroy();
  return new Promise((r) => p.server.close(() => r()));
}

/** Collects chunks until `bytes` have arrived. */
function collect(reads: UpstreamReads, bytes: number): Promise<Buffer[]> {
  return new Promise((resolve) => {
    const chunks: Buffer[] = [];
    let have = 0;
    reads.listen((c) => {
      chunks.push(c);
      have += c.length;
      if (have >= bytes) resolve(chunks);
    });
  });
}

test('each chunk stays the listener\'s own after later reads, small (copied) or large (handed over)', async () => {
  const reads = new UpstreamReads();
  const p = await pair(reads);
  try {
    const first = collect(reads, 3);
    p.peer.write('abc');
    const [small] = await first;
    const big = Buffer.alloc(200_000, 0x61);
    const rest = collect(reads, big.length + 3);
    p.peer.write(big);
    p.peer.write('xyz');
    const chunks = await rest;
    assert.is(small!.toString(), 'abc', 'a small chunk is not overwritten by the reads after it');
    assert.ok(Buffer.concat(chunks).equals(Buffer.concat([big, Buffer.from('xyz')])), 'every byte once, in order, none overwritten');
    const handed = chunks.filter((c) => c.length >= 16 * 1024);
    assert.ok(handed.length > 0);
    assert.is(new Set(handed.map((c) => c.buffer)).size, handed.length, 'each large read has a buffer of its own');
  } finally {
    await close(p);
  }
});

test('chunks read while nobody listens wait, in order, for the next listener', async () => {
  const reads = new UpstreamReads();
  const p = await pair(reads);
  try {
    p.peer.write('one');
    await new Promise((r) => setTimeout(r, 50));
    p.peer.write('two');
    await new Promise((r) => setTimeout(r, 50));
    const got = await collect(reads, 6);
    assert.is(Buffer.concat(got).toString(), 'onetwo');
  } finally {
    await close(p);
  }
});

test('pause stops reading until resume; a socket without reads gets its chunks as data events', async () => {
  const reads = new UpstreamReads();
  const p = await pair(reads);
  try {
    const got: string[] = [];
    const off = onChunks(p.client, reads, (c) => got.push(c.toString()));
    p.client.pause();
    p.peer.write('held');
    await new Promise((r) => setTimeout(r, 80));
    assert.equal(got, [], 'nothing read while paused');
    const resumed = new Promise<void>((r) => onChunks(p.client, reads, (c) => (got.push(c.toString()), r())));
    p.client.resume();
    await resumed;
    assert.equal(got, ['held']);
    off();
  } finally {
    await close(p);
  }
  const server = createServer((s) => s.end('plain'));
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  const socket = connect({ host: '127.0.0.1', port: (server.address() as AddressInfo).port });
  const text = await new Promise<string>((r) => onChunks(socket, undefined, (c) => r(c.toString())));
  assert.is(text, 'plain');
  socket.destroy();
  await new Promise((r) => server.close(r));
});

test.run();

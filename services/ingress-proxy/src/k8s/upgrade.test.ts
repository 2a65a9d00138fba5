import { suite } from '../../../../test/harness/suite.js';
import * as assert from 'uvu/assert';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { createServer as createTcpServer, connect as connectTcp, type Socket } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createServer as createTlsServer, type Server, type TLSSocket } from 'node:tls';
import { makeTestCa } from '../../../../test/harness/test-ca.js';
import type { KubeUpstream } from './upstream.js';
import { relayUpgrade, type UpgradeOutcome } from './upgrade.js';

/*
 * relayUpgrade against a real TLS peer standing in for the API server: it answers the upgrade
 * head as a test says (101 or not) and keeps every byte it receives, so a test can tell whether
 * client bytes reached a connection that was still HTTP.
 */

interface Ctx {
  dir: string;
  tls: { cert: Buffer; key: Buffer; ca: Buffer };
}

const test = suite<Ctx>('relayUpgrade');

test.before(async (ctx) => {
  ctx.dir = mkdtempSync(join(tmpdir(), 'agate-upgrade-'));
  const ca = await makeTestCa(ctx.dir);
  ctx.tls = { cert: readFileSync(ca.server.cert), key: readFileSync(ca.server.key), ca: Buffer.from(readFileSync(ca.ca)) };
});

test.after((ctx) => rmSync(ctx.dir, { recursive: true, force: true }));

const HEAD = 'GET /api/v1/namespaces/a/pods/p/exec HTTP/1.1\r\nHost: api\r\nConnection: Upgrade\r\nUpgrade: websocket\r\n\r\n';

/** A TLS "API server" that answers the first head with `answer` after `delayMs`, then echoes when `echo`. */
async function apiServer(ctx: Ctx, answer: string, delayMs: number, echo: boolean): Promise<{ server: Server; port: number; received: () => string; answeredAt: () => number }> {
  let received = '';
  let answeredLength = -1;
  const server = createTlsServer({ cert: ctx.tls.cert, key: ctx.tls.key }, (s: TLSSocket) => {
    s.on('error', () => {});
    s.on('data', (d: Buffer) => {
      received += d.toString('latin1');
      if (echo && answeredLength >= 0) s.write(d);
    });
    setTimeout(() => {
      answeredLength = received.length;
      s.write(answer);
    }, delayMs);
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  const port = (server.address() as { port: number }).port;
  return { server, port, received: () => received, answeredAt: () => answeredLength };
}

/** A connected pair: the relay's side (as the proxy's 'upgrade' event hands it) and the agent's. */
async function clientPair(): Promise<{ relaySide: Socket; agent: Socket; close: () => void }> {
  const listener = createTcpServer();
  await new Promise<void>((r) => listener.listen(0, '127.0.0.1', r));
  const accepted = new Promise<Socket>((r) => listener.once('connection', r));
  const agent = connectTcp((listener.address() as { port: number }).port, '127.0.0.1');
  const relaySide = await accepted;
  agent.on('error', () => {});
  relaySide.on('error', () => {});
  return { relaySide, agent, close: () => listener.close() };
}

function upstreamAt(ctx: Ctx, port: number): KubeUpstream {
  // relayUpgrade reads only the server address and the TLS settings.
  return { server: new URL(`https://127.0.0.1:${port}`), tls: { ca: ctx.tls.ca } } as unknown as KubeUpstream;
}

function collect(s: Socket): () => string {
  let text = '';
  s.setEncoding('latin1').on('data', (d: string) => (text += d));
  return () => text;
}

test('nothing the client sends reaches the API server before its 101; after it, both ways are piped', async (ctx) => {
  const api = await apiServer(ctx, 'HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\r\n', 300, true);
  const pair = await clientPair();
  const got = collect(pair.agent);
  const relayed = relayUpgrade(pair.relaySide, Buffer.from('first-frame'), HEAD, upstreamAt(ctx, api.port));
  pair.agent.write('early-bytes');
  await new Promise((r) => setTimeout(r, 600));
  // The 101 was sent once the head (and nothing else) had arrived.
  assert.is(api.answeredAt(), HEAD.length);
  assert.is(api.received(), `${HEAD}first-frameearly-bytes`);
  pair.agent.write('later');
  await new Promise((r) => setTimeout(r, 200));
  assert.match(got(), /^HTTP\/1\.1 101 [\s\S]*first-frameearly-byteslater$/);
  pair.agent.destroy();
  const outcome = await relayed;
  assert.equal([outcome.kind, (outcome as Extract<UpgradeOutcome, { kind: 'relayed' }>).code], ['relayed', 101]);
  pair.close();
  api.server.close();
});

test('any other answer is delivered whole and both connections end: a request behind the head never reaches the API server', async (ctx) => {
  for (const answer of [
    'HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: 11\r\n\r\n{"a":"bc"}\n',
    'HTTP/1.1 400 Bad Request\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n0\r\n\r\n',
  ]) {
    const api = await apiServer(ctx, answer, 100, false);
    const pair = await clientPair();
    const got = collect(pair.agent);
    const ended = new Promise((r) => pair.agent.once('end', r));
    const smuggled = 'DELETE /api/v1/namespaces/prod/pods/victim HTTP/1.1\r\nHost: api\r\n\r\n';
    const relayed = relayUpgrade(pair.relaySide, Buffer.from(smuggled), HEAD, upstreamAt(ctx, api.port));
    pair.agent.write(smuggled);
    await ended;
    const outcome = (await relayed) as Extract<UpgradeOutcome, { kind: 'relayed' }>;
    assert.is(got(), answer);
    assert.is(api.received(), HEAD);
    assert.is(outcome.code, Number(answer.slice(9, 12)));
    assert.is(outcome.bytesUp, 0);
    pair.close();
    api.server.close();
  }
});

test.run();

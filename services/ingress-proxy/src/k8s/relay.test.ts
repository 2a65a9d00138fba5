import { suite } from '../../../../test/harness/suite.js';
import * as assert from 'uvu/assert';
import { createHash } from 'node:crypto';
import { createServer, request, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { BUILTIN_MASK_SET } from '../../../../core/src/config.js';
import { createLogger } from '../../../../core/src/log.js';
import type { AgateEvent, Command, Response } from '../../../../schemas/src/events.js';
import { Masker } from '../masking/masker.js';
import { relayStream } from './relay.js';
import { classifyRequest, type RequestInfo } from './request-info.js';
import type { KubeSession } from './session.js';

/*
 * relayStream between two real HTTP hops: an "API server" sending `body` in chunks, and a proxy
 * relaying it to a real client. The recorded digest and byte count must be those of what the
 * client received, whether the answer fits the record's cap (digest taken at the end) or not
 * (running digest from the chunk that crossed it).
 */

const CAP = 1024;
const command = { event_id: 'c1', session_id: 's1' } as Command;
const info = classifyRequest('GET', '/api/v1/namespaces/default/configmaps/x') as RequestInfo;

/** `headers`: more of the API server's headers, as a raw name, value, … list. */
async function relayed(chunks: Buffer[], contentType: string, headers: string[] = []): Promise<{ received: Buffer; rawHeaders: string[]; recorded: Response }> {
  const events: AgateEvent[] = [];
  const session = { events: { emitLogged: async (e: AgateEvent) => void events.push(e) } } as unknown as KubeSession;
  const upstream = createServer((_, res) => {
    res.writeHead(200, ['content-type', contentType, ...headers]);
    const next = (i: number): void => {
      if (i === chunks.length) return void res.end();
      res.write(chunks[i]!, () => setTimeout(() => next(i + 1), 2)); // separate reads on the proxy's side
    };
    next(0);
  });
  const upPort = await listen(upstream);
  const proxy = createServer((_, res) => {
    request({ host: '127.0.0.1', port: upPort, path: '/' }, (upRes) => {
      relayStream({
        session, command, upRes, res, client: undefined, started: 0, info, log: createLogger('error'),
        target: { name: 't', maxBufferBytes: CAP, recording: { sampleRows: 2, valueChars: 400, audit: new Masker('default', BUILTIN_MASK_SET), fields: [] } },
      });
    }).end();
  });
  const port = await listen(proxy);
  try {
    let rawHeaders: string[] = [];
    const received = await new Promise<Buffer>((resolve, reject) => {
      request({ host: '127.0.0.1', port, path: '/' }, (res) => {
        rawHeaders = res.rawHeaders;
        const parts: Buffer[] = [];
        res.on('data', (c: Buffer) => parts.push(c));
        res.on('end', () => resolve(Buffer.concat(parts)));
      }).on('error', reject).end();
    });
    for (let i = 0; i < 50 && events.length === 0; i++) await new Promise((r) => setTimeout(r, 10));
    assert.is(events.length, 1);
    return { received, rawHeaders, recorded: events[0] as Response };
  } finally {
    proxy.close();
    upstream.close();
  }
}

function listen(server: Server): Promise<number> {
  return new Promise((resolve) => server.listen(0, '127.0.0.1', () => resolve((server.address() as AddressInfo).port)));
}

const sha = (b: Buffer) => `sha256:${createHash('sha256').update(b).digest('hex')}`;

const relay = suite('k8s relayStream');

relay('within the cap: every byte delivered, digest and count of them, the object sampled', async () => {
  const doc = Buffer.from(JSON.stringify({ kind: 'ConfigMap', metadata: { name: 'x', namespace: 'default' }, data: { v: 'y'.repeat(300) } }));
  const { received, recorded } = await relayed([doc.subarray(0, 100), doc.subarray(100)], 'application/json');
  assert.ok(received.equals(doc));
  assert.equal([recorded.bytes, recorded.digest, recorded.command_tag, recorded.rows], [doc.length, sha(doc), '200 ConfigMap', 1]);
});

relay('one chunk (a get): delivered and recorded as sent; repeated headers kept apart, hop-by-hop ones dropped', async () => {
  const doc = Buffer.from(JSON.stringify({ kind: 'ConfigMap', metadata: { name: 'x', namespace: 'default' }, data: { v: 'y' } }));
  const { received, rawHeaders, recorded } = await relayed([doc], 'application/json', ['Warning', '299 - "first"', 'Upgrade', 'h2c', 'Audit-Id', 'a1', 'Warning', '299 - "second"']);
  assert.ok(received.equals(doc));
  assert.equal([recorded.bytes, recorded.digest, recorded.command_tag, recorded.rows], [doc.length, sha(doc), '200 ConfigMap', 1]);
  const named = (name: string) => rawHeaders.filter((_, i) => i % 2 === 1 && rawHeaders[i - 1]!.toLowerCase() === name);
  assert.equal(named('warning'), ['299 - "first"', '299 - "second"']);
  assert.equal([named('audit-id'), named('content-type'), named('upgrade')], [['a1'], ['application/json'], []]);
});

relay('over the cap: every byte delivered, digest and count of all of them, nothing parsed', async () => {
  const chunks = [Buffer.alloc(700, 'a'), Buffer.alloc(700, 'b'), Buffer.alloc(700, 'c')]; // crosses the cap in the second
  const { received, recorded } = await relayed(chunks, 'application/json');
  const all = Buffer.concat(chunks);
  assert.ok(received.equals(all));
  assert.equal([recorded.bytes, recorded.digest, recorded.command_tag, recorded.rows], [all.length, sha(all), '200', 0]);
});

relay('an empty answer: no digest', async () => {
  const { received, recorded } = await relayed([], 'application/json');
  assert.is(received.length, 0);
  assert.equal([recorded.bytes, recorded.digest], [0, null]);
});

relay.run();

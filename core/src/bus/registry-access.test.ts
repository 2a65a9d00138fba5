import { suite } from '../../../test/harness/suite.js';
import * as assert from 'uvu/assert';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { createServer, type Server } from 'node:https';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { EventCodec } from '../../../schemas/src/codec.js';
import { makeTestCa, type TestCa } from '../../../test/harness/test-ca.js';
import { RegistryWire } from './registry-wire.js';

/*
 * How Agate presents itself to a registry that wants credentials over TLS. The registry here is a
 * TEST DOUBLE (a recording HTTPS server answering the few Confluent API calls registration makes):
 * the Apicurio build the harness runs authenticates only through an OIDC server. What is checked is
 * Agate's side: the header it sends on every call and the CA it verifies the server with.
 */
const dir = mkdtempSync(join(tmpdir(), 'agate-registry-access-'));
let ca: TestCa;
let server: Server;
let url = '';
const seen: string[] = [];
const ready = (async () => {
  ca = await makeTestCa(dir);
  server = createServer({ cert: readFileSync(ca.server.cert), key: readFileSync(ca.server.key) }, (req, res) => {
    seen.push(`${req.method} ${req.headers.authorization ?? '-'}`);
    res.setHeader('content-type', 'application/vnd.schemaregistry.v1+json');
    if (req.method === 'GET' && req.url?.startsWith('/config/')) return void res.writeHead(404).end('{"error_code":40401,"message":"no config"}');
    if (req.method === 'POST') return void res.end('{"id":7}');
    res.end('{"compatibility":"BACKWARD"}');
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  url = `https://127.0.0.1:${(server.address() as AddressInfo).port}`;
})();

const access = suite('schema registry access (credentials, TLS)');
access.after(async () => {
  await new Promise((r) => server?.close(r));
  rmSync(dir, { recursive: true, force: true });
});

access('basic credentials go with every call, over TLS verified against the CA', async () => {
  await ready;
  seen.length = 0;
  await new RegistryWire(url, 'basic', new EventCodec(), { basic: { username: 'agate', password: 's3cret' }, tls: { ca: readFileSync(ca.ca) } }).init();
  const expected = `Basic ${Buffer.from('agate:s3cret').toString('base64')}`;
  assert.ok(seen.length > 0);
  assert.equal([...new Set(seen.map((s) => s.split(' ').slice(1).join(' ')))], [expected]);
});

access('a bearer token goes with every call', async () => {
  await ready;
  seen.length = 0;
  await new RegistryWire(url, 'bearer', new EventCodec(), { token: 'tok-123', tls: { ca: readFileSync(ca.ca) } }).init();
  assert.equal([...new Set(seen.map((s) => s.split(' ').slice(1).join(' ')))], ['Bearer tok-123']);
});

access('a registry whose certificate the CA did not sign is unreachable, and nothing is sent', async () => {
  await ready;
  seen.length = 0;
  const other = await makeTestCa(mkdtempSync(join(dir, 'other-')));
  const err = await new RegistryWire(url, 'untrusted', new EventCodec(), { token: 'tok-123', tls: { ca: readFileSync(other.ca) } }).init().then(() => undefined, (e: unknown) => e as Error);
  assert.ok(err !== undefined);
  assert.match(err!.message, /cannot be reached: .*certificate/);
  assert.equal(seen, [], 'no request reached the server');
});

access.run();

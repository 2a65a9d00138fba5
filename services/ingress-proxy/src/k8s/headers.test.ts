import { suite } from '../../../../test/harness/suite.js';
import * as assert from 'uvu/assert';
import { clientHeaders, impersonates, jsonOnlyAccept, rawHeader, upgradeHead, upstreamHeaders } from './headers.js';

const headers = suite('headers');

headers('upstream: the client token, hop-by-hop, compression and impersonation never cross; Agate credential added', () => {
  const out = upstreamHeaders({
    authorization: 'Bearer agent-token', host: 'agate:6443', connection: 'keep-alive', 'accept-encoding': 'gzip', 'impersonate-user': 'admin',
    'content-type': 'application/json', 'user-agent': 'kubectl/v1.37', accept: 'application/vnd.kubernetes.protobuf, */*', 'content-length': '2',
  }, { Authorization: 'Bearer cluster-credential' }, 2);
  assert.equal(out, { 'content-type': 'application/json', 'user-agent': 'kubectl/v1.37', accept: '*/*', 'content-length': '2', authorization: 'Bearer cluster-credential' });
});

headers('Accept: protobuf is dropped, JSON kept, nothing left means JSON', () => {
  assert.is(jsonOnlyAccept('application/json;as=Table;v=v1;g=meta.k8s.io,application/json'), 'application/json;as=Table;v=v1;g=meta.k8s.io,application/json');
  assert.is(jsonOnlyAccept('application/json;as=Table;v=v1;g=meta.k8s.io,application/vnd.kubernetes.protobuf'), 'application/json;as=Table;v=v1;g=meta.k8s.io');
  assert.is(jsonOnlyAccept('application/json, application/VND.kubernetes.PROTOBUF;as=Table, application/CBOR'), 'application/json');
  assert.is(jsonOnlyAccept('application/vnd.kubernetes.protobuf'), 'application/json');
  assert.is(jsonOnlyAccept('application/cbor, application/json'), 'application/json');
});

headers('impersonation is noticed in any form', () => {
  assert.ok(impersonates({ 'impersonate-group': 'system:masters' }));
  // A front proxy's identity headers: an API server trusting Agate's certificate as one acts as the name.
  for (const h of ['x-remote-user', 'x-remote-group', 'x-remote-uid', 'x-remote-extra-scopes']) assert.ok(impersonates({ [h]: 'alice' }), h);
  assert.not.ok(impersonates({ authorization: 'x', 'x-remote': 'y', 'x-forwarded-for': '10.0.0.1' }));
  assert.equal(upstreamHeaders({ 'x-remote-user': 'alice', 'impersonate-uid': 'u', accept: '*/*' }, {}, undefined), { accept: '*/*' });
  assert.not.match(upgradeHead('GET', '/', ['X-Remote-Group', 'system:masters', 'Impersonate-Extra-x', 'y'], 'h', {}), /Remote|Impersonate/i);
});

headers('client: a rewritten body gets its own length', () => {
  assert.equal(clientHeaders(['Content-Type', 'application/json', 'Content-Length', '900', 'Transfer-Encoding', 'chunked'], 20), ['Content-Type', 'application/json', 'content-length', '20']);
  assert.equal(clientHeaders(['Content-Length', '900']), ['Content-Length', '900']);
});

headers('client: hop-by-hop headers dropped in any case, repeated ones kept apart and in order', () => {
  const raw = ['Warning', '299 - "a"', 'CONNECTION', 'close', 'Keep-Alive', 'timeout=5', 'Audit-Id', 'x', 'Upgrade', 'h2c', 'warning', '299 - "b"'];
  assert.equal(clientHeaders(raw), ['Warning', '299 - "a"', 'Audit-Id', 'x', 'warning', '299 - "b"']);
});

headers('rawHeader: the first value of a name in any case, undefined when absent', () => {
  const raw = ['Content-Typo', 'no', 'Content-Type', 'application/json', 'content-type', 'text/plain'];
  assert.is(rawHeader(raw, 'content-type'), 'application/json');
  assert.is(rawHeader(raw, 'content-length'), undefined);
  assert.is(rawHeader([], 'content-type'), undefined);
});

headers('upgrade head: rebuilt without the client token, with the credential', () => {
  const head = upgradeHead('GET', '/api/v1/namespaces/d/pods/p/exec?command=ls', ['Host', 'agate', 'Authorization', 'Bearer agent', 'Upgrade', 'websocket', 'Connection', 'Upgrade', 'X-Evil', 'a\r\nInjected: 1'], '10.0.0.1:6443', { Authorization: 'Bearer cluster' });
  assert.is(head, 'GET /api/v1/namespaces/d/pods/p/exec?command=ls HTTP/1.1\r\nHost: 10.0.0.1:6443\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nX-Evil: aInjected: 1\r\nAuthorization: Bearer cluster\r\n\r\n');
});

headers('upgrade head of a read stream: only the subprotocols Agate reads, no extension', () => {
  const raw = ['Upgrade', 'websocket', 'Sec-WebSocket-Protocol', 'base64.channel.k8s.io, v5.channel.k8s.io', 'Sec-WebSocket-Extensions', 'permessage-deflate', 'sec-websocket-protocol', 'v4.channel.k8s.io'];
  const head = upgradeHead('GET', '/x', raw, 'h', {}, ['v5.channel.k8s.io', 'v4.channel.k8s.io']);
  assert.is(head, 'GET /x HTTP/1.1\r\nHost: h\r\nUpgrade: websocket\r\nSec-WebSocket-Protocol: v5.channel.k8s.io, v4.channel.k8s.io\r\n\r\n');
});

headers.run();

// A hostile agent with a valid token against the Kubernetes proxy, second pass: request bodies
// the API server reads differently from Agate (duplicate keys, escapes, encodings, media types
// Agate cannot read), query spellings the API server's own decoding accepts (`watch=yes`),
// subresources that reach into pods and nodes, and the transport (HTTP/2, trailers, huge headers,
// a second Authorization header). The kube-apiserver's own audit log is the independent witness
// of what reached it; Agate's record must say the same.
// Real kube-apiserver, real Agate process, raw HTTPS and TLS clients, the real kubectl.
import { suite } from '../harness/suite.js';
import * as assert from 'uvu/assert';
import { readFileSync } from 'node:fs';
import { connect as connectH2 } from 'node:http2';
import { gzipSync } from 'node:zlib';
import type { KubeAuditEvent } from '../harness/kube-apiserver.js';
import { agentKubectl, agentToken, busLog, commandsWhere, events, stopKubeAgate, verdictOf, type KubeAgate } from './kube-agate.js';
import { NO_PRIVILEGE_CHANGES, NO_VAULT_CONFIG, admin, audited, complete, raw, startAuditedKube, statusOrBody, tlsSession } from './kube-raw.js';
import { until } from '../harness/until.js';

const test = suite<KubeAgate>('e2e/kubernetes hostile agent: bodies, queries, transport');

const POLICY = `policy:
  default: allow
  rules:
    - id: no-secret-watch
      action: deny
      message: agents do not stream secrets
      match:
        kubernetes: { verbs: [watch], resources: [secrets] }
${NO_VAULT_CONFIG}    - id: no-exec
      action: deny
      message: no shells or tunnels into pods
      match:
        kubernetes: { resources: [pods/exec, pods/attach, pods/portforward] }
${NO_PRIVILEGE_CHANGES}    - id: secrets-read-masked
      action: allow
      mask_client: true
      match:
        kubernetes: { verbs: [get, list], resources: [secrets] }
`;

/** Values that must never reach the agent, nor be overwritten by Agate's mask marker. */
const SECRET = 'hunter2-forms-canary';
const VAULT_VALUE = 'vault-forms-canary';

test.before((ctx) => startAuditedKube(ctx, POLICY, async () => {
  for (const ns of ['prod', 'vault']) await admin(ctx, ['create', 'namespace', ns]);
  await admin(ctx, ['-n', 'prod', 'run', 'victim', '--image=registry.invalid/none', '--restart=Never']);
  await admin(ctx, ['-n', 'vault', 'create', 'configmap', 'db', `--from-literal=password=${VAULT_VALUE}`]);
  await admin(ctx, ['-n', 'default', 'create', 'secret', 'generic', 'keep', `--from-literal=key=${SECRET}`]);
  for (const name of ['fin', 'fin2']) await admin(ctx, ['-n', 'default', 'create', 'configmap', name, '--from-literal=a=b']);
}));

test.after((ctx) => stopKubeAgate(ctx));

async function stored(ctx: KubeAgate, kind: string, name: string, jsonpath: string): Promise<string> {
  const r = await ctx.kube.kubectl(['-n', 'default', 'get', kind, name, '-o', `jsonpath=${jsonpath}`]);
  return r.code === 0 ? r.stdout : `(absent: ${r.stderr.trim()})`;
}

const storedSecret = async (ctx: KubeAgate) => Buffer.from(await stored(ctx, 'secret', 'keep', '{.data.key}'), 'base64').toString();

test('watch spelled as the API server reads it (yes, on, empty, percent-encoded) is a watch to policy', async (ctx) => {
  // The API server's query decoding makes any value but 0 and false (any case) true.
  const spellings = ['watch=yes', 'watch=on', 'watch=', 'watch', 'watch=%31', 'watch=TRUE', 'watch=y&watch=false'];
  const answers: string[] = [];
  for (const q of spellings) {
    const r = await raw(ctx, 'GET', `/api/v1/namespaces/default/secrets?${q}&timeoutSeconds=1`);
    answers.push(`${q} -> ${r.status} ${r.body.slice(0, 120)}`);
    assert.not.ok(r.body.includes(Buffer.from(SECRET).toString('base64')), answers.at(-1));
    assert.is(r.status, 403, answers.at(-1));
    assert.match(statusOrBody(r), 'by rule "no-secret-watch"', answers.at(-1));
  }
  // A false watch is a list, which the masked rule allows.
  for (const q of ['watch=0', 'watch=false', 'watch=False']) assert.is((await raw(ctx, 'GET', `/api/v1/namespaces/default/secrets?${q}`)).status, 200, q);
  const watched = await audited(ctx, (e) => e.verb === 'watch' && e.objectRef?.resource === 'secrets');
  assert.equal(watched.map((e) => e.requestURI), [], answers.join('\n'));
  // Agate's record says the same: each a watch, refused by that rule.
  const e = await until('the watches recorded with their verdicts', () => {
    const evs = events(ctx);
    const cs = commandsWhere(evs, (c) => c.text.startsWith('GET /api/v1/namespaces/default/secrets?watch') && c.text.includes('timeoutSeconds=1'));
    return cs.length === spellings.length && cs.every((c) => verdictOf(evs, c) !== undefined) ? { evs, cs } : undefined;
  });
  assert.equal(e.cs.map((c) => [c.attributes.verb, verdictOf(e.evs, c)?.rule_id]), spellings.map(() => ['watch', 'no-secret-watch']));
});

test('spellings of a denied read (slashes, dot segments, backslashes, encodings, case, dryRun, the watch path) never return the value', async (ctx) => {
  const spellings = [
    '/api/v1/namespaces/vault/configmaps/db/',
    '//api/v1/namespaces/vault/configmaps/db',
    '/api/v1/namespaces/default/../vault/configmaps/db',
    '/api/v1/namespaces/default/%2e%2e/vault/configmaps/db',
    '/api/v1/namespaces/default\\..\\vault/configmaps/db',
    '/api/v1/namespaces/default%5C..%5Cvault/configmaps/db',
    '/api/v1/namespaces/vault%2Fconfigmaps%2Fdb',
    '/api/v1/namespaces/%76ault/configmaps/db',
    '/api/v1/namespaces/VAULT/configmaps/db',
    '/api/v1/namespaces/vault/configmaps/./db?dryRun=All',
    '/api/v1/namespaces/vault/configmaps/db%2f',
    '/api/v1/watch/namespaces/vault/configmaps/db?timeoutSeconds=1',
    '/api/v1/namespaces/vault/configmaps?fieldSelector=metadata.name%3Ddb',
    '/api/v1/namespaces/vault/configmaps?watch=on&timeoutSeconds=1',
  ];
  const answers: string[] = [];
  for (const path of spellings) {
    const r = await raw(ctx, 'GET', path);
    answers.push(`${path} -> ${r.status}`);
    assert.not.ok(r.body.includes(VAULT_VALUE), `${path} returned the value (${r.status})`);
    assert.ok(r.status >= 400, answers.at(-1));
  }
  const served = await audited(ctx, (e) => e.objectRef?.namespace === 'vault' && e.objectRef.resource === 'configmaps' && e.user.username === 'agate-admin' && e.verb !== 'create' && (e.responseStatus?.code ?? 0) < 300);
  assert.equal(served.map((e) => e.requestURI), [], answers.join('\n'));
});

test('a resource request by a method that has no RBAC verb (OPTIONS, TRACE, PROPFIND, …) is refused before the API server sees it', async (ctx) => {
  const answers: string[] = [];
  for (const method of ['OPTIONS', 'TRACE', 'PROPFIND', 'MKCOL', 'PURGE', 'LINK']) {
    for (const path of ['/api/v1/namespaces/vault/configmaps/db', '/api/v1/namespaces/prod/pods/victim']) {
      const r = await raw(ctx, method, `${path}?probe=method-${method}`);
      answers.push(`${method} ${path} -> ${r.status}`);
      assert.not.ok(r.body.includes(VAULT_VALUE), answers.at(-1));
      assert.is(r.status, 405, `${answers.at(-1)} ${r.body.slice(0, 200)}`);
    }
  }
  const reached = await audited(ctx, (e) => e.requestURI.includes('probe=method-'));
  assert.equal(reached.map((e) => `${e.verb} ${e.requestURI} ${e.responseStatus?.code}`), [], answers.join('\n'));
});

test('a JSON body with duplicate keys (which the API server merges or reads differently) cannot hide a token Secret, finalizers or a mask marker', async (ctx) => {
  // Go keeps a string field when a later duplicate is null; JSON.parse keeps the null.
  const token = '{"apiVersion":"v1","kind":"Secret","metadata":{"name":"dup-token","annotations":{"kubernetes.io/service-account.name":"default"}},"type":"kubernetes.io/service-account-token","type":null}';
  const a = await raw(ctx, 'POST', '/api/v1/namespaces/default/secrets', { 'content-type': 'application/json' }, token);
  assert.match(await stored(ctx, 'secret', 'dup-token', '{.type}'), '(absent', `a token Secret was created (${a.status} ${a.body.slice(0, 200)})`);
  assert.is(a.status, 403, a.body.slice(0, 300));
  assert.match(statusOrBody(a), 'by rule "no-privilege-changes"');
  // Go decodes a second `metadata` object into the same struct: the first one's finalizers stay.
  const fin = '{"apiVersion":"v1","kind":"ConfigMap","metadata":{"name":"fin","finalizers":["example.com/keep"]},"metadata":{"name":"fin"},"data":{"a":"c"}}';
  const b = await raw(ctx, 'PUT', '/api/v1/namespaces/default/configmaps/fin', { 'content-type': 'application/json' }, fin);
  assert.is(await stored(ctx, 'configmap', 'fin', '{.metadata.finalizers}'), '', `finalizers were set (${b.status})`);
  assert.is(b.status, 403, b.body.slice(0, 300));
  // Go merges a second map into the first: the escaped marker lands in the Secret.
  const marker = '{"apiVersion":"v1","kind":"Secret","metadata":{"name":"keep"},"stringData":{"key":"\\u005bmasked]"},"stringData":{}}';
  const c = await raw(ctx, 'PUT', '/api/v1/namespaces/default/secrets/keep', { 'content-type': 'application/json' }, marker);
  assert.is(await storedSecret(ctx), SECRET, `the stored value was overwritten (${c.status} ${c.body.slice(0, 200)})`);
  assert.ok(c.status >= 400, `${c.status}`);
  // A patch with duplicate keys is refused just the same (merge patches are applied as Go maps).
  const d = await raw(ctx, 'PATCH', '/api/v1/namespaces/default/secrets/keep', { 'content-type': 'application/merge-patch+json' }, '{"stringData":{"key":"\\u005bmasked]"},"stringData":{}}');
  assert.is(await storedSecret(ctx), SECRET, `the stored value was overwritten by a patch (${d.status})`);
  const writes = await audited(ctx, (e) => (e.verb === 'create' && e.objectRef?.name === 'dup-token') || (['fin', 'keep'].includes(e.objectRef?.name ?? '') && ['update', 'patch'].includes(e.verb)));
  assert.equal(writes.filter((w) => (w.responseStatus?.code ?? 0) < 300).map((w) => `${w.verb} ${w.requestURI}`), []);
  // Agate's record says why.
  const e = events(ctx);
  const dup = commandsWhere(e, (cmd) => cmd.text.startsWith('PUT /api/v1/namespaces/default/configmaps/fin'));
  assert.ok(dup.length > 0 && dup.every((cmd) => cmd.attributes.body === 'unreadable'), JSON.stringify(dup.map((x) => x.attributes)));
});

/** A length-delimited protobuf field (wire type 2): the only kind these messages need. */
function pbField(field: number, value: Buffer | string): Buffer {
  const bytes = Buffer.from(value);
  const varint = (n: number): number[] => (n < 0x80 ? [n] : [(n & 0x7f) | 0x80, ...varint(n >>> 7)]);
  return Buffer.concat([Buffer.from([...varint((field << 3) | 2), ...varint(bytes.length)]), bytes]);
}

test('a protobuf update (field numbers, no field names in its bytes) cannot set finalizers unseen', async (ctx) => {
  // k8s.io/api core/v1 ConfigMap: metadata = 1 (ObjectMeta: name = 1, namespace = 3, finalizers = 14), data = 2.
  const metadata = Buffer.concat([pbField(1, 'fin'), pbField(3, 'default'), pbField(14, 'example.com/keep')]);
  const configMap = Buffer.concat([pbField(1, metadata), pbField(2, Buffer.concat([pbField(1, 'a'), pbField(2, 'pb')]))]);
  // The envelope: magic, then runtime.Unknown { typeMeta = 1 { apiVersion = 1, kind = 2 }, raw = 2 }.
  const body = Buffer.concat([Buffer.from('k8s\0'), pbField(1, Buffer.concat([pbField(1, 'v1'), pbField(2, 'ConfigMap')])), pbField(2, configMap)]);
  const r = await raw(ctx, 'PUT', '/api/v1/namespaces/default/configmaps/fin', { 'content-type': 'application/vnd.kubernetes.protobuf' }, body);
  assert.is(await stored(ctx, 'configmap', 'fin', '{.metadata.finalizers}'), '', `finalizers were set (${r.status} ${r.body.slice(0, 200)})`);
  assert.is(r.status, 403, r.body.slice(0, 300));
  assert.match(statusOrBody(r), 'by rule "no-privilege-changes"');
});

test('keys in another case are ignored by the API server, as by Agate', async (ctx) => {
  const body = '{"apiVersion":"v1","kind":"ConfigMap","metadata":{"name":"fin2","Finalizers":["example.com/keep"]},"data":{"a":"d"}}';
  const r = await raw(ctx, 'PUT', '/api/v1/namespaces/default/configmaps/fin2', { 'content-type': 'application/json' }, body);
  assert.is(await stored(ctx, 'configmap', 'fin2', '{.metadata.finalizers}'), '', `finalizers were set through a key in another case (${r.status})`);
  // A type in another case is not a field either, but Agate counts it as named anyway (fail closed).
  const t = await raw(ctx, 'POST', '/api/v1/namespaces/default/secrets', { 'content-type': 'application/json' }, '{"apiVersion":"v1","kind":"Secret","metadata":{"name":"case-token","annotations":{"kubernetes.io/service-account.name":"default"}},"Type":"kubernetes.io/service-account-token"}');
  assert.is(t.status, 403, t.body.slice(0, 200));
  assert.match(await stored(ctx, 'secret', 'case-token', '{.type}'), '(absent');
});

test('YAML Agate cannot parse (duplicate keys, aliases) carrying an escaped mask marker is refused: a Secret write, a server-side apply, a ConfigMap', async (ctx) => {
  const writesOfKeepOrFin2 = (e: KubeAuditEvent) => ['keep', 'fin2'].includes(e.objectRef?.name ?? '') && ['update', 'patch'].includes(e.verb);
  const before = await audited(ctx, writesOfKeepOrFin2);
  const yaml = ['apiVersion: v1', 'kind: Secret', 'kind: Secret', 'metadata: {name: keep, namespace: default}', 'stringData: {key: "\\x5Bmasked]"}', ''].join('\n');
  const put = await raw(ctx, 'PUT', '/api/v1/namespaces/default/secrets/keep', { 'content-type': 'application/yaml' }, yaml);
  assert.is(await storedSecret(ctx), SECRET, `overwritten by a YAML update (${put.status} ${put.body.slice(0, 200)})`);
  // YAML Agate reads decodes the escape: the marker is found (422).
  const readable = ['apiVersion: v1', 'kind: Secret', 'metadata: &m {name: keep, namespace: default}', 'stringData: {key: "\\x5Bmasked]"}', ''].join('\n');
  const found = await raw(ctx, 'PATCH', '/api/v1/namespaces/default/secrets/keep?fieldManager=agent&force=true', { 'content-type': 'application/apply-patch+yaml' }, readable);
  assert.is(found.status, 422, found.body.slice(0, 300));
  const apply = ['apiVersion: v1', 'kind: Secret', 'metadata: &m {name: keep, namespace: default}', 'stringData: {key: "\\x5Bmasked]"}', 'immutable: false', 'x: *m', ''].join('\n');
  const ssa = await raw(ctx, 'PATCH', '/api/v1/namespaces/default/secrets/keep?fieldManager=agent&force=true', { 'content-type': 'application/apply-patch+yaml' }, apply);
  assert.is(await storedSecret(ctx), SECRET, `overwritten by a server-side apply (${ssa.status} ${ssa.body.slice(0, 200)})`);
  // A Secret write Agate cannot read counts as naming the token type (privilege.ts): refused by that rule first.
  for (const r of [put, ssa]) {
    assert.is(r.status, 403, r.body.slice(0, 300));
    assert.match(statusOrBody(r), 'by rule "no-privilege-changes"');
  }
  // An update Agate cannot read counts as setting finalizers; any other write it cannot read (a
  // create) is refused by the built-in guard, whatever the policy default.
  const cm = ['apiVersion: v1', 'kind: ConfigMap', 'kind: ConfigMap', 'metadata: {name: yaml-cm, namespace: default}', 'data: {a: "\\x5Bmasked]"}', ''].join('\n');
  const update = await raw(ctx, 'PUT', '/api/v1/namespaces/default/configmaps/fin2', { 'content-type': 'application/yaml' }, cm.replace('yaml-cm', 'fin2'));
  assert.is(update.status, 403, update.body.slice(0, 300));
  assert.match(statusOrBody(update), 'by rule "no-privilege-changes"');
  assert.is(await stored(ctx, 'configmap', 'fin2', '{.data.a}'), 'd'); // as the case test left it
  const create = await raw(ctx, 'POST', '/api/v1/namespaces/default/configmaps', { 'content-type': 'application/yaml' }, cm);
  assert.is(create.status, 403, create.body.slice(0, 300));
  assert.match(statusOrBody(create), 'cannot be read');
  assert.match(await stored(ctx, 'configmap', 'yaml-cm', '{.data.a}'), '(absent');
  const after = await audited(ctx, writesOfKeepOrFin2);
  assert.equal(after.slice(before.length).map((e) => `${e.verb} ${e.requestURI} ${e.responseStatus?.code}`), []);
});

test('bodies Agate cannot read (gzip-encoded, an unknown media type, CBOR) are refused before the API server sees them', async (ctx) => {
  const cm = (name: string) => JSON.stringify({ apiVersion: 'v1', kind: 'ConfigMap', metadata: { name }, data: { k: 'v' } });
  const tries: Array<[string, Record<string, string>, Buffer | string]> = [
    ['enc-gzip', { 'content-type': 'application/json', 'content-encoding': 'gzip' }, gzipSync(cm('enc-gzip'))],
    ['enc-deflate', { 'content-type': 'application/json', 'content-encoding': 'deflate' }, cm('enc-deflate')],
    ['enc-text', { 'content-type': 'text/plain' }, cm('enc-text')],
    // A self-described CBOR map {"kind": "ConfigMap"}, as newer API servers accept with a feature gate.
    ['enc-cbor', { 'content-type': 'application/cbor' }, Buffer.from('d9d9f7a1646b696e6469436f6e6669674d6170', 'hex')],
  ];
  for (const [name, headers, body] of tries) {
    const r = await raw(ctx, 'POST', `/api/v1/namespaces/default/configmaps?probe=${name}`, headers, body);
    assert.ok(r.status === 403 || r.status === 415, `${name}: ${r.status} ${r.body.slice(0, 200)}`);
  }
  const reached = await audited(ctx, (e) => /[?&]probe=enc-/.test(e.requestURI));
  assert.equal(reached.map((e) => `${e.requestURI} ${e.responseStatus?.code}`), []);
  const e = events(ctx);
  const refused = commandsWhere(e, (c) => c.text.includes('probe=enc-'));
  assert.is(refused.length, tries.length);
});

test('exec, attach and port-forward spelled with encodings, trailing slashes, case and repeated commands never reach a pod', async (ctx) => {
  const token = await agentToken(ctx);
  const tries: string[] = [];
  const paths = [
    '/api/v1/namespaces/prod/pods/victim/%65xec?command=id',
    '/api/v1/namespaces/prod/pods/victim/exec/?command=id',
    '/api/v1/namespaces/prod/pods/victim/exec?command=true&command=sh&command=-c&command=id',
    '/api/v1/namespaces/prod/pods/victim/exec?%63ommand=id&stdout=1',
    '/api/v1/namespaces/prod/pods/victim/portforward?ports=8080',
    '/api/v1/namespaces/prod/pods/victim:8080/portforward?ports=8080',
    '/api/v1/namespaces/prod/pods/victim/attach;x?stdin=1',
  ];
  for (const path of paths) {
    const s = await tlsSession(ctx);
    s.write(`GET ${path} HTTP/1.1\r\nHost: 127.0.0.1\r\nAuthorization: Bearer ${token}\r\nConnection: Upgrade\r\nUpgrade: websocket\r\nSec-WebSocket-Protocol: v5.channel.k8s.io\r\nSec-WebSocket-Version: 13\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n\r\n`);
    const got = await s.settle(complete);
    s.end();
    tries.push(`${path}: ${got.split('\r\n')[0]}`);
    assert.match(got, /^HTTP\/1\.1 (403|404) /, tries.at(-1));
  }
  const reached = await audited(ctx, (e) => ['exec', 'attach', 'portforward'].includes(e.objectRef?.subresource ?? ''));
  assert.equal(reached.map((e) => `${e.requestURI} ${e.responseStatus?.code}`), [], tries.join('\n'));
  // Every command word of a repeated `command` is in the record's text.
  const e = await until('the repeated-command exec recorded', () => {
    const cs = commandsWhere(events(ctx), (c) => c.text.includes('command=true&command=sh&command=-c&command=id'));
    return cs.length > 0 ? cs : undefined;
  });
  assert.is(verdictOf(events(ctx), e[0]!)?.rule_id, 'no-exec');
});

test('pods/proxy, services/proxy and the old /proxy/ paths reach into pods like a port-forward: refused where it is', async (ctx) => {
  const paths = [
    '/api/v1/namespaces/prod/pods/victim/proxy/',
    '/api/v1/namespaces/prod/pods/victim:8080/proxy/metrics',
    '/api/v1/namespaces/prod/pods/http:victim:8080/proxy/',
    '/api/v1/namespaces/default/services/https:kubernetes:443/proxy/api/v1/namespaces/vault/configmaps/db',
    '/api/v1/proxy/namespaces/prod/pods/victim/',
    '/api/v1/proxy/nodes/worker-1/exec/prod/victim/victim?command=id',
  ];
  const answers: string[] = [];
  for (const path of paths) {
    const r = await raw(ctx, 'GET', path);
    answers.push(`${path} -> ${r.status} ${r.body.slice(0, 160)}`);
    assert.not.ok(r.body.includes(VAULT_VALUE), answers.at(-1));
    assert.is(r.status, 403, answers.at(-1));
    assert.match(statusOrBody(r), 'by rule "no-exec"', answers.at(-1));
  }
  const reached = await audited(ctx, (e) => e.objectRef?.subresource === 'proxy' || /\/proxy\//.test(e.requestURI));
  assert.equal(reached.map((e) => e.requestURI), [], answers.join('\n'));
});

test('HTTP/2, chunked bodies with trailers, huge headers and a second Authorization header get no request past policy', async (ctx) => {
  const token = await agentToken(ctx);
  // HTTP/2: the listener speaks HTTP/1.1 only; an h2 client gets no session.
  const h2 = await new Promise<string>((resolve) => {
    const session = connectH2(`https://127.0.0.1:${ctx.port}`, { ca: readFileSync(ctx.kube.other.caFile) });
    session.on('error', (err) => resolve(`error: ${err.message}`));
    const req = session.request({ ':method': 'DELETE', ':path': '/api/v1/namespaces/prod/pods/victim', authorization: `Bearer ${token}` });
    req.on('response', (h) => resolve(`response ${String(h[':status'])}`));
    req.on('error', (err) => resolve(`error: ${err.message}`));
    req.end();
  });
  assert.match(h2, /^error/, h2);
  // A token Secret split across chunks, with trailers that would name another media type.
  const body = JSON.stringify({ apiVersion: 'v1', kind: 'Secret', metadata: { name: 'chunked-token', annotations: { 'kubernetes.io/service-account.name': 'default' } }, type: 'kubernetes.io/service-account-token' });
  const cut = body.indexOf('service-account-token') + 8;
  const chunk = (s: string) => `${Buffer.byteLength(s).toString(16)}\r\n${s}\r\n`;
  const s = await tlsSession(ctx);
  s.write(`POST /api/v1/namespaces/default/secrets HTTP/1.1\r\nHost: 127.0.0.1\r\nAuthorization: Bearer ${token}\r\nContent-Type: application/json\r\nTransfer-Encoding: chunked\r\nTrailer: Content-Type\r\n\r\n${chunk(body.slice(0, cut))}${chunk(body.slice(cut))}0\r\nContent-Type: application/vnd.kubernetes.protobuf\r\n\r\n`);
  const chunked = await s.settle(complete);
  s.end();
  assert.match(chunked, /^HTTP\/1\.1 403 /, chunked.slice(0, 300));
  assert.match(chunked, 'no-privilege-changes');
  assert.match(await stored(ctx, 'secret', 'chunked-token', '{.type}'), '(absent');
  // Headers beyond Node's limit: refused by the HTTP parser.
  const big = await raw(ctx, 'DELETE', '/api/v1/namespaces/prod/pods/victim', { 'x-pad': 'a'.repeat(20_000) }).catch((err: Error) => ({ status: 0, headers: {}, body: err.message }));
  assert.ok(big.status === 431 || big.status === 0, `${big.status}`);
  // A second Authorization header (the API server's own token for a weak user): never forwarded;
  // the API server sees Agate's identity only, whichever comes first.
  const two = await tlsSession(ctx);
  two.write(`GET /api/v1/namespaces/default/configmaps?labelSelector=probe%3Dtwo-auth HTTP/1.1\r\nHost: 127.0.0.1\r\nAuthorization: Bearer ${token}\r\nAuthorization: Bearer ${ctx.kube.userToken}\r\n\r\n`);
  const twoGot = await two.settle(complete);
  two.end();
  assert.match(twoGot, /^HTTP\/1\.1 200 /, twoGot.slice(0, 200));
  const reversed = await tlsSession(ctx);
  reversed.write(`GET /api/v1/namespaces/default/configmaps?labelSelector=probe%3Dtwo-auth-b HTTP/1.1\r\nHost: 127.0.0.1\r\nAuthorization: Bearer ${ctx.kube.userToken}\r\nAuthorization: Bearer ${token}\r\n\r\n`);
  const reversedGot = await reversed.settle(complete);
  reversed.end();
  assert.match(reversedGot, /^HTTP\/1\.1 401 /, reversedGot.slice(0, 200));
  // Impersonation on an upgrade request (an allowed watch over a WebSocket): refused before policy.
  const imp = await tlsSession(ctx);
  imp.write(`GET /api/v1/namespaces/default/configmaps?watch=1 HTTP/1.1\r\nHost: 127.0.0.1\r\nAuthorization: Bearer ${token}\r\nImpersonate-Group: system:masters\r\nImpersonate-User: probe-impersonated\r\nConnection: Upgrade\r\nUpgrade: websocket\r\nSec-WebSocket-Version: 13\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n\r\n`);
  const impGot = await imp.settle(complete);
  imp.end();
  assert.match(impGot, /^HTTP\/1\.1 403 /, impGot.slice(0, 200));
  assert.match(impGot, 'impersonation headers');
  assert.equal(await audited(ctx, (e) => e.user.username === 'probe-impersonated' || JSON.stringify(e).includes('probe-impersonated')), []);
  const seen = await audited(ctx, (e) => /probe%3Dtwo-auth|probe=two-auth/.test(e.requestURI));
  assert.equal(seen.map((e) => e.user.username), ['agate-admin']);
  // And the pod targeted by the HTTP/2 and oversized requests is still there.
  const deleted = await audited(ctx, (e) => e.verb === 'delete' && e.objectRef?.name === 'victim');
  assert.equal(deleted, []);
});

test('a custom resource named like a core one (secrets.apps.evil, kind Secret) falls under the rules for that name, never outside them', async (ctx) => {
  const crd = {
    apiVersion: 'apiextensions.k8s.io/v1', kind: 'CustomResourceDefinition', metadata: { name: 'secrets.apps.evil' },
    spec: {
      group: 'apps.evil', scope: 'Namespaced', names: { plural: 'secrets', singular: 'secret', kind: 'Secret' },
      versions: [{ name: 'v1', served: true, storage: true, schema: { openAPIV3Schema: { type: 'object', 'x-kubernetes-preserve-unknown-fields': true } } }],
    },
  };
  const made = await ctx.kube.kubectl(['apply', '-f', '-'], { input: JSON.stringify(crd) });
  assert.is(made.code, 0, made.stderr);
  const ready = await ctx.kube.kubectl(['wait', '--for=condition=Established', '--timeout=30s', 'crd/secrets.apps.evil']);
  assert.is(ready.code, 0, ready.stderr);
  const evil = Buffer.from('evil-lookalike-canary').toString('base64');
  const obj = await ctx.kube.kubectl(['apply', '-f', '-'], { input: JSON.stringify({ apiVersion: 'apps.evil/v1', kind: 'Secret', metadata: { name: 'lookalike', namespace: 'default' }, data: { key: evil } }) });
  assert.is(obj.code, 0, obj.stderr);
  // Read: masked by the rule on `secrets`, whatever the group.
  for (const path of ['/apis/apps.evil/v1/namespaces/default/secrets/lookalike', '/apis/apps.evil/v1/namespaces/default/secrets']) {
    const r = await raw(ctx, 'GET', path);
    assert.is(r.status, 200, `${path}: ${r.body.slice(0, 200)}`);
    assert.not.ok(r.body.includes(evil), `${path} returned the value`);
  }
  // Watch: refused like the core one's.
  const w = await raw(ctx, 'GET', '/apis/apps.evil/v1/namespaces/default/secrets?watch=yes&timeoutSeconds=1');
  assert.is(w.status, 403, w.body.slice(0, 200));
  assert.match(statusOrBody(w), 'by rule "no-secret-watch"');
  const watched = await audited(ctx, (e) => e.verb === 'watch' && e.objectRef?.resource === 'secrets');
  assert.equal(watched.map((e) => e.requestURI), []);
  const e = events(ctx);
  const reads = commandsWhere(e, (c) => c.text === 'GET /apis/apps.evil/v1/namespaces/default/secrets/lookalike');
  assert.equal(reads.map((c) => [c.attributes.api_group, verdictOf(e, c)?.rule_id]), [['apps.evil', 'secrets-read-masked']]);
});

test('kubectl --raw takes the same decisions as kubectl itself', async (ctx) => {
  const r = await agentKubectl(ctx, ['get', '--raw', '/api/v1/namespaces/vault/configmaps/db']);
  assert.is.not(r.code, 0);
  assert.match(r.stderr, /Forbidden|no-vault-config/);
  assert.not.ok(r.stdout.includes(VAULT_VALUE));
  const w = await agentKubectl(ctx, ['get', '--raw', '/api/v1/namespaces/default/secrets?watch=yes&timeoutSeconds=1']);
  assert.is.not(w.code, 0, w.stdout.slice(0, 200));
  assert.match(w.stderr, 'no-secret-watch');
  const log = busLog(ctx);
  assert.not.ok(log.includes(SECRET) || log.includes(VAULT_VALUE), 'a canary is in the bus log');
});

test.run();

// A hostile agent with a valid token against the Kubernetes proxy: each test tries to do or read
// what the policy below forbids, through a door other than the obvious one (raw HTTP framing,
// path spelling, other verbs and subresources that have the same effect, media types Agate
// cannot mask). The API server's own audit log is the independent witness of what was done.
// Real kube-apiserver, real Agate process, raw HTTPS and TLS clients.
import { suite } from '../harness/suite.js';
import * as assert from 'uvu/assert';
import type { KubeAuditEvent } from '../harness/kube-apiserver.js';
import { agentToken, busLog, commandsWhere, events, stopKubeAgate, verdictOf, type KubeAgate } from './kube-agate.js';
import { NO_POD_DELETES_IN_PROD, NO_PRIVILEGE_CHANGES, NO_VAULT_CONFIG, SECRETS_READ_MASKED, admin, audited, complete, raw, startAuditedKube, statusMessage, tlsSession } from './kube-raw.js';
import { until } from '../harness/until.js';

const test = suite<KubeAgate>('e2e/kubernetes hostile agent');

const POLICY = `policy:
  default: allow
  rules:
${NO_POD_DELETES_IN_PROD}${NO_VAULT_CONFIG}    - id: no-exec
      action: deny
      message: no shells in pods
      match:
        kubernetes: { resources: [pods/exec, pods/attach] }
${NO_PRIVILEGE_CHANGES}${SECRETS_READ_MASKED}`;

/** A value that must never reach the agent (nor the record). */
const SECRET = 'hunter2-hostile-canary';
const VAULT_VALUE = 'vault-config-canary';

test.before((ctx) => startAuditedKube(ctx, POLICY, async () => {
  for (const ns of ['prod', 'vault']) await admin(ctx, ['create', 'namespace', ns]);
  for (const name of ['victim', 'victim2', 'victim3', 'victim4']) await admin(ctx, ['-n', 'prod', 'run', name, '--image=registry.invalid/none', '--restart=Never']);
  await admin(ctx, ['-n', 'vault', 'create', 'configmap', 'db', `--from-literal=password=${VAULT_VALUE}`]);
  // Applied, so its last-applied-configuration annotation carries the value too.
  await admin(ctx, ['apply', '-f', '-'], JSON.stringify({ apiVersion: 'v1', kind: 'Secret', metadata: { name: 'token', namespace: 'default' }, stringData: { key: SECRET } }));
}));

test.after((ctx) => stopKubeAgate(ctx));

async function podExists(ctx: KubeAgate, name: string): Promise<boolean> {
  const r = await ctx.kube.kubectl(['-n', 'prod', 'get', 'pod', name, '-o', 'jsonpath={.metadata.deletionTimestamp}']);
  return r.code === 0 && r.stdout.trim() === '';
}

/** The API server's audit events (ResponseComplete stage) about one object in prod, other than the admin's own setup. */
async function auditedOn(ctx: KubeAgate, name: string, test: (e: KubeAuditEvent) => boolean = () => true): Promise<KubeAuditEvent[]> {
  return audited(ctx, (e) => e.objectRef?.namespace === 'prod' && e.objectRef?.name === name && e.verb !== 'create' && e.verb !== 'get' && test(e));
}

test('an Upgrade request on an allowed path cannot carry a second, unchecked request to the API server', async (ctx) => {
  const token = await agentToken(ctx);
  const upgradeHead = (path: string) => `GET ${path} HTTP/1.1\r\nHost: 127.0.0.1\r\nAuthorization: Bearer ${token}\r\nConnection: Upgrade\r\nUpgrade: websocket\r\n\r\n`;
  const smuggled = (name: string) => `DELETE /api/v1/namespaces/prod/pods/${name} HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Length: 0\r\n\r\n`;

  // Sent once the API server answered the allowed request, on the same connection.
  const a = await tlsSession(ctx);
  a.write(upgradeHead('/version'));
  const first = await a.settle(complete);
  a.write(smuggled('victim'));
  const afterA = await a.settle((s) => s.split('HTTP/1.1 ').length > 2, 3000);
  a.end();
  // Pipelined behind the upgrade request in one write.
  const b = await tlsSession(ctx);
  b.write(upgradeHead('/api/v1/namespaces/default/configmaps') + smuggled('victim2'));
  const afterB = await b.settle((s) => s.split('HTTP/1.1 ').length > 2, 3000);
  b.end();

  // An upgrade request that declares a body (the smuggled request as its "body") is refused.
  const c = await tlsSession(ctx);
  const bodied = smuggled('victim');
  c.write(`GET /version HTTP/1.1\r\nHost: 127.0.0.1\r\nAuthorization: Bearer ${token}\r\nConnection: Upgrade\r\nUpgrade: websocket\r\nContent-Length: ${bodied.length}\r\n\r\n${bodied}`);
  const afterC = await c.settle(complete);
  c.end();
  assert.match(afterC, /^HTTP\/1\.1 400 /, afterC);
  assert.match(afterC, 'it declares a body');

  assert.ok(await podExists(ctx, 'victim'), `pod victim was deleted through the upgraded connection; client saw:\n${first}\n---\n${afterA}`);
  assert.ok(await podExists(ctx, 'victim2'), `pod victim2 was deleted through the pipelined upgrade; client saw:\n${afterB}`);
  assert.equal(await auditedOn(ctx, 'victim'), [], 'the API server handled a request for victim');
  assert.equal(await auditedOn(ctx, 'victim2'), [], 'the API server handled a request for victim2');
  assert.not.match(afterA + afterB, /"kind":"Pod"/, 'a Pod object came back to the smuggled DELETE');
  // The allowed request itself was answered, and its connection closed after it.
  assert.match(first, /^HTTP\/1\.1 200 [\s\S]*"gitVersion"/);
});

test('a cluster-wide list or watch of a namespace-denied resource is refused, not answered with that namespace\'s objects', async (ctx) => {
  for (const path of ['/api/v1/configmaps', '/api/v1/configmaps?fieldSelector=metadata.name%3Ddb', '/api/v1/configmaps?watch=1&timeoutSeconds=1']) {
    const r = await raw(ctx, 'GET', path);
    assert.not.ok(r.body.includes(VAULT_VALUE), `${path} returned the vault ConfigMap (${r.status})`);
    assert.is(r.status, 403, `${path}: ${r.status} ${r.body.slice(0, 200)}`);
    assert.match(statusMessage(r), 'by rule "no-vault-config"');
  }
  // Within another namespace it still works.
  assert.is((await raw(ctx, 'GET', '/api/v1/namespaces/default/configmaps')).status, 200);
});

test('evicting a pod is a deletion: refused where deleting it is, and the API server evicts nothing', async (ctx) => {
  const body = JSON.stringify({ apiVersion: 'policy/v1', kind: 'Eviction', metadata: { name: 'victim3', namespace: 'prod' } });
  const r = await raw(ctx, 'POST', '/api/v1/namespaces/prod/pods/victim3/eviction', { 'content-type': 'application/json' }, body);
  assert.is(r.status, 403, `eviction answered ${r.status}: ${r.body.slice(0, 300)}`);
  assert.match(statusMessage(r), 'by rule "no-pod-deletes-in-prod"');
  assert.ok(await podExists(ctx, 'victim3'), 'the pod was evicted');
  assert.equal(await auditedOn(ctx, 'victim3'), [], 'the API server handled the eviction');
});

test('path spellings of a denied DELETE are each refused (or never reach the pod) and nothing is deleted', async (ctx) => {
  const spellings = [
    '/api/v1/namespaces/prod/pods/victim4/',
    '/api/v1/namespaces/prod/pods/../pods/victim4',
    '/api/v1/namespaces/default/../prod/pods/./victim4',
    '/api/v1/namespaces%2Fprod%2Fpods%2Fvictim4',
    '/api/v1/namespaces/prod/pods/victim4?dryRun=All&gracePeriodSeconds=0',
    '/api//v1/namespaces/prod/pods/victim4',
    '/api/v1//namespaces/prod/pods/victim4',
    '/api/v1/namespaces/prod//pods/victim4',
    '//api/v1/namespaces/prod/pods/victim4',
    '/API/v1/namespaces/prod/pods/victim4',
    '/api/v1/namespaces/prod/pods/victim4%00',
    '/api/v1/namespaces/prod/pods?fieldSelector=metadata.name%3Dvictim4',
    '/api/v1/namespaces/prod/pods?labelSelector=run%3Dvictim4',
  ];
  const answers: string[] = [];
  for (const path of spellings) {
    const r = await raw(ctx, 'DELETE', path);
    answers.push(`${path} -> ${r.status}`);
    assert.ok(r.status >= 400, `${path} answered ${r.status}: ${r.body.slice(0, 300)}`);
    assert.ok(await podExists(ctx, 'victim4'), `deleted by ${path}`);
  }
  assert.equal(await auditedOn(ctx, 'victim4', (e) => e.verb === 'delete' && (e.responseStatus?.code ?? 0) < 300), [], answers.join('\n'));
});

test('a masked Secret read in YAML, protobuf, as a Table with objects, or as metadata never shows the value', async (ctx) => {
  const forms: Array<[string, Record<string, string>]> = [
    ['/api/v1/namespaces/default/secrets/token', { accept: 'application/yaml' }],
    ['/api/v1/namespaces/default/secrets/token', { accept: 'application/vnd.kubernetes.protobuf' }],
    ['/api/v1/namespaces/default/secrets/token', { accept: 'application/vnd.kubernetes.protobuf, application/yaml' }],
    ['/api/v1/namespaces/default/secrets?includeObject=Object', { accept: 'application/json;as=Table;v=v1;g=meta.k8s.io' }],
    ['/api/v1/namespaces/default/secrets/token', { accept: 'application/json;as=PartialObjectMetadata;v=v1;g=meta.k8s.io' }],
    ['/api/v1/namespaces/default/secrets', { accept: 'application/json;as=PartialObjectMetadataList;v=v1;g=meta.k8s.io' }],
    ['/api/v1/secrets?watch=1&timeoutSeconds=1', { accept: 'application/yaml' }],
    ['/api/v1/secrets?watch=1&timeoutSeconds=1&resourceVersion=0&allowWatchBookmarks=true', { accept: 'application/json;as=Table;v=v1;g=meta.k8s.io' }],
  ];
  const encoded = Buffer.from(SECRET).toString('base64');
  for (const [path, headers] of forms) {
    const r = await raw(ctx, 'GET', path, headers);
    const seen = `${path} ${JSON.stringify(headers)} -> ${r.status} ${r.headers['content-type']}: ${r.body.slice(0, 200)}`;
    assert.not.ok(r.body.includes(SECRET) || r.body.includes(encoded), `the value came back: ${seen}`);
    assert.ok(r.status === 200 || r.status === 502, seen);
  }
  const log = busLog(ctx);
  assert.not.ok(log.includes(SECRET) || log.includes(encoded), 'the value is in the bus log');
});

test('exec and attach with any method or transport are refused and the API server never sees them', async (ctx) => {
  const token = await agentToken(ctx);
  const tries: string[] = [];
  for (const method of ['GET', 'POST']) {
    for (const sub of ['exec', 'attach']) {
      for (const upgrade of ['websocket', 'SPDY/3.1']) {
        const s = await tlsSession(ctx);
        const proto = upgrade === 'websocket' ? 'Sec-WebSocket-Protocol: v5.channel.k8s.io\r\nSec-WebSocket-Version: 13\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n' : 'X-Stream-Protocol-Version: v4.channel.k8s.io\r\n';
        s.write(`${method} /api/v1/namespaces/prod/pods/victim/${sub}?command=id&stdout=true HTTP/1.1\r\nHost: 127.0.0.1\r\nAuthorization: Bearer ${token}\r\nConnection: Upgrade\r\nUpgrade: ${upgrade}\r\n${proto}\r\n`);
        const got = await s.settle(complete);
        s.end();
        tries.push(`${method} ${sub} ${upgrade}: ${got.split('\r\n')[0]}`);
        assert.match(got, /^HTTP\/1\.1 403 /, tries.at(-1));
      }
      // Without an upgrade: a plain request.
      const r = await raw(ctx, method, `/api/v1/namespaces/prod/pods/victim/${sub}?command=id&stdout=true`);
      tries.push(`${method} ${sub} plain: ${r.status}`);
      assert.is(r.status, 403, tries.at(-1));
    }
  }
  const audited = (await ctx.kube.auditEvents()).filter((e) => e.objectRef?.subresource === 'exec' || e.objectRef?.subresource === 'attach');
  assert.equal(audited, [], tries.join('\n'));
  const refused = await until('the refusals recorded', () => {
    const e = events(ctx);
    const cs = commandsWhere(e, (c) => /\/(exec|attach)\?/.test(c.text) && verdictOf(e, c)?.rule_id === 'no-exec');
    return cs.length >= 12 ? cs : undefined;
  });
  assert.ok(refused.length >= 12);
});

test('a service-account-token Secret spelled so Agate cannot parse it is still a privilege change', async (ctx) => {
  // YAML the API server reads (an anchor and its alias) but Agate does not parse (no aliases), with
  // the type spelled with an escape, so the raw bytes never contain it either.
  const body = [
    'apiVersion: v1',
    'kind: Secret',
    'metadata: {name: minted, namespace: default, annotations: {kubernetes.io/service-account.name: default}, labels: &l {a: b}}',
    'more: *l',
    'type: "kubernetes.io/service-account\\x2dtoken"',
    '',
  ].join('\n');
  const r = await raw(ctx, 'POST', '/api/v1/namespaces/default/secrets', { 'content-type': 'application/yaml' }, body);
  const made = await ctx.kube.kubectl(['get', 'secret', 'minted', '-o', 'jsonpath={.type}']);
  assert.is.not(made.code, 0, `the Secret was created with type ${made.stdout} (${r.status})`);
  assert.is(r.status, 403, `${r.status}: ${r.body.slice(0, 300)}`);
  assert.match(statusMessage(r), 'by rule "no-privilege-changes"');
});

test('kubectl debug (an ephemeral container) and a node\'s proxy are exec by another name: refused where exec is', async (ctx) => {
  const patch = JSON.stringify({ spec: { ephemeralContainers: [{ name: 'debugger', image: 'registry.invalid/sh', command: ['sh', '-c', 'cat /proc/1/environ'], targetContainerName: 'victim4' }] } });
  const r = await raw(ctx, 'PATCH', '/api/v1/namespaces/prod/pods/victim4/ephemeralcontainers', { 'content-type': 'application/strategic-merge-patch+json' }, patch);
  const containers = await ctx.kube.kubectl(['-n', 'prod', 'get', 'pod', 'victim4', '-o', 'jsonpath={.spec.ephemeralContainers}']);
  assert.is(containers.stdout.trim(), '', `an ephemeral container was added (${r.status})`);
  assert.is(r.status, 403, r.body.slice(0, 300));
  assert.match(statusMessage(r), 'by rule "no-exec"');
  const node = await raw(ctx, 'GET', '/api/v1/nodes/worker-1/proxy/exec/prod/victim4/victim4?command=id&output=1');
  assert.is(node.status, 403, node.body.slice(0, 300));
  assert.match(statusMessage(node), 'by rule "no-exec"');
  const audited = (await ctx.kube.auditEvents()).filter((e) => e.objectRef?.subresource === 'ephemeralcontainers' || (e.objectRef?.resource === 'nodes' && e.objectRef.subresource === 'proxy'));
  assert.equal(audited, []);
});

test('ambiguous framing (Transfer-Encoding with Content-Length) and impersonation headers in any spelling are refused', async (ctx) => {
  const token = await agentToken(ctx);
  const smuggled = 'DELETE /api/v1/namespaces/prod/pods/victim HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n';
  const s = await tlsSession(ctx);
  s.write(`POST /api/v1/namespaces/default/configmaps HTTP/1.1\r\nHost: 127.0.0.1\r\nAuthorization: Bearer ${token}\r\nContent-Type: application/json\r\nContent-Length: 5\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n${smuggled}`);
  const got = await s.settle((t) => /^HTTP\/1\.1 \d{3}/.test(t));
  s.end();
  assert.match(got, /^HTTP\/1\.1 400 /, got.slice(0, 200));
  assert.ok(await podExists(ctx, 'victim'));
  for (const headers of [{ 'Impersonate-Uid': 'uid-1' } as Record<string, string>, { 'IMPERSONATE-EXTRA-SCOPES': 'admin' }, { 'impersonate-user': 'system:admin', 'impersonate-group': 'system:masters' }]) {
    const r = await raw(ctx, 'GET', '/api/v1/namespaces/default/configmaps', headers);
    assert.is(r.status, 403, JSON.stringify(headers));
    // Refused by Agate itself, before any rule: impersonation is never passed on.
    assert.match(statusMessage(r), 'impersonation headers (kubectl --as) are not allowed through Agate');
  }
});

test.run();

// The hostile agent's third pass at the Kubernetes proxy: reads had through the answer of a
// write or a subresource, Secret values moved where masking does not look, and targets carried
// in the body rather than the path. The kube-apiserver's audit log and the objects it stores,
// read with the administrator's credential, witness what was done; Agate's record must match.
// Real kube-apiserver, real Agate process, raw HTTPS clients.
import { suite } from '../harness/suite.js';
import * as assert from 'uvu/assert';
import { commandsWhere, events, responsesOf, startKubeAgate, stopKubeAgate, verdictOf, type KubeAgate } from './kube-agate.js';
import { SECRETS_READ_MASKED, admin, audited, complete, raw, statusOrBody, tlsSession } from './kube-raw.js';
import { agentToken } from './kube-agate.js';
import { until } from '../harness/until.js';

const test = suite<KubeAgate>('e2e/kubernetes hostile agent, third pass');

const POLICY = `policy:
  default: allow
  rules:
    - id: no-vault-reads
      action: deny
      message: what is in vault is not read by agents
      match:
        kubernetes: { verbs: [get, list, watch], resources: [configmaps, pods, deployments, widgets], namespaces: [vault] }
    - id: no-prod-pod-deletes
      action: deny
      message: pods in prod are not deleted by agents
      match:
        kubernetes: { verbs: [delete], resources: [pods], namespaces: [prod] }
    - id: no-apiserver-internals
      action: deny
      message: the API server's own metrics, logs and profiles are not for agents
      match:
        kubernetes: { paths: [/metrics, /logs/*, /debug/*] }
${SECRETS_READ_MASKED}`;

/** Values that must never reach the agent. */
const VAULT_VALUE = 'vault-third-pass-canary';
const SECRET = 'hunter2-third-pass-canary';
const b64 = (s: string) => Buffer.from(s).toString('base64');

// The API server also trusts front-proxy headers from any certificate of its CA, Agate's included.
test.before(async (ctx) => {
  try {
    Object.assign(ctx, await startKubeAgate(POLICY, '', '', { auditLog: true, requestHeaderAuth: true }));
    await setup(ctx);
  } catch (err) {
    console.error('setup failed:', err);
    throw err;
  }
});

async function setup(ctx: KubeAgate): Promise<void> {
  for (const ns of ['vault', 'dev', 'prod']) await admin(ctx, ['create', 'namespace', ns]);
  for (const ns of ['vault', 'dev']) {
    await admin(ctx, ['-n', ns, 'create', 'configmap', 'db', `--from-literal=password=${VAULT_VALUE}`]);
    await admin(ctx, ['-n', ns, 'run', 'p', '--image=registry.invalid/none', '--restart=Never', `--env=PW=${VAULT_VALUE}`]);
    await admin(ctx, ['-n', ns, 'create', 'deployment', 'd', '--image=registry.invalid/none']);
    await admin(ctx, ['-n', ns, 'set', 'env', 'deployment/d', `PW=${VAULT_VALUE}`]);
  }
  await admin(ctx, ['-n', 'prod', 'run', 'victim', '--image=registry.invalid/none', '--restart=Never']);
  await admin(ctx, ['-n', 'dev', 'run', 'harmless', '--image=registry.invalid/none', '--restart=Never']);
  await admin(ctx, ['create', 'secret', 'generic', 'token', `--from-literal=key=${SECRET}`]);
  // A custom resource with a status subresource, served by the API server itself.
  await admin(ctx, ['apply', '-f', '-'], JSON.stringify({
    apiVersion: 'apiextensions.k8s.io/v1', kind: 'CustomResourceDefinition', metadata: { name: 'widgets.example.com' },
    spec: {
      group: 'example.com', scope: 'Namespaced', names: { plural: 'widgets', singular: 'widget', kind: 'Widget' },
      versions: [{ name: 'v1', served: true, storage: true, subresources: { status: {} }, schema: { openAPIV3Schema: { type: 'object', 'x-kubernetes-preserve-unknown-fields': true } } }],
    },
  }));
  await admin(ctx, ['wait', '--for=condition=Established', 'crd/widgets.example.com', '--timeout=60s']);
  for (const ns of ['vault', 'dev']) await admin(ctx, ['apply', '-f', '-'], JSON.stringify({ apiVersion: 'example.com/v1', kind: 'Widget', metadata: { name: 'w', namespace: ns }, spec: { password: VAULT_VALUE } }));
}

test.after((ctx) => stopKubeAgate(ctx));

const MERGE = { 'content-type': 'application/merge-patch+json' };
const JSON_PATCH = { 'content-type': 'application/json-patch+json' };
const APPLY = { 'content-type': 'application/apply-patch+yaml' };

test('a refused read is not had through the answer of a write (patch, JSON patch test, apply, deletecollection, all dryRun) or of a status subresource, a custom resource\'s too', async (ctx) => {
  const cm = (ns: string) => `/api/v1/namespaces/${ns}/configmaps`;
  const tries = (ns: string): Array<[string, string, Record<string, string>, string | undefined]> => [
    ['PATCH', `${cm(ns)}/db?dryRun=All`, MERGE, '{}'],
    ['PATCH', `${cm(ns)}/db?dryRun=All`, JSON_PATCH, JSON.stringify([{ op: 'test', path: '/data/password', value: VAULT_VALUE }])],
    ['PATCH', `${cm(ns)}/db?dryRun=All&fieldManager=agent`, APPLY, '{"apiVersion":"v1","kind":"ConfigMap","metadata":{"name":"db"}}'],
    ['DELETE', `${cm(ns)}?dryRun=All`, {}, undefined],
    ['GET', `/api/v1/namespaces/${ns}/pods/p/status`, {}, undefined],
    ['PATCH', `/api/v1/namespaces/${ns}/pods/p/status?dryRun=All`, MERGE, '{}'],
    ['GET', `/apis/apps/v1/namespaces/${ns}/deployments/d/status`, {}, undefined],
    ['GET', `/apis/example.com/v1/namespaces/${ns}/widgets/w/status`, {}, undefined],
    ['PATCH', `/apis/example.com/v1/namespaces/${ns}/widgets/w?dryRun=All`, MERGE, '{}'],
  ];
  const seen: string[] = [];
  for (const [method, path, headers, body] of tries('vault')) {
    const r = await raw(ctx, method, path, headers, body);
    seen.push(`${method} ${path} -> ${r.status} ${statusOrBody(r).slice(0, 160)}`);
    assert.not.ok(r.body.includes(VAULT_VALUE), `the value came back: ${seen.at(-1)}`);
    assert.is(r.status, 403, seen.at(-1));
    assert.match(statusOrBody(r), 'by rule "no-vault-reads"', seen.at(-1));
  }
  // The same requests elsewhere run, and do answer with the value: the refusals above are the rule's.
  for (const [method, path, headers, body] of tries('dev')) {
    const r = await raw(ctx, method, path, headers, body);
    assert.is(r.status, 200, `${method} ${path} -> ${r.status} ${r.body.slice(0, 200)}`);
    assert.ok(r.body.includes(VAULT_VALUE), `${method} ${path} in dev: the probe does not read the value`);
  }
  // Witness: the API server handled none of the vault requests; the ConfigMap is there as it was.
  const reached = await audited(ctx, (e) => e.objectRef?.namespace === 'vault' && (e.requestURI.includes('dryRun=All') || e.objectRef.subresource === 'status'));
  assert.equal(reached.map((e) => `${e.verb} ${e.requestURI}`), [], seen.join('\n'));
  const stored = await ctx.kube.kubectl(['-n', 'vault', 'get', 'configmap', 'db', '-o', 'jsonpath={.data.password}']);
  assert.is(stored.stdout, VAULT_VALUE);
  // Agate's record: each one a command denied by the rule, its response a refusal.
  const recorded = await until('the refusals recorded', () => {
    const e = events(ctx);
    const cmds = commandsWhere(e, (c) => c.attributes.namespace === 'vault' && (c.text.includes('dryRun=All') || c.attributes.subresource === 'status'));
    return cmds.length === tries('vault').length && cmds.every((c) => responsesOf(e, c).length > 0) ? cmds.map((c) => [verdictOf(e, c)?.rule_id, responsesOf(e, c)[0]?.status]) : undefined;
  });
  assert.equal(recorded, tries('vault').map(() => ['no-vault-reads', 'refused']));
});

test('a masked Secret value cannot be moved where masking does not look (JSON patch copy or move) nor guessed (test)', async (ctx) => {
  const path = '/api/v1/namespaces/default/secrets/token';
  const attempts = [
    [{ op: 'add', path: '/metadata/annotations', value: {} }, { op: 'copy', from: '/data/key', path: '/metadata/annotations/leak' }],
    [{ op: 'add', path: '/metadata/annotations', value: {} }, { op: 'move', from: '/data/key', path: '/metadata/annotations/leak' }],
    [{ op: 'add', path: '/metadata/annotations', value: {} }, { op: 'copy', from: '/data', path: '/metadata/annotations' }],
    [{ op: 'copy', from: '/data/key', path: '/metadata/generateName' }],
    [{ op: 'test', path: '/data/key', value: b64(SECRET) }],
  ];
  const seen: string[] = [];
  for (const ops of attempts) {
    for (const query of ['?dryRun=All', '']) {
      const r = await raw(ctx, 'PATCH', `${path}${query}`, JSON_PATCH, JSON.stringify(ops));
      seen.push(`${JSON.stringify(ops)}${query} -> ${r.status} ${statusOrBody(r).slice(0, 200)}`);
      assert.not.ok(r.body.includes(b64(SECRET)) || r.body.includes(SECRET), `the value came back: ${seen.at(-1)}`);
      assert.is(r.status, 403, seen.at(-1));
      assert.match(statusOrBody(r), 'JSON patch', seen.at(-1));
    }
  }
  // Witness: the API server saw none of them, and the Secret is as it was, with no annotation.
  const reached = await audited(ctx, (e) => e.objectRef?.resource === 'secrets' && e.objectRef.name === 'token' && e.verb === 'patch');
  assert.equal(reached.map((e) => e.requestURI), [], seen.join('\n'));
  const stored = await ctx.kube.kubectl(['get', 'secret', 'token', '-o', 'json']);
  const secret = JSON.parse(stored.stdout) as { data: Record<string, string>; metadata: { annotations?: Record<string, string>; labels?: Record<string, string> } };
  assert.is(secret.data.key, b64(SECRET));
  assert.is(secret.metadata.annotations?.leak, undefined);
  assert.is(secret.metadata.labels?.leak, undefined);
  // A JSON patch that reads no value still runs, masked.
  const label = await raw(ctx, 'PATCH', path, JSON_PATCH, JSON.stringify([{ op: 'add', path: '/metadata/labels', value: { a: 'b' } }]));
  assert.is(label.status, 200, label.body);
  assert.not.ok(label.body.includes(b64(SECRET)));
  // Agate's record: each refused, with the code that says why.
  const recorded = await until('the refusals recorded', () => {
    const e = events(ctx);
    const cmds = commandsWhere(e, (c) => c.attributes.verb === 'patch' && c.attributes.name === 'token');
    const refused = cmds.map((c) => responsesOf(e, c)[0]).filter((r) => r?.status === 'refused');
    return refused.length === attempts.length * 2 ? refused.map((r) => r!.error_code) : undefined;
  });
  assert.equal(new Set(recorded), new Set(['MASKED_VALUE_READ']));
});

test('front-proxy headers (X-Remote-User, -Group, -Uid, -Extra-) are impersonation: refused, never forwarded', async (ctx) => {
  const tries: Array<Record<string, string>> = [
    { 'x-remote-user': 'alice' },
    { 'X-Remote-User': 'alice', 'X-Remote-Group': 'system:masters' },
    { 'x-remote-uid': 'uid-alice' },
    { 'x-remote-extra-scopes': 'all' },
  ];
  const seen: string[] = [];
  for (const headers of tries) {
    for (const [method, path, body] of [['GET', '/api/v1/namespaces/dev/configmaps/db', undefined], ['POST', '/api/v1/namespaces/dev/configmaps', JSON.stringify({ apiVersion: 'v1', kind: 'ConfigMap', metadata: { name: `by-alice-${seen.length}` } })]] as const) {
      const r = await raw(ctx, method, path, { ...headers, ...(body === undefined ? {} : { 'content-type': 'application/json' }) }, body);
      seen.push(`${method} ${JSON.stringify(headers)} -> ${r.status} ${statusOrBody(r).slice(0, 160)}`);
      assert.is(r.status, 403, seen.at(-1));
      assert.match(statusOrBody(r), 'impersonation', seen.at(-1));
    }
  }
  // Witness: no request under another name reached the API server, and nothing was created.
  const others = await audited(ctx, (e) => e.user.username !== 'agate-admin' && !e.user.username.startsWith('system:'));
  assert.equal(others.map((e) => `${e.user.username} ${e.verb} ${e.requestURI}`), [], seen.join('\n'));
  const created = await ctx.kube.kubectl(['-n', 'dev', 'get', 'configmaps', '-o', 'name']);
  assert.not.match(created.stdout, 'by-alice', created.stdout);
  // Agate's record: each one denied by the built-in rule, before policy, and marked as impersonation.
  const recorded = await until('the refusals recorded', () => {
    const e = events(ctx);
    const cmds = commandsWhere(e, (c) => c.attributes.impersonate === 'refused' && c.attributes.namespace === 'dev');
    return cmds.length === tries.length * 2 && cmds.every((c) => responsesOf(e, c).length > 0) ? cmds.map((c) => [verdictOf(e, c)?.rule_id, responsesOf(e, c)[0]?.status, c.attributes.privilege]) : undefined;
  });
  assert.equal(recorded, recorded.map(() => ['agate.k8s-impersonation', 'refused', 'impersonate']));
});

test('a masked Secret is not had unmasked by a WebSocket watch nor by a dryRun deletecollection', async (ctx) => {
  const token = await agentToken(ctx);
  const ws = await tlsSession(ctx);
  ws.write(`GET /api/v1/namespaces/default/secrets?watch=1&timeoutSeconds=2 HTTP/1.1\r\nHost: 127.0.0.1\r\nAuthorization: Bearer ${token}\r\nConnection: Upgrade\r\nUpgrade: websocket\r\nSec-WebSocket-Version: 13\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n\r\n`);
  const answer = await ws.settle(complete);
  ws.end();
  assert.match(answer, /^HTTP\/1\.1 403 /, answer);
  assert.match(answer, 'cannot do over an upgraded');
  assert.not.ok(answer.includes(b64(SECRET)));
  const collection = await raw(ctx, 'DELETE', '/api/v1/namespaces/default/secrets?dryRun=All');
  assert.is(collection.status, 200, collection.body.slice(0, 200));
  assert.match(collection.body, '"kind":"SecretList"');
  assert.not.ok(collection.body.includes(b64(SECRET)), 'the dryRun deletecollection answered with the value');
  // Witness: the API server never saw the watch; the dryRun deletion left the Secret in place.
  const watched = await audited(ctx, (e) => e.objectRef?.resource === 'secrets' && e.verb === 'watch');
  assert.equal(watched.map((e) => e.requestURI), []);
  const stored = await ctx.kube.kubectl(['get', 'secret', 'token', '-o', 'jsonpath={.data.key}']);
  assert.is(stored.stdout, b64(SECRET));
});

test('a target carried in the body (eviction, binding, create naming another namespace, a List) is refused by the API server: nothing else is touched', async (ctx) => {
  const J = { 'content-type': 'application/json' };
  const tries: Array<[string, string]> = [
    ['/api/v1/namespaces/dev/pods/harmless/eviction', JSON.stringify({ apiVersion: 'policy/v1', kind: 'Eviction', metadata: { name: 'victim', namespace: 'prod' } })],
    ['/api/v1/namespaces/dev/pods/harmless/eviction', JSON.stringify({ apiVersion: 'policy/v1', kind: 'Eviction', metadata: { name: 'victim', namespace: 'dev' } })],
    ['/api/v1/namespaces/dev/pods/harmless/binding', JSON.stringify({ apiVersion: 'v1', kind: 'Binding', metadata: { name: 'victim', namespace: 'prod' }, target: { kind: 'Node', name: 'n1' } })],
    ['/api/v1/namespaces/dev/configmaps', JSON.stringify({ apiVersion: 'v1', kind: 'ConfigMap', metadata: { name: 'planted', namespace: 'vault' } })],
    ['/api/v1/namespaces/dev/configmaps', JSON.stringify({ apiVersion: 'v1', kind: 'List', items: [{ apiVersion: 'v1', kind: 'ConfigMap', metadata: { name: 'planted', namespace: 'vault' } }] })],
  ];
  for (const [path, body] of tries) {
    const r = await raw(ctx, 'POST', path, J, body);
    assert.is(r.status, 400, `${path} ${body} -> ${r.status} ${r.body.slice(0, 200)}`);
  }
  const victim = await ctx.kube.kubectl(['-n', 'prod', 'get', 'pod', 'victim', '-o', 'jsonpath={.metadata.deletionTimestamp}{.spec.nodeName}']);
  assert.equal([victim.code, victim.stdout], [0, ''], 'the pod in prod was evicted or bound');
  const planted = await ctx.kube.kubectl(['-n', 'vault', 'get', 'configmap', 'planted']);
  assert.is.not(planted.code, 0, 'a ConfigMap was created in vault');
  // Agate's record matches: each forwarded request recorded with the API server's 400.
  const recorded = await until('the answers recorded', () => {
    const e = events(ctx);
    const cmds = commandsWhere(e, (c) => c.attributes.verb === 'create' && c.attributes.namespace === 'dev' && c.attributes.impersonate === undefined && (c.attributes.resource === 'configmaps' || c.attributes.name === 'harmless'));
    return cmds.length === tries.length && cmds.every((c) => responsesOf(e, c).length > 0) ? cmds.map((c) => { const r = responsesOf(e, c)[0]!; return [r.status, r.command_tag?.slice(0, 3), r.error_code]; }) : undefined;
  });
  assert.equal(recorded, tries.map(() => ['error', '400', 'BadRequest']));
});

test('non-resource paths (/metrics, /logs, /debug) are named by a rule with paths, in every slash spelling', async (ctx) => {
  const seen: string[] = [];
  for (const path of ['/metrics', '/%2Fmetrics', '/metrics/', '/./metrics', '/logs/', '/debug/pprof/', '/api/../metrics']) {
    const r = await raw(ctx, 'GET', path);
    seen.push(`${path} -> ${r.status} ${r.body.slice(0, 120)}`);
    assert.is(r.status, 403, seen.at(-1));
    assert.match(r.body, 'by rule "no-apiserver-internals"', seen.at(-1));
    assert.not.match(r.body, '# HELP', seen.at(-1));
  }
  // Discovery and other paths still run.
  assert.is((await raw(ctx, 'GET', '/version')).status, 200);
  // Witness: the API server served no metrics to Agate's credential after setup.
  const served = await audited(ctx, (e) => /metrics|logs|debug/.test(e.requestURI));
  assert.equal(served.map((e) => e.requestURI), [], seen.join('\n'));
});

test.run();

// The hostile agent's sixth pass at the Kubernetes proxy: patch directives and YAML forms the
// API server reads differently from Agate (strategic-merge directives naming finalizers, a JSON
// patch moving them out, YAML 1.1 merge keys and tags, which the API server's YAML decoder
// honours), and query strings the API server's Go parser reads differently (a `;` drops a
// parameter there). The kube-apiserver's audit log and the objects it stores, read with the
// administrator's credential, witness what was done; Agate's record must match.
// Real kube-apiserver, real Agate process, raw HTTPS clients.
import { suite } from '../harness/suite.js';
import * as assert from 'uvu/assert';
import { readFileSync } from 'node:fs';
import { createServer } from 'node:https';
import type { AddressInfo } from 'node:net';
import { busLog, commandsWhere, events, responsesOf, stopKubeAgate, verdictOf, type KubeAgate } from './kube-agate.js';
import { NO_PRIVILEGE_CHANGES, SECRETS_READ_MASKED, admin, audited, complete, raw, startAuditedKube, statusOrBody, tlsSession } from './kube-raw.js';
import { agentToken } from './kube-agate.js';
import { until } from '../harness/until.js';

const test = suite<KubeAgate>('e2e/kubernetes hostile agent, sixth pass');

const POLICY = `policy:
  default: allow
  rules:
${NO_PRIVILEGE_CHANGES}${SECRETS_READ_MASKED}`;

const KEEP = 'example.com/keep';
/** Config maps each probe tries to strip of their finalizer (one each: a probe that succeeds changes it). */
const HELD = ['held-a', 'held-b', 'held-c', 'held-d', 'held-e', 'held-f', 'held-g'];
const PATCHED_IN_FIRST = HELD.slice(0, 5);
const CANARY = 'yaml-merge-sixth-pass-canary';
const b64 = (s: string) => Buffer.from(s).toString('base64');

test.before((ctx) => startAuditedKube(ctx, POLICY, async () => {
  for (const name of HELD) {
    await admin(ctx, ['create', '-f', '-'], JSON.stringify({ apiVersion: 'v1', kind: 'ConfigMap', metadata: { name, namespace: 'default', finalizers: [KEEP] }, data: { a: 'b' } }));
  }
  await admin(ctx, ['-n', 'default', 'create', 'secret', 'generic', 'public', '--from-literal=key=public-value']);
  await admin(ctx, ['-n', 'default', 'create', 'secret', 'generic', 'other', '--from-literal=key=other-value']);
}));

test.after((ctx) => stopKubeAgate(ctx));

async function finalizers(ctx: KubeAgate, name: string): Promise<string> {
  const r = await ctx.kube.kubectl(['-n', 'default', 'get', 'configmap', name, '-o', 'jsonpath={.metadata.finalizers}']);
  assert.is(r.code, 0, r.stderr);
  return r.stdout;
}

const cmPath = (name: string) => `/api/v1/namespaces/default/configmaps/${name}`;
const SMP = { 'content-type': 'application/strategic-merge-patch+json' };
const JSON_PATCH = { 'content-type': 'application/json-patch+json' };
const APPLY_YAML = { 'content-type': 'application/apply-patch+yaml' };

test('finalizers removed through strategic-merge directives or a JSON patch on metadata or moving one out are a privilege change: refused, finalizers kept', async (ctx) => {
  const tries: Array<[name: string, headers: Record<string, string>, query: string, body: string]> = [
    // Strategic merge: a directive key names the list without being `finalizers`.
    ['held-a', SMP, '', JSON.stringify({ metadata: { [`$deleteFromPrimitiveList/finalizers`]: [KEEP] } })],
    ['held-b', SMP, '', JSON.stringify({ metadata: { $patch: 'replace', name: 'held-b', namespace: 'default', labels: { x: 'y' } } })],
    // JSON patch: metadata replaced whole, or a finalizer moved elsewhere (`from` is the read side).
    ['held-c', JSON_PATCH, '', JSON.stringify([{ op: 'replace', path: '/metadata', value: { name: 'held-c', namespace: 'default' } }])],
    ['held-d', JSON_PATCH, '', JSON.stringify([{ op: 'move', from: '/metadata/finalizers/0', path: '/metadata/annotations' }])],
    ['held-e', JSON_PATCH, '', JSON.stringify([{ op: 'add', path: '/metadata/annotations', value: {} }, { op: 'move', from: '/metadata/finalizers/0', path: '/metadata/annotations/moved' }])],
  ];
  for (const [name, headers, query, body] of tries) {
    const r = await raw(ctx, 'PATCH', `${cmPath(name)}${query}`, headers, body);
    assert.is(await finalizers(ctx, name), `["${KEEP}"]`, `${name}: finalizers changed (${r.status} ${r.body.slice(0, 300)})`);
    assert.is(r.status, 403, `${name}: ${r.status} ${r.body.slice(0, 300)}`);
    assert.match(statusOrBody(r), 'by rule "no-privilege-changes"', name);
  }
  const e = events(ctx);
  const refused = commandsWhere(e, (c) => c.attributes.verb === 'patch' && PATCHED_IN_FIRST.includes(c.attributes.name ?? ''));
  assert.is(refused.length, tries.length);
  for (const c of refused) {
    assert.match(c.attributes.privilege ?? '', 'finalizers', c.text);
    assert.equal([verdictOf(e, c)?.decision, verdictOf(e, c)?.rule_id], ['deny', 'no-privilege-changes'], c.text);
  }
});

test('YAML tags and merge keys (read by the API server, YAML 1.1) cannot hide a token Secret, a finalizer or Secret data from Agate', async (ctx) => {
  const before = await audited(ctx, (e) => e.objectRef?.resource === 'secrets' && e.verb === 'create');
  // `!!binary` decodes to the token type at the API server: a token for the named account.
  const token = ['apiVersion: v1', 'kind: Secret', 'metadata:', '  name: minted', '  namespace: default', '  annotations: {kubernetes.io/service-account.name: default}',
    `type: !!binary ${b64('kubernetes.io/service-account-token')}`, ''].join('\n');
  const t = await raw(ctx, 'POST', '/api/v1/namespaces/default/secrets', { 'content-type': 'application/yaml' }, token);
  assert.is(t.status, 403, t.body.slice(0, 300));
  // A merge key carrying the whole of a Secret's data: never in the record unmasked.
  const merged = ['apiVersion: v1', 'kind: Secret', 'metadata: {name: merged, namespace: default}', `<<: {stringData: {key: ${CANARY}}}`, ''].join('\n');
  const m = await raw(ctx, 'POST', '/api/v1/namespaces/default/secrets', { 'content-type': 'application/yaml' }, merged);
  assert.is(m.status, 403, m.body.slice(0, 300));
  // A merge key: the API server's YAML decoder merges it into metadata (a finalizer added by apply).
  const mergeKey = ['apiVersion: v1', 'kind: ConfigMap', 'metadata:', '  name: held-f', '  namespace: default', '  <<: {finalizers: [example.com/agent]}', 'data: {a: b}', ''].join('\n');
  const f = await raw(ctx, 'PATCH', `${cmPath('held-f')}?fieldManager=agent&force=true`, APPLY_YAML, mergeKey);
  assert.is(await finalizers(ctx, 'held-f'), `["${KEEP}"]`, `${f.status} ${f.body.slice(0, 300)}`);
  assert.is(f.status, 403, f.body.slice(0, 300));
  // A tag that resolves to a finalizer list key.
  const tagged = ['apiVersion: v1', 'kind: ConfigMap', 'metadata:', '  name: held-g', '  namespace: default', `  !!str finalizers: []`, 'data: {a: b}', ''].join('\n');
  const g = await raw(ctx, 'PATCH', `${cmPath('held-g')}?fieldManager=agent&force=true`, APPLY_YAML, tagged);
  assert.is(g.status, 403, g.body.slice(0, 300));
  assert.is(await finalizers(ctx, 'held-g'), `["${KEEP}"]`);
  for (const name of ['minted', 'merged']) {
    const r = await ctx.kube.kubectl(['-n', 'default', 'get', 'secret', name]);
    assert.is.not(r.code, 0, `${name} was created`);
  }
  const after = await audited(ctx, (e) => e.objectRef?.resource === 'secrets' && e.verb === 'create');
  assert.equal(after.slice(before.length).map((e) => `${e.verb} ${e.requestURI} ${e.responseStatus?.code}`), []);
  await until('the refusals recorded', () => {
    const e = events(ctx);
    const cs = commandsWhere(e, (c) => c.attributes.resource === 'secrets' && c.attributes.verb === 'create');
    return cs.length >= 2 && cs.every((c) => responsesOf(e, c).length > 0) ? cs : undefined;
  });
  assert.not.ok(busLog(ctx).includes(CANARY), 'the Secret value reached the bus log');
});

test('a query parameter the API server drops (a `;` in it, a bad percent escape) is refused, recorded: the record never names one object while the API server lists all', async (ctx) => {
  const tries = [
    '/api/v1/namespaces/default/secrets?probe=q1&fieldSelector=metadata.name%3Dpublic,a%3Db;',
    '/api/v1/namespaces/default/secrets?probe=q2&fieldSelector=metadata.name%3Dpublic,a%3D%zz',
    '/api/v1/namespaces/default/configmaps?probe=q3&watch=0;&limit=1',
  ];
  for (const path of tries) {
    const r = await raw(ctx, 'GET', path);
    assert.is(r.status, 400, `${path}: ${r.status} ${r.body.slice(0, 300)}`);
    assert.match(statusOrBody(r), /^Agate refused the request: the query parameter ".*" (contains ";"|is not valid percent-encoding), so the API server would ignore it$/, path);
    assert.not.match(r.body, 'other-value', path);
  }
  const reached = await audited(ctx, (e) => /[?&]probe=q\d/.test(e.requestURI));
  assert.equal(reached.map((e) => `${e.verb} ${e.requestURI} ${e.responseStatus?.code}`), []);
  const recorded = await until('the refusals recorded', () => {
    const e = events(ctx);
    const cs = commandsWhere(e, (c) => /[?&]probe=q\d/.test(c.text));
    return cs.length === tries.length && cs.every((c) => responsesOf(e, c).length > 0) ? { e, cs } : undefined;
  });
  for (const c of recorded.cs) {
    assert.is(verdictOf(recorded.e, c)?.decision, 'deny', c.text);
    assert.is(responsesOf(recorded.e, c)[0]?.status, 'refused', c.text);
  }
  // Without the stray character the selector reads one object, masked.
  const one = await raw(ctx, 'GET', '/api/v1/namespaces/default/secrets?fieldSelector=metadata.name%3Dpublic');
  assert.is(one.status, 200, one.body.slice(0, 300));
  assert.match(one.body, '"name":"public"');
  assert.not.match(one.body, '"name":"other"');
  assert.not.match(one.body, b64('public-value'));
});

test('a webhook the API server would call with the objects it serves (admission webhooks, an APIService) is a privilege change: refused, no Secret sent out', async (ctx) => {
  // The agent's server: what the API server sends it, a Secret's data included, is read by the agent.
  const seen: string[] = [];
  const server = createServer({ cert: readFileSync(ctx.kube.other.certFile), key: readFileSync(ctx.kube.other.keyFile) }, (req, res) => {
    let body = '';
    req.setEncoding('utf8').on('data', (d: string) => (body += d)).on('end', () => {
      seen.push(body);
      const uid = (JSON.parse(body || '{}') as { request?: { uid?: string } }).request?.uid ?? '';
      res.writeHead(200, { 'content-type': 'application/json' }).end(JSON.stringify({ apiVersion: 'admission.k8s.io/v1', kind: 'AdmissionReview', response: { uid, allowed: true } }));
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  try {
    const url = `https://127.0.0.1:${(server.address() as AddressInfo).port}/hook`;
    const caBundle = Buffer.from(ctx.kube.other.caPem).toString('base64');
    const webhook = { name: 'steal.example.com', clientConfig: { url, caBundle }, rules: [{ operations: ['CREATE', 'UPDATE'], apiGroups: [''], apiVersions: ['v1'], resources: ['secrets'] }], sideEffects: 'None', admissionReviewVersions: ['v1'], failurePolicy: 'Ignore' };
    const writes: Array<[path: string, body: unknown]> = [
      ['/apis/admissionregistration.k8s.io/v1/mutatingwebhookconfigurations', { apiVersion: 'admissionregistration.k8s.io/v1', kind: 'MutatingWebhookConfiguration', metadata: { name: 'steal' }, webhooks: [webhook] }],
      ['/apis/admissionregistration.k8s.io/v1/validatingwebhookconfigurations', { apiVersion: 'admissionregistration.k8s.io/v1', kind: 'ValidatingWebhookConfiguration', metadata: { name: 'steal' }, webhooks: [webhook] }],
      ['/apis/apiregistration.k8s.io/v1/apiservices', { apiVersion: 'apiregistration.k8s.io/v1', kind: 'APIService', metadata: { name: 'v1.steal.example.com' }, spec: { group: 'steal.example.com', version: 'v1', service: { namespace: 'default', name: 'steal' }, caBundle, groupPriorityMinimum: 1000, versionPriority: 15 } }],
    ];
    for (const [path, body] of writes) {
      const r = await raw(ctx, 'POST', path, { 'content-type': 'application/json' }, JSON.stringify(body));
      assert.is(r.status, 403, `${path}: ${r.status} ${r.body.slice(0, 300)}`);
      assert.match(statusOrBody(r), 'by rule "no-privilege-changes"', path);
    }
    await admin(ctx, ['-n', 'default', 'create', 'secret', 'generic', 'after-hook', `--from-literal=key=${CANARY}-hook`]);
    assert.equal(seen.filter((b) => b.includes(b64(`${CANARY}-hook`))), [], 'the API server sent a Secret to the agent\'s webhook');
    const e = events(ctx);
    const refused = commandsWhere(e, (c) => /webhookconfigurations|apiservices/.test(c.attributes.resource ?? '') && c.attributes.verb === 'create');
    assert.is(refused.length, writes.length);
    for (const c of refused) assert.match(c.attributes.privilege ?? '', 'webhook', c.text);
  } finally {
    await new Promise<void>((resolve) => server.close(() => resolve()));
  }
});

test('Expect: 100-continue and repeated Content-Length get no body past policy: a refused write is refused, framing the API server might read otherwise is a 400', async (ctx) => {
  const token = await agentToken(ctx);
  const body = JSON.stringify({ metadata: { '$deleteFromPrimitiveList/finalizers': [KEEP] } });
  const head = (extra: string) => `PATCH ${cmPath('held-a')} HTTP/1.1\r\nHost: 127.0.0.1\r\nAuthorization: Bearer ${token}\r\nContent-Type: application/strategic-merge-patch+json\r\n${extra}`;
  // Expect: the body follows the interim 100; the write is decided on it, and refused.
  const s = await tlsSession(ctx);
  s.write(head(`Content-Length: ${body.length}\r\nExpect: 100-continue\r\n\r\n`));
  await s.settle((t) => /^HTTP\/1\.1 100 /.test(t), 3000);
  s.write(body);
  const expectAnswer = await s.settle((t) => /HTTP\/1\.1 [2-5]\d\d /.test(t) && complete(t.slice(t.search(/HTTP\/1\.1 [2-5]/))));
  s.end();
  assert.match(expectAnswer, /HTTP\/1\.1 403 /, expectAnswer.slice(0, 300));
  // Two Content-Length headers, equal or not: refused before anything is decided.
  for (const lengths of [[body.length, body.length], [body.length, 2]]) {
    const t = await tlsSession(ctx);
    t.write(head(`${lengths.map((n) => `Content-Length: ${n}\r\n`).join('')}\r\n${body}`));
    const got = await t.settle((x) => /^HTTP\/1\.1 \d{3}/.test(x));
    t.end();
    assert.match(got, /^HTTP\/1\.1 400 /, `${lengths}: ${got.slice(0, 200)}`);
  }
  assert.is(await finalizers(ctx, 'held-a'), `["${KEEP}"]`);
});

test.run();

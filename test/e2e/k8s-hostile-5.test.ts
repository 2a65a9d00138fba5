// The hostile agent's eighth pass at the Kubernetes proxy: the same effect by another resource,
// and trust the cluster's workloads take from what the agent writes. The kube-apiserver's audit
// log and the objects it stores, read with the administrator's credential, witness what was
// done. Real kube-apiserver, real Agate process, raw HTTPS clients.
import { suite } from '../harness/suite.js';
import * as assert from 'uvu/assert';
import { commandsWhere, events, responsesOf, stopKubeAgate, verdictOf, type KubeAgate } from './kube-agate.js';
import { NO_PRIVILEGE_CHANGES, admin, audited, raw, startAuditedKube, statusOrBody } from './kube-raw.js';
import { until } from '../harness/until.js';

const test = suite<KubeAgate>('e2e/kubernetes hostile agent, eighth pass');

const POLICY = `policy:
  default: allow
  rules:
${NO_PRIVILEGE_CHANGES}    - id: no-scheduling
      action: deny
      message: agents do not place pods on nodes
      match:
        kubernetes: { verbs: [create], resources: [pods/binding] }
`;

const JSON_BODY = { 'content-type': 'application/json' };

test.before((ctx) => startAuditedKube(ctx, POLICY, async () => {
  await admin(ctx, ['create', '-f', '-'], JSON.stringify({ apiVersion: 'v1', kind: 'Node', metadata: { name: 'chosen' } }));
  await admin(ctx, ['-n', 'default', 'create', 'serviceaccount', 'default']);
  await admin(ctx, ['-n', 'default', 'run', 'unplaced', '--image=busybox', '--restart=Never', '--overrides={"spec":{"automountServiceAccountToken":false}}']);
}));

test.after((ctx) => stopKubeAgate(ctx));

const writes = (keep: (resource: string) => boolean) => (e: { verb: string; objectRef?: { resource?: string; subresource?: string } }) =>
  keep(`${e.objectRef?.resource ?? ''}${e.objectRef?.subresource ? `/${e.objectRef.subresource}` : ''}`) && !['get', 'list', 'watch'].includes(e.verb);

test('a pod placed on a node through the namespace\'s bindings resource is the pods/binding a rule refuses', async (ctx) => {
  const before = await audited(ctx, writes((r) => r === 'bindings' || r === 'pods/binding'));
  const binding = { apiVersion: 'v1', kind: 'Binding', metadata: { name: 'unplaced' }, target: { apiVersion: 'v1', kind: 'Node', name: 'chosen' } };
  const direct = await raw(ctx, 'POST', '/api/v1/namespaces/default/pods/unplaced/binding', JSON_BODY, JSON.stringify(binding));
  assert.is(direct.status, 403, direct.body.slice(0, 300));
  // (Before: 201, the pod bound to the node the agent chose.)
  const other = await raw(ctx, 'POST', '/api/v1/namespaces/default/bindings', JSON_BODY, JSON.stringify(binding));
  assert.is(other.status, 403, other.body.slice(0, 300));
  assert.match(statusOrBody(other), 'by rule "no-scheduling"');
  const node = await ctx.kube.kubectl(['-n', 'default', 'get', 'pod', 'unplaced', '-o', 'jsonpath={.spec.nodeName}']);
  assert.is(node.stdout, '', 'the pod was bound');
  const after = await audited(ctx, writes((r) => r === 'bindings' || r === 'pods/binding'));
  assert.equal(after.slice(before.length).map((e) => `${e.verb} ${e.requestURI}`), []);
  const e = await until('the refusals recorded', () => {
    const evs = events(ctx);
    const cs = commandsWhere(evs, (c) => c.attributes.resource === 'bindings' || c.attributes.subresource === 'binding');
    return cs.length === 2 && cs.every((c) => responsesOf(evs, c).length > 0) ? { evs, cs } : undefined;
  });
  for (const c of e.cs) assert.is(verdictOf(e.evs, c)?.rule_id, 'no-scheduling', c.text);
});

test('a ClusterTrustBundle written (a CA the cluster\'s workloads may mount and trust) is a privilege change: refused, none stored', async (ctx) => {
  const before = await audited(ctx, writes((r) => r === 'clustertrustbundles'));
  const bundle = { metadata: { name: 'agent-ca' }, spec: { trustBundle: ctx.kube.other.caPem } };
  const tries: Array<[string, string, Record<string, string>, string]> = [
    ['POST', '/apis/certificates.k8s.io/v1/clustertrustbundles', JSON_BODY, JSON.stringify({ apiVersion: 'certificates.k8s.io/v1', kind: 'ClusterTrustBundle', ...bundle })],
    ['PATCH', '/apis/certificates.k8s.io/v1/clustertrustbundles/agent-ca?fieldManager=agent', { 'content-type': 'application/apply-patch+yaml' }, JSON.stringify({ apiVersion: 'certificates.k8s.io/v1', kind: 'ClusterTrustBundle', ...bundle })],
    ['POST', '/apis/certificates.k8s.io/v1beta1/clustertrustbundles', JSON_BODY, JSON.stringify({ apiVersion: 'certificates.k8s.io/v1beta1', kind: 'ClusterTrustBundle', ...bundle })],
  ];
  for (const [method, path, headers, body] of tries) {
    const r = await raw(ctx, method, path, headers, body);
    // (Before: 201 — a CA of the agent's choosing in the bundle workloads trust.)
    assert.ok(r.status === 403 || (path.includes('v1beta1') && r.status === 404), `${method} ${path}: ${r.status} ${r.body.slice(0, 300)}`);
    if (r.status === 403) assert.match(statusOrBody(r), 'by rule "no-privilege-changes"');
  }
  const stored = await ctx.kube.kubectl(['get', 'clustertrustbundles', '-o', 'name']);
  assert.is(stored.stdout.trim(), '', stored.stderr);
  const after = await audited(ctx, writes((r) => r === 'clustertrustbundles'));
  assert.equal(after.slice(before.length).map((e) => `${e.verb} ${e.requestURI}`), []);
  const e = await until('the refusals recorded', () => {
    const evs = events(ctx);
    const cs = commandsWhere(evs, (c) => c.attributes.resource === 'clustertrustbundles' && c.attributes.verb !== 'get');
    return cs.length >= 2 && cs.every((c) => responsesOf(evs, c).length > 0) ? { evs, cs } : undefined;
  });
  for (const c of e.cs) assert.equal([c.attributes.privilege, verdictOf(e.evs, c)?.rule_id], ['trust-bundle', 'no-privilege-changes'], c.text);
});

test('a service-account token for another audience, in a dry run, or with unknown fields ignored, is still a privilege change: refused, none minted', async (ctx) => {
  const before = await audited(ctx, writes((r) => r === 'serviceaccounts/token'));
  const request = (extra: Record<string, unknown> = {}) => JSON.stringify({ apiVersion: 'authentication.k8s.io/v1', kind: 'TokenRequest', spec: { audiences: ['https://vault.example.com'], expirationSeconds: 600 }, ...extra });
  const path = '/api/v1/namespaces/default/serviceaccounts/default/token';
  for (const [query, body] of [['', request()], ['?dryRun=All', request()], ['?fieldValidation=Ignore', request({ Spec: { audiences: ['api'] }, unknown: true })]] as const) {
    const r = await raw(ctx, 'POST', `${path}${query}`, JSON_BODY, body);
    assert.is(r.status, 403, `${query}: ${r.status} ${r.body.slice(0, 300)}`);
    assert.match(statusOrBody(r), 'by rule "no-privilege-changes"');
  }
  const after = await audited(ctx, writes((r) => r === 'serviceaccounts/token'));
  assert.equal(after.slice(before.length).map((e) => `${e.verb} ${e.requestURI}`), []);
});

test.run();

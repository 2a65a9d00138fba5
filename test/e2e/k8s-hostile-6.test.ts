// The hostile agent's ninth pass at the Kubernetes proxy: a write that creates under another
// verb, and bodies the API server reads otherwise than Agate. The kube-apiserver's audit log and
// the objects it stores, read with the administrator's credential, witness what was done. Real
// kube-apiserver, real Agate process, raw HTTPS clients and kubectl.
import { suite } from '../harness/suite.js';
import * as assert from 'uvu/assert';
import { agentKubectl, commandsWhere, events, responsesOf, stopKubeAgate, verdictOf, type KubeAgate } from './kube-agate.js';
import { admin, audited, raw, startAuditedKube, statusOrBody } from './kube-raw.js';
import { until } from '../harness/until.js';

const test = suite<KubeAgate>('e2e/kubernetes hostile agent, ninth pass');

const POLICY = `policy:
  default: allow
  rules:
    - id: no-new-config
      action: deny
      message: agents change existing config maps, they do not create them
      match:
        kubernetes: { verbs: [create], resources: [configmaps, leases, limitranges, services] }
    - id: no-exec
      action: deny
      message: agents do not run commands in pods or on nodes
      match:
        kubernetes: { verbs: [create], resources: [pods/exec] }
`;

test.before((ctx) => startAuditedKube(ctx, POLICY, async () => {
  await admin(ctx, ['-n', 'default', 'create', 'configmap', 'existing', '--from-literal=a=1']);
  await admin(ctx, ['create', '-f', '-'], JSON.stringify({ apiVersion: 'v1', kind: 'Node', metadata: { name: 'worker' } }));
  await admin(ctx, ['-n', 'default', 'create', 'serviceaccount', 'default']);
}));

test.after((ctx) => stopKubeAgate(ctx));

const created = (e: { verb: string; objectRef?: { resource?: string }; responseStatus?: { code?: number } }) =>
  ['configmaps', 'leases', 'limitranges', 'services'].includes(e.objectRef?.resource ?? '') && !['get', 'list', 'watch'].includes(e.verb) && e.responseStatus?.code === 201;

test('a server-side apply or an update that would create an object is the create a rule refuses (dry run too); changing an existing one is not', async (ctx) => {
  const before = await audited(ctx, created);
  const cm = (name: string) => JSON.stringify({ apiVersion: 'v1', kind: 'ConfigMap', metadata: { name, namespace: 'default' }, data: { a: '2' } });
  const tries: Array<[string, string, Record<string, string>, string]> = [
    ['PATCH', '/api/v1/namespaces/default/configmaps/fresh?fieldManager=agent', { 'content-type': 'application/apply-patch+yaml' }, cm('fresh')],
    ['PATCH', '/api/v1/namespaces/default/configmaps/fresh?fieldManager=agent&dryRun=All', { 'content-type': 'application/apply-patch+yaml' }, cm('fresh')],
    ['PUT', '/apis/coordination.k8s.io/v1/namespaces/default/leases/fresh', { 'content-type': 'application/json' }, JSON.stringify({ apiVersion: 'coordination.k8s.io/v1', kind: 'Lease', metadata: { name: 'fresh', namespace: 'default' } })],
    ['PUT', '/api/v1/namespaces/default/limitranges/fresh', { 'content-type': 'application/json' }, JSON.stringify({ apiVersion: 'v1', kind: 'LimitRange', metadata: { name: 'fresh', namespace: 'default' }, spec: { limits: [{ type: 'Container', max: { cpu: '1' } }] } })],
    // The status subresource shares the Service's strategy: this stored a Service (no cluster IP allocated).
    ['PUT', '/api/v1/namespaces/default/services/fresh/status', { 'content-type': 'application/json' }, JSON.stringify({ apiVersion: 'v1', kind: 'Service', metadata: { name: 'fresh', namespace: 'default' }, spec: { ports: [{ port: 80 }] } })],
  ];
  const answers: string[] = [];
  for (const [method, path, headers, body] of tries) {
    const r = await raw(ctx, method, path, headers, body);
    // (Before: 201 each, the object created; the dry run 201 with nothing stored.)
    answers.push(`${method} ${path}: ${r.status} ${r.status === 403 ? statusOrBody(r).includes('by rule "no-new-config"') : r.body.slice(0, 80)}`);
  }
  assert.equal(answers, tries.map(([method, path]) => `${method} ${path}: 403 true`));
  const k = await agentKubectl(ctx, ['apply', '--server-side', '--field-manager=agent', '-f', '-'], { input: cm('fresh-kubectl') });
  assert.is(k.code, 1, k.stdout + k.stderr);
  assert.match(k.stderr, 'no-new-config');
  const after = await audited(ctx, created);
  assert.equal(after.slice(before.length).map((e) => `${e.verb} ${e.requestURI}`), []);
  // Whether an object is stored Agate cannot know when it decides: an apply of an existing one
  // counts as the create it may be. A patch or a replace of one never creates: not refused.
  const applied = await agentKubectl(ctx, ['apply', '--server-side', '--field-manager=agent', '-f', '-'], { input: cm('existing') });
  assert.match(applied.stderr, 'no-new-config');
  const patched = await agentKubectl(ctx, ['-n', 'default', 'patch', 'configmap', 'existing', '-p', '{"data":{"a":"3"}}']);
  assert.is(patched.code, 0, patched.stderr);
  const replaced = await agentKubectl(ctx, ['replace', '-f', '-'], { input: cm('existing') });
  assert.is(replaced.code, 0, replaced.stderr);
  const e = await until('the refusals recorded', () => {
    const evs = events(ctx);
    const cs = commandsWhere(evs, (c) => c.attributes.name === 'fresh' || c.attributes.name === 'fresh-kubectl');
    return cs.length === 6 && cs.every((c) => responsesOf(evs, c).length > 0) ? { evs, cs } : undefined;
  });
  for (const c of e.cs) assert.is(verdictOf(e.evs, c)?.rule_id, 'no-new-config', c.text);
});


test('a pod with the host\'s namespaces, a privileged container or a host path (kubectl debug node/…, any profile) is exec on the node: refused where exec is, none created', async (ctx) => {
  const before = await audited(ctx, (e) => e.objectRef?.resource === 'pods' && e.verb === 'create' && e.responseStatus?.code === 201);
  const answers: string[] = [];
  for (const profile of ['legacy', 'sysadmin', 'general']) {
    const k = await agentKubectl(ctx, ['debug', 'node/worker', `--profile=${profile}`, '--image=busybox', '-n', 'default']);
    answers.push(`${profile}: ${k.code} ${/by rule "no-exec"/.test(k.stderr)}`);
  }
  // (Before: each created a pod on the node with its PID and network namespaces and / mounted.)
  const pod = (spec: Record<string, unknown>) => JSON.stringify({ apiVersion: 'v1', kind: 'Pod', metadata: { name: 'rooted', namespace: 'default' }, spec: { nodeName: 'worker', containers: [{ name: 'c', image: 'busybox' }], ...spec } });
  const specs: Array<Record<string, unknown>> = [
    { hostPID: true },
    { containers: [{ name: 'c', image: 'busybox', securityContext: { privileged: true } }] },
    { volumes: [{ name: 'root', hostPath: { path: '/' } }] },
  ];
  for (const spec of specs) {
    const r = await raw(ctx, 'POST', '/api/v1/namespaces/default/pods?dryRun=All', { 'content-type': 'application/json' }, pod(spec));
    answers.push(`${Object.keys(spec)[0]}: ${r.status} ${statusOrBody(r).includes('by rule "no-exec"')}`);
  }
  const yaml = 'apiVersion: v1\nkind: Pod\nmetadata: {name: rooted, namespace: default}\nspec:\n  hostNetwork: yes\n  containers: [{name: c, image: busybox}]\n';
  const y = await raw(ctx, 'POST', '/api/v1/namespaces/default/pods?dryRun=All', { 'content-type': 'application/yaml' }, yaml);
  answers.push(`yaml: ${y.status} ${statusOrBody(y).includes('by rule "no-exec"')}`);
  assert.equal(answers, ['legacy: 1 true', 'sysadmin: 1 true', 'general: 1 true', 'hostPID: 403 true', 'containers: 403 true', 'volumes: 403 true', 'yaml: 403 true']);
  const after = await audited(ctx, (e) => e.objectRef?.resource === 'pods' && e.verb === 'create' && e.responseStatus?.code === 201);
  assert.equal(after.slice(before.length).map((e) => e.requestURI), []);
  // A plain pod is no exec.
  const plain = await raw(ctx, 'POST', '/api/v1/namespaces/default/pods?dryRun=All', { 'content-type': 'application/json' }, pod({}));
  assert.is(plain.status, 201, plain.body.slice(0, 300));
});

test('a body nested deeper than the API server reads is refused and recorded as unreadable, not failed unrecorded', async (ctx) => {
  const before = events(ctx).length;
  const deep = `{"apiVersion":"v1","kind":"ConfigMap","metadata":{"name":"deep","namespace":"default"},"x":${'['.repeat(100_000)}${']'.repeat(100_000)}}`;
  const r = await raw(ctx, 'POST', '/api/v1/namespaces/default/configmaps', { 'content-type': 'application/json' }, deep);
  // (Before: 500 "Agate could not process the request", and no Command in the record.)
  assert.is(r.status, 403, r.body.slice(0, 300));
  const c = await until('the refusal recorded', () => {
    const evs = events(ctx).slice(before);
    const cs = commandsWhere(evs, (x) => x.attributes.resource === 'configmaps' && x.attributes.verb === 'create');
    return cs.length === 1 && responsesOf(evs, cs[0]!).length > 0 ? cs[0] : undefined;
  });
  assert.is(c.attributes.body, 'unreadable');
  assert.match(c.parameters[0] ?? '', 'nested deeper than');
});

test('YAML scalars the API server reads as YAML 1.1 otherwise (yes, on, 0755, 1_000, a key y) are refused as unreadable: the record never shows a value other than the one stored', async (ctx) => {
  const answers: string[] = [];
  const bodies = ['data: {mode: 0755}', 'data: {size: 1_000}', 'data: {enabled: on}', 'data: {y: x}'];
  for (const data of bodies) {
    const yaml = `apiVersion: v1\nkind: ConfigMap\nmetadata: {name: y11, namespace: default}\n${data}\n`;
    const r = await raw(ctx, 'PUT', '/api/v1/namespaces/default/configmaps/existing?dryRun=All', { 'content-type': 'application/yaml' }, yaml.replace('y11', 'existing'));
    // (Before: 200, the config map stored with mode "493", size "1000", enabled "true", a key "true", the record showing 0755, 1_000, on, y.)
    answers.push(`${data}: ${r.status} ${r.status === 403 ? /YAML 1\.1/.test(statusOrBody(r)) || statusOrBody(r).includes('unreadable') || statusOrBody(r).includes('cannot read') : r.body.replace(/.*"data":/, "data=").slice(0, 100)}`);
  }
  assert.equal(answers, bodies.map((b) => `${b}: 403 true`));
  // Quoted, or spelled the same in both versions: read and forwarded.
  const ok = await raw(ctx, 'PUT', '/api/v1/namespaces/default/configmaps/existing?dryRun=All', { 'content-type': 'application/yaml' }, 'apiVersion: v1\nkind: ConfigMap\nmetadata: {name: existing, namespace: default}\ndata: {mode: "0755", size: "1_000", t: "true"}\n');
  assert.is(ok.status, 200, ok.body.slice(0, 300));
});

test.run();

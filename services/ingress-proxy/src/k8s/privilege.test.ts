import { gzipSync } from 'node:zlib';
import { suite } from '../../../../test/harness/suite.js';
import * as assert from 'uvu/assert';
import { K8S_PRIVILEGE_FACTS } from '../../../../core/src/config.js';
import { PRIVILEGE_FACTS, privilegeFacts } from './privilege.js';
import { readBody } from './request-body.js';
import { classifyRequest, type RequestInfo } from './request-info.js';

const facts = (method: string, path: string, body?: unknown, type = 'application/json', headers: Record<string, string> = {}) => {
  const raw = body === undefined ? undefined : Buffer.isBuffer(body) ? body : Buffer.from(JSON.stringify(body));
  return privilegeFacts(classifyRequest(method, path) as RequestInfo, { 'content-type': type, ...headers }, raw === undefined ? undefined : readBody(raw, type, headers['content-encoding']), raw);
};

const test = suite('privilegeFacts');

test('RBAC: roles are escalate, bindings are bind, for every write verb; reads are nothing', () => {
  assert.equal(facts('POST', '/apis/rbac.authorization.k8s.io/v1/clusterrolebindings', { roleRef: { name: 'cluster-admin' } }), ['bind']);
  assert.equal(facts('PATCH', '/apis/rbac.authorization.k8s.io/v1/namespaces/a/rolebindings/x', {}), ['bind']);
  assert.equal(facts('PUT', '/apis/rbac.authorization.k8s.io/v1/clusterroles/x', {}), ['escalate']);
  assert.equal(facts('DELETE', '/apis/rbac.authorization.k8s.io/v1/namespaces/a/roles'), ['escalate']);
  assert.equal(facts('GET', '/apis/rbac.authorization.k8s.io/v1/clusterroles'), []);
  // The same names in another group are not RBAC.
  assert.equal(facts('POST', '/apis/example.com/v1/namespaces/a/rolebindings', {}), []);
});

test('service accounts, minted tokens (TokenRequest and token Secrets), CSRs and their approval', () => {
  assert.equal(facts('POST', '/api/v1/namespaces/a/serviceaccounts', {}), ['serviceaccount']);
  assert.equal(facts('POST', '/api/v1/namespaces/a/serviceaccounts/builder/token', { spec: {} }), ['token']);
  assert.equal(facts('POST', '/api/v1/namespaces/a/secrets', { type: 'kubernetes.io/service-account-token', metadata: { annotations: { 'kubernetes.io/service-account.name': 'x' } } }), ['token']);
  assert.equal(facts('POST', '/api/v1/namespaces/a/secrets', Buffer.from('k8s\0...kubernetes.io/service-account-token...'), 'application/vnd.kubernetes.protobuf'), ['token']);
  assert.equal(facts('POST', '/api/v1/namespaces/a/secrets', { type: 'Opaque' }), []);
  // A body Agate cannot parse (YAML with an alias, an escape hiding the type; CBOR) may name the type.
  const aliased = Buffer.from('kind: Secret\nmetadata: {name: m, labels: &l {a: b}}\nmore: *l\ntype: "kubernetes.io/service-account\\x2dtoken"\n');
  assert.equal(facts('POST', '/api/v1/namespaces/a/secrets', aliased, 'application/yaml'), ['token']);
  // YAML the API server reads as 1.1: `!!binary` is the type there, in base64 here.
  const binary = Buffer.from(`kind: Secret\ntype: !!binary ${Buffer.from('kubernetes.io/service-account-token').toString('base64')}\n`);
  assert.equal(facts('POST', '/api/v1/namespaces/a/secrets', binary, 'application/yaml'), ['token']);
  // Compressed protobuf: its bytes no longer show the type.
  const gz = gzipSync(Buffer.from('k8s\0...kubernetes.io/service-account-token...'));
  assert.equal(facts('POST', '/api/v1/namespaces/a/secrets', gz, 'application/vnd.kubernetes.protobuf', { 'content-encoding': 'gzip' }), ['token']);
  // Go keeps the type when a repeated key sets it to null; JSON.parse keeps the null.
  assert.equal(facts('POST', '/api/v1/namespaces/a/secrets', Buffer.from('{"kind":"Secret","type":"kubernetes.io/service-account-token","type":null}'), 'application/json'), ['token']);
  assert.equal(facts('POST', '/api/v1/namespaces/a/secrets', Buffer.from([0xd9, 0xd9, 0xf7, 0xa0]), 'application/cbor'), ['token']);
  assert.equal(facts('POST', '/api/v1/namespaces/a/secrets', Buffer.from('k8s\0...Opaque...'), 'application/vnd.kubernetes.protobuf'), []);
  assert.equal(facts('POST', '/apis/certificates.k8s.io/v1/certificatesigningrequests', {}), ['csr']);
  assert.equal(facts('PUT', '/apis/certificates.k8s.io/v1/certificatesigningrequests/x/approval', {}), ['csr-approval']);
});

test('namespace finalize, and finalizers set by a patch or update in any form', () => {
  assert.equal(facts('PUT', '/api/v1/namespaces/stuck/finalize', { spec: { finalizers: [] } }), ['finalize']);
  assert.equal(facts('PATCH', '/api/v1/namespaces/a/configmaps/c', { metadata: { finalizers: null } }, 'application/merge-patch+json'), ['finalizers']);
  assert.equal(facts('PATCH', '/api/v1/namespaces/a/configmaps/c', [{ op: 'remove', path: '/metadata/finalizers/0' }], 'application/json-patch+json'), ['finalizers']);
  assert.equal(facts('PATCH', '/api/v1/namespaces/a/configmaps/c', [{ op: 'replace', path: '/metadata', value: { name: 'c', finalizers: [] } }], 'application/json-patch+json'), ['finalizers']);
  assert.equal(facts('PATCH', '/api/v1/namespaces/a/configmaps/c', [{ op: 'add', path: '/metadata/labels/a', value: 'b' }], 'application/json-patch+json'), []);
  assert.equal(facts('PUT', '/api/v1/namespaces/a/configmaps/c', { metadata: { name: 'c', finalizers: [] } }), ['finalizers']);
  assert.equal(facts('PATCH', '/api/v1/namespaces/a/configmaps/c', { metadata: { labels: { a: 'b' } } }, 'application/merge-patch+json'), []);
  assert.equal(facts('PATCH', '/api/v1/namespaces/a/configmaps/c', Buffer.from('metadata: {"fin\\x61lizers": [], labels: &l {a: b}}\nx: *l\n'), 'application/apply-patch+yaml'), ['finalizers']);
  // Strategic-merge directives change the list without the key `finalizers`, or replace metadata whole.
  const smp = 'application/strategic-merge-patch+json';
  assert.equal(facts('PATCH', '/api/v1/namespaces/a/configmaps/c', { metadata: { '$deleteFromPrimitiveList/finalizers': ['example.com/keep'] } }, smp), ['finalizers']);
  assert.equal(facts('PATCH', '/api/v1/namespaces/a/configmaps/c', { metadata: { '$setElementOrder/finalizers': [] } }, smp), ['finalizers']);
  assert.equal(facts('PATCH', '/api/v1/namespaces/a/configmaps/c', { metadata: { $patch: 'replace', name: 'c' } }, smp), ['finalizers']);
  assert.equal(facts('PATCH', '/api/v1/namespaces/a/configmaps/c', { $patch: 'replace', metadata: { name: 'c' } }, smp), ['finalizers']);
  assert.equal(facts('PATCH', '/api/v1/namespaces/a/configmaps/c', { metadata: null }, 'application/merge-patch+json'), ['finalizers']);
  assert.equal(facts('PATCH', '/api/v1/namespaces/a/configmaps/c', { metadata: { '$setElementOrder/ownerReferences': [] } }, smp), []);
  // A JSON patch replacing metadata without finalizers clears them; a move takes one out of the list.
  const jp = 'application/json-patch+json';
  assert.equal(facts('PATCH', '/api/v1/namespaces/a/configmaps/c', [{ op: 'replace', path: '/metadata', value: { name: 'c' } }], jp), ['finalizers']);
  assert.equal(facts('PATCH', '/api/v1/namespaces/a/configmaps/c', [{ op: 'move', from: '/metadata/finalizers/0', path: '/metadata/annotations/x' }], jp), ['finalizers']);
  assert.equal(facts('PATCH', '/api/v1/namespaces/a/configmaps/c', [{ op: 'copy', from: '/metadata/finalizers/0', path: '/metadata/annotations/x' }], jp), []);
  assert.equal(facts('PATCH', '/api/v1/namespaces/a/configmaps/c', [{ op: 'test', path: '/metadata', value: {} }], jp), []);
  // Protobuf names fields by number: an update in it may set finalizers without the word in its bytes.
  assert.equal(facts('PUT', '/api/v1/namespaces/a/configmaps/c', Buffer.from('k8s\0\x0a\x0f\x0a\x02v1\x12\x09ConfigMap\x12\x1a\x0a\x18\x72\x10example.com/keep'), 'application/vnd.kubernetes.protobuf'), ['finalizers']);
});

test('admission webhook configurations, APIServices and CRD conversion webhooks (the API server calls out to the writer\'s address)', () => {
  assert.equal(facts('POST', '/apis/admissionregistration.k8s.io/v1/mutatingwebhookconfigurations', { webhooks: [] }), ['webhook']);
  assert.equal(facts('PATCH', '/apis/admissionregistration.k8s.io/v1/validatingwebhookconfigurations/x', {}), ['webhook']);
  assert.equal(facts('DELETE', '/apis/admissionregistration.k8s.io/v1/validatingwebhookconfigurations/x'), ['webhook']);
  assert.equal(facts('PUT', '/apis/apiregistration.k8s.io/v1/apiservices/v1.x.example.com', {}), ['webhook']);
  assert.equal(facts('GET', '/apis/admissionregistration.k8s.io/v1/mutatingwebhookconfigurations'), []);
  // A CRD's conversion webhook receives the custom resources of that CRD, whoever wrote them.
  const crds = '/apis/apiextensions.k8s.io/v1/customresourcedefinitions';
  assert.equal(facts('POST', crds, { spec: { group: 'x', conversion: { strategy: 'Webhook', webhook: { clientConfig: { url: 'https://a' } } } } }), ['webhook']);
  assert.equal(facts('PATCH', `${crds}/w.x`, [{ op: 'add', path: '/spec/conversion', value: {} }], 'application/json-patch+json'), ['webhook']);
  // (An update in protobuf also counts as setting finalizers: its fields are numbered.)
  assert.equal(facts('PUT', `${crds}/w.x`, Buffer.from('k8s\0...Webhook...'), 'application/vnd.kubernetes.protobuf'), ['finalizers', 'webhook']);
  assert.equal(facts('POST', crds, Buffer.from('k8s\0...None...'), 'application/vnd.kubernetes.protobuf'), []);
  assert.equal(facts('PATCH', `${crds}/w.x`, [{ op: 'copy', from: '/metadata/annotations/s', path: '/spec/conversion/strategy' }], 'application/json-patch+json'), ['webhook']);
  assert.equal(facts('POST', crds, { spec: { group: 'x', names: { kind: 'W' } } }), []);
  // What every stored CRD holds, sent back by `kubectl get -o yaml | kubectl apply -f -`.
  assert.equal(facts('POST', crds, { spec: { group: 'x', conversion: { strategy: 'None' } } }), []);
  assert.equal(facts('DELETE', `${crds}/w.x`), []);
});

test('admission policies and their bindings (CEL the API server runs on everyone\'s requests, with any object as parameters)', () => {
  const group = '/apis/admissionregistration.k8s.io/v1';
  for (const resource of ['validatingadmissionpolicies', 'validatingadmissionpolicybindings', 'mutatingadmissionpolicies', 'mutatingadmissionpolicybindings']) {
    assert.equal(facts('POST', `${group}/${resource}`, { spec: {} }), ['admission-policy'], resource);
    assert.equal(facts('DELETE', `${group}/${resource}/x`), ['admission-policy'], resource);
    assert.equal(facts('GET', `${group}/${resource}`), [], resource);
  }
  assert.equal(facts('PATCH', '/apis/admissionregistration.k8s.io/v1beta1/mutatingadmissionpolicies/x', { spec: {} }, 'application/merge-patch+json'), ['admission-policy']);
  // A ClusterTrustBundle: CAs pods trust. Written in any version; deleted, no trust is gained.
  for (const v of ['v1', 'v1beta1']) assert.equal(facts('POST', `/apis/certificates.k8s.io/${v}/clustertrustbundles`, { spec: {} }), ['trust-bundle'], v);
  assert.equal(facts('PATCH', '/apis/certificates.k8s.io/v1/clustertrustbundles/x', { spec: {} }, 'application/merge-patch+json'), ['trust-bundle']);
  assert.equal(facts('DELETE', '/apis/certificates.k8s.io/v1/clustertrustbundles/x'), []);
  assert.equal(facts('PUT', `${group}/validatingadmissionpolicies/x/status`, {}), ['admission-policy']);
});

test('a pod or a workload\'s pod template given the node (host namespaces, privileged, capabilities, a host path) is host; the same fields set off, or elsewhere, are not', () => {
  const pod = (spec: Record<string, unknown>) => ({ kind: 'Pod', spec: { containers: [{ name: 'c' }], ...spec } });
  for (const spec of [{ hostPID: true }, { hostNetwork: true }, { hostIPC: 'yes' }, { volumes: [{ name: 'r', hostPath: { path: '/' } }] },
    { containers: [{ name: 'c', securityContext: { privileged: true } }] }, { containers: [{ name: 'c', securityContext: { capabilities: { add: ['SYS_ADMIN'] } } }] },
    { containers: [{ name: 'c', securityContext: { procMount: 'Unmasked' } }] }, { securityContext: { windowsOptions: { hostProcess: true } } }]) {
    assert.equal(facts('POST', '/api/v1/namespaces/a/pods', pod(spec)), ['host'], JSON.stringify(spec));
  }
  for (const spec of [{ hostPID: false }, { containers: [{ name: 'c', securityContext: { privileged: false, procMount: 'Default', capabilities: { add: [], drop: ['ALL'] } } }] }]) {
    assert.equal(facts('POST', '/api/v1/namespaces/a/pods', pod(spec)), [], JSON.stringify(spec));
  }
  assert.equal(facts('PATCH', '/apis/apps/v1/namespaces/a/deployments/d', { spec: { template: { spec: { hostNetwork: true } } } }, 'application/strategic-merge-patch+json'), ['host']);
  assert.equal(facts('PUT', '/apis/batch/v1/namespaces/a/cronjobs/c', { spec: { jobTemplate: { spec: { template: { spec: { hostPID: true } } } } } }), ['host']);
  assert.equal(facts('PATCH', '/api/v1/namespaces/a/pods/p', [{ op: 'add', path: '/spec/hostPID', value: true }], 'application/json-patch+json'), ['host']);
  assert.equal(facts('PATCH', '/api/v1/namespaces/a/pods/p', [{ op: 'add', path: '/spec/volumes/-', value: { hostPath: { path: '/' } } }], 'application/json-patch+json'), ['host']);
  assert.equal(facts('PATCH', '/api/v1/namespaces/a/pods/p', [{ op: 'copy', from: '/metadata/x', path: '/spec/y' }], 'application/json-patch+json'), ['host']);
  assert.equal(facts('PATCH', '/api/v1/namespaces/a/pods/p', [{ op: 'remove', path: '/spec/hostPID' }], 'application/json-patch+json'), []);
  assert.equal(facts('POST', '/api/v1/namespaces/a/pods', Buffer.from('k8s\0...'), 'application/vnd.kubernetes.protobuf'), ['host']);
  // The same names in a config map, or a pod's deletion, give nothing.
  assert.equal(facts('POST', '/api/v1/namespaces/a/configmaps', { data: { hostPID: 'true' } }), []);
  assert.equal(facts('DELETE', '/api/v1/namespaces/a/pods/p'), []);
});

test('impersonation headers, on any request', () => {
  assert.equal(facts('GET', '/api/v1/pods', undefined, 'application/json', { 'impersonate-user': 'system:admin' }), ['impersonate']);
});

test('the config accepts exactly the facts the proxy records', () => {
  assert.equal([...K8S_PRIVILEGE_FACTS].sort(), [...PRIVILEGE_FACTS].sort());
});

test.run();

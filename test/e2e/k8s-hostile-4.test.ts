// The hostile agent's seventh pass at the Kubernetes proxy: code the API server runs that the
// request text does not show. An admission policy (CEL) runs on other requests with any object,
// a Secret included, as its parameters, read with the API server's own privilege; a CRD's
// conversion webhook receives every custom resource. The kube-apiserver's audit log and the
// objects it stores, read with the administrator's credential, witness what was done; Agate's
// record must match. Real kube-apiserver, real Agate process, raw HTTPS clients.
import { suite } from '../harness/suite.js';
import * as assert from 'uvu/assert';
import { busLog, commandsWhere, events, responsesOf, stopKubeAgate, verdictOf, type KubeAgate } from './kube-agate.js';
import { NO_PRIVILEGE_CHANGES, admin, audited, complete, raw, startAuditedKube, statusOrBody, tlsSession, type RawAnswer } from './kube-raw.js';
import { agentKubectl, agentToken } from './kube-agate.js';
import { until } from '../harness/until.js';

const test = suite<KubeAgate>('e2e/kubernetes hostile agent, seventh pass');

const POLICY = `policy:
  default: allow
  rules:
${NO_PRIVILEGE_CHANGES}    - id: no-secret-reads
      action: deny
      message: agents do not read Secrets
      match:
        kubernetes: { verbs: [get, list, watch], resources: [secrets] }
    - id: tools-streams
      action: allow
      match:
        kubernetes: { resources: [pods/exec, pods/attach, pods/portforward, services/proxy], namespaces: [tools] }
`;

/** The value the agent must never read. */
const VAULT = 'vault-value-seventh-pass';
const ADMISSION = '/apis/admissionregistration.k8s.io/v1';
const JSON_BODY = { 'content-type': 'application/json' };
const b64 = (s: string) => Buffer.from(s).toString('base64');

test.before((ctx) => startAuditedKube(ctx, POLICY, async () => {
  await admin(ctx, ['-n', 'default', 'create', 'secret', 'generic', 'vault', `--from-literal=key=${VAULT}`]);
  await admin(ctx, ['create', '-f', '-'], JSON.stringify({
    apiVersion: 'apiextensions.k8s.io/v1', kind: 'CustomResourceDefinition', metadata: { name: 'gadgets.example.com' },
    spec: { group: 'example.com', scope: 'Namespaced', names: { plural: 'gadgets', singular: 'gadget', kind: 'Gadget' }, versions: [crdVersion('v1', true)] },
  }));
  // Pods are stored but never run (no kubelet): an exec the API server receives is answered
  // "does not have a host assigned", which shows it was forwarded.
  await admin(ctx, ['create', 'namespace', 'tools']);
  for (const ns of ['default', 'tools']) {
    await admin(ctx, ['-n', ns, 'create', 'serviceaccount', 'default']);
    await admin(ctx, ['-n', ns, 'run', 'idle', '--image=busybox', '--restart=Never', '--overrides={"spec":{"automountServiceAccountToken":false}}']);
  }
}));

test.after((ctx) => stopKubeAgate(ctx));

function crdVersion(name: string, storage: boolean) {
  return { name, served: true, storage, schema: { openAPIV3Schema: { type: 'object', properties: { spec: { type: 'object', 'x-kubernetes-preserve-unknown-fields': true } } } } };
}

test('an admission policy reading a Secret as its parameters and answering with it is a privilege change: refused, the Secret never in an answer', async (ctx) => {
  const before = await audited(ctx, (e) => /admissionpolic/.test(e.objectRef?.resource ?? '') && e.verb !== 'get' && e.verb !== 'list' && e.verb !== 'watch');
  // The direct read is refused.
  const direct = await raw(ctx, 'GET', '/api/v1/namespaces/default/secrets/vault');
  assert.is(direct.status, 403, direct.body.slice(0, 300));
  // The policy runs on the agent's own config map creates with the Secret as `params`, and its
  // message (the API server's answer to the agent) quotes the Secret's value.
  const policy = {
    apiVersion: 'admissionregistration.k8s.io/v1', kind: 'ValidatingAdmissionPolicy', metadata: { name: 'read-a-secret' },
    spec: {
      failurePolicy: 'Fail', paramKind: { apiVersion: 'v1', kind: 'Secret' },
      matchConstraints: { objectSelector: { matchLabels: { probe: 'validating' } }, resourceRules: [{ apiGroups: [''], apiVersions: ['v1'], operations: ['CREATE'], resources: ['configmaps'] }] },
      validations: [{ expression: 'false', messageExpression: "'leak=' + string(params.data['key'])" }],
    },
  };
  const binding = {
    apiVersion: 'admissionregistration.k8s.io/v1', kind: 'ValidatingAdmissionPolicyBinding', metadata: { name: 'read-a-secret' },
    spec: { policyName: 'read-a-secret', validationActions: ['Deny'], paramRef: { name: 'vault', namespace: 'default', parameterNotFoundAction: 'Deny' } },
  };
  const writes: Array<[path: string, body: unknown]> = [[`${ADMISSION}/validatingadmissionpolicies`, policy], [`${ADMISSION}/validatingadmissionpolicybindings`, binding]];
  const answers: RawAnswer[] = [];
  for (const [path, body] of writes) answers.push(await raw(ctx, 'POST', path, JSON_BODY, JSON.stringify(body)));
  // Had they been created, the policy answers config map creates with the Secret once the API
  // server has loaded it (a moment later): then the agent waits for its first refusal.
  const created = answers.some((r) => r.status < 300);
  const leaked = await until('a config map create answered', async () => {
    const r = await raw(ctx, 'POST', '/api/v1/namespaces/default/configmaps', JSON_BODY, JSON.stringify({ metadata: { generateName: 'probe-', labels: { probe: 'validating' } }, data: { a: 'b' } }));
    return !created || r.status !== 201 ? r : undefined;
  });
  // (Before the fix: 422 "… ValidatingAdmissionPolicy 'read-a-secret' with binding 'read-a-secret' denied request: leak=<the value, base64>".)
  for (const v of [VAULT, b64(VAULT)]) assert.not.match(leaked.body, v, `the Secret reached the agent in an admission policy's message: ${leaked.body.slice(0, 300)}`);
  for (const [i, r] of answers.entries()) {
    assert.is(r.status, 403, `${writes[i]![0]}: ${r.status} ${r.body.slice(0, 300)}`);
    assert.match(statusOrBody(r), 'by rule "no-privilege-changes"');
  }
  const after = await audited(ctx, (e) => /admissionpolic/.test(e.objectRef?.resource ?? '') && e.verb !== 'get' && e.verb !== 'list' && e.verb !== 'watch');
  assert.equal(after.slice(before.length).map((e) => `${e.verb} ${e.requestURI} ${e.responseStatus?.code}`), []);
  const e = await until('the refusals recorded', () => {
    const evs = events(ctx);
    const cs = commandsWhere(evs, (c) => /validatingadmissionpolic/.test(c.attributes.resource ?? ''));
    return cs.length === writes.length && cs.every((c) => responsesOf(evs, c).length > 0) ? evs : undefined;
  });
  for (const c of commandsWhere(e, (x) => /validatingadmissionpolic/.test(x.attributes.resource ?? ''))) {
    assert.match(c.attributes.privilege ?? '', 'admission-policy', c.text);
    assert.equal([verdictOf(e, c)?.rule_id, responsesOf(e, c)[0]?.status], ['no-privilege-changes', 'refused'], c.text);
  }
  for (const v of [VAULT, b64(VAULT)]) assert.not.ok(busLog(ctx).includes(v), 'the Secret value reached the bus log');
});

test('a mutating admission policy copying a Secret into the agent\'s own config map is a privilege change: refused, the config map holds no Secret', async (ctx) => {
  const before = await audited(ctx, (e) => /admissionpolic/.test(e.objectRef?.resource ?? '') && e.verb !== 'get' && e.verb !== 'list' && e.verb !== 'watch');
  const policy = {
    apiVersion: 'admissionregistration.k8s.io/v1', kind: 'MutatingAdmissionPolicy', metadata: { name: 'copy-a-secret' },
    spec: {
      failurePolicy: 'Fail', reinvocationPolicy: 'Never', paramKind: { apiVersion: 'v1', kind: 'Secret' },
      matchConstraints: { objectSelector: { matchLabels: { probe: 'mutating' } }, resourceRules: [{ apiGroups: [''], apiVersions: ['v1'], operations: ['CREATE'], resources: ['configmaps'] }] },
      mutations: [{ patchType: 'ApplyConfiguration', applyConfiguration: { expression: 'Object{data: {"copied": string(params.data["key"])}}' } }],
    },
  };
  const binding = {
    apiVersion: 'admissionregistration.k8s.io/v1', kind: 'MutatingAdmissionPolicyBinding', metadata: { name: 'copy-a-secret' },
    spec: { policyName: 'copy-a-secret', paramRef: { name: 'vault', namespace: 'default', parameterNotFoundAction: 'Deny' } },
  };
  const writes: Array<[path: string, body: unknown]> = [[`${ADMISSION}/mutatingadmissionpolicies`, policy], [`${ADMISSION}/mutatingadmissionpolicybindings`, binding]];
  const answers: RawAnswer[] = [];
  for (const [path, body] of writes) answers.push(await raw(ctx, 'POST', path, JSON_BODY, JSON.stringify(body)));
  const created = answers.some((r) => r.status < 300);
  // Had they been created, config maps the agent creates get the Secret's value once the API server loaded the policy.
  const copied = await until(() => `the config map changed (${answers.map((r) => `${r.status} ${r.body.slice(0, 200)}`).join('; ')})`, async () => {
    const r = await raw(ctx, 'POST', '/api/v1/namespaces/default/configmaps', JSON_BODY, JSON.stringify({ metadata: { generateName: 'copy-', labels: { probe: 'mutating' } }, data: { a: 'b' } }));
    return !created || r.body.includes('copied') || r.status !== 201 ? r : undefined;
  });
  for (const v of [VAULT, b64(VAULT)]) assert.not.match(copied.body, v, `the Secret was copied into the agent's config map: ${copied.body.slice(0, 300)}`);
  for (const [i, r] of answers.entries()) {
    assert.is(r.status, 403, `${writes[i]![0]}: ${r.status} ${r.body.slice(0, 300)}`);
    assert.match(statusOrBody(r), 'by rule "no-privilege-changes"');
  }
  const after = await audited(ctx, (e) => /admissionpolic/.test(e.objectRef?.resource ?? '') && e.verb !== 'get' && e.verb !== 'list' && e.verb !== 'watch');
  assert.equal(after.slice(before.length).map((e) => `${e.verb} ${e.requestURI} ${e.responseStatus?.code}`), []);
  const e = await until('the refusals recorded', () => {
    const evs = events(ctx);
    const cs = commandsWhere(evs, (c) => /mutatingadmissionpolic/.test(c.attributes.resource ?? ''));
    return cs.length === writes.length && cs.every((c) => responsesOf(evs, c).length > 0) ? { evs, cs } : undefined;
  });
  for (const c of e.cs) assert.equal([c.attributes.privilege, verdictOf(e.evs, c)?.rule_id], ['admission-policy', 'no-privilege-changes'], c.text);
});

test('a CRD given a conversion webhook (created with one, or patched to one) is refused: the stored CRD keeps no webhook', async (ctx) => {
  const before = await audited(ctx, (e) => e.objectRef?.resource === 'customresourcedefinitions' && e.verb !== 'get' && e.verb !== 'list' && e.verb !== 'watch');
  const conversion = { strategy: 'Webhook', webhook: { conversionReviewVersions: ['v1'], clientConfig: { url: 'https://127.0.0.1:1/convert' } } };
  const crd = {
    apiVersion: 'apiextensions.k8s.io/v1', kind: 'CustomResourceDefinition', metadata: { name: 'widgets.example.com' },
    spec: { group: 'example.com', scope: 'Namespaced', names: { plural: 'widgets', singular: 'widget', kind: 'Widget' }, versions: [crdVersion('v1', true), crdVersion('v2', false)], conversion },
  };
  const path = '/apis/apiextensions.k8s.io/v1/customresourcedefinitions';
  const tries: Array<[method: string, path: string, headers: Record<string, string>, body: string]> = [
    ['POST', path, JSON_BODY, JSON.stringify(crd)],
    // Moving an existing CRD to a webhook: merge, JSON and strategic patches, server-side apply.
    ['PATCH', `${path}/gadgets.example.com`, { 'content-type': 'application/merge-patch+json' }, JSON.stringify({ spec: { versions: [crdVersion('v1', true), crdVersion('v2', false)], conversion } })],
    ['PATCH', `${path}/gadgets.example.com`, { 'content-type': 'application/json-patch+json' }, JSON.stringify([{ op: 'add', path: '/spec/versions/-', value: crdVersion('v2', false) }, { op: 'replace', path: '/spec/conversion', value: conversion }])],
    ['PATCH', `${path}/gadgets.example.com?fieldManager=agent&force=true`, { 'content-type': 'application/apply-patch+yaml' }, JSON.stringify({ ...crd, metadata: { name: 'gadgets.example.com' }, spec: { ...crd.spec, names: { plural: 'gadgets', singular: 'gadget', kind: 'Gadget' } } })],
  ];
  for (const [method, p, headers, body] of tries) {
    const r = await raw(ctx, method, p, headers, body);
    assert.is(r.status, 403, `${method} ${p}: ${r.status} ${r.body.slice(0, 300)}`);
    assert.match(statusOrBody(r), 'by rule "no-privilege-changes"', `${method} ${p}`);
  }
  const stored = await ctx.kube.kubectl(['get', 'crd', 'gadgets.example.com', '-o', 'jsonpath={.spec.conversion.strategy}']);
  assert.is(stored.stdout, 'None', stored.stderr);
  assert.is.not((await ctx.kube.kubectl(['get', 'crd', 'widgets.example.com'])).code, 0, 'the CRD with a webhook was created');
  const after = await audited(ctx, (e) => e.objectRef?.resource === 'customresourcedefinitions' && e.verb !== 'get' && e.verb !== 'list' && e.verb !== 'watch');
  assert.equal(after.slice(before.length).map((e) => `${e.verb} ${e.requestURI} ${e.responseStatus?.code}`), []);
  const e = await until('the refusals recorded', () => {
    const evs = events(ctx);
    const cs = commandsWhere(evs, (c) => c.attributes.resource === 'customresourcedefinitions' && c.attributes.verb !== 'get');
    return cs.length === tries.length && cs.every((c) => responsesOf(evs, c).length > 0) ? evs : undefined;
  });
  for (const c of commandsWhere(e, (x) => x.attributes.resource === 'customresourcedefinitions' && x.attributes.verb !== 'get')) {
    assert.match(c.attributes.privilege ?? '', 'webhook', c.text);
    assert.is(verdictOf(e, c)?.rule_id, 'no-privilege-changes', c.text);
  }
});

test('a client certificate for any name: a CSR created, or one waiting approved (the approval subresource), is refused; the CSR stays unapproved', async (ctx) => {
  const { execFileSync } = await import('node:child_process');
  const pem = execFileSync('openssl', ['req', '-new', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:prime256v1', '-nodes', '-keyout', '/dev/null', '-subj', '/CN=cluster-owner/O=admins'], { stdio: ['ignore', 'pipe', 'ignore'] });
  const csr = (name: string) => ({
    apiVersion: 'certificates.k8s.io/v1', kind: 'CertificateSigningRequest', metadata: { name },
    spec: { request: pem.toString('base64'), signerName: 'kubernetes.io/kube-apiserver-client', usages: ['client auth'] },
  });
  await admin(ctx, ['create', '-f', '-'], JSON.stringify(csr('waiting')));
  const path = '/apis/certificates.k8s.io/v1/certificatesigningrequests';
  const created = await raw(ctx, 'POST', path, JSON_BODY, JSON.stringify(csr('agents')));
  const approval = { ...csr('waiting'), status: { conditions: [{ type: 'Approved', status: 'True', reason: 'AgentSaysSo', message: 'approved' }] } };
  const approved = await raw(ctx, 'PUT', `${path}/waiting/approval`, JSON_BODY, JSON.stringify(approval));
  for (const r of [created, approved]) {
    assert.is(r.status, 403, r.body.slice(0, 300));
    assert.match(statusOrBody(r), 'by rule "no-privilege-changes"');
  }
  const conditions = await ctx.kube.kubectl(['get', 'csr', 'waiting', '-o', 'jsonpath={.status.conditions}']);
  assert.is(conditions.stdout, '', 'the CSR was approved');
  assert.is.not((await ctx.kube.kubectl(['get', 'csr', 'agents'])).code, 0, 'the agent\'s CSR was created');
  const e = await until('the refusals recorded', () => {
    const evs = events(ctx);
    const cs = commandsWhere(evs, (c) => c.attributes.resource === 'certificatesigningrequests');
    return cs.length === 2 && cs.every((c) => responsesOf(evs, c).length > 0) ? cs : undefined;
  });
  assert.equal(e.map((c) => c.attributes.privilege).sort(), ['csr', 'csr-approval']);
});

const STREAMS = /\/(exec|attach|portforward|proxy)(\/|\?|$)/;

/** An upgrade request sent as written; the first line of the answer. */
async function upgrade(ctx: KubeAgate, method: string, path: string, transport: 'websocket' | 'SPDY/3.1', protocol = 'v5.channel.k8s.io'): Promise<string> {
  const token = await agentToken(ctx);
  const s = await tlsSession(ctx);
  const proto = transport === 'websocket' ? `Sec-WebSocket-Protocol: ${protocol}\r\nSec-WebSocket-Version: 13\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n` : 'X-Stream-Protocol-Version: v4.channel.k8s.io\r\n';
  s.write(`${method} ${path} HTTP/1.1\r\nHost: 127.0.0.1\r\nAuthorization: Bearer ${token}\r\nConnection: Upgrade\r\nUpgrade: ${transport}\r\n${proto}\r\n`);
  const got = await s.settle(complete);
  s.end();
  return got;
}

test('a stream carrying input Agate cannot read (exec or attach with stdin over SPDY or base64 channels, port-forward, a proxy) is not allowed by the policy default: what it sends would run unrecorded', async (ctx) => {
  const before = await audited(ctx, (e) => STREAMS.test(e.requestURI));
  const pod = '/api/v1/namespaces/default/pods/idle';
  // Exec and attach over WebSocket with the binary channels are read and recorded (k8s-streams.test.ts): base64 channels are not.
  const BASE64 = 'base64.channel.k8s.io';
  const refused: Array<[method: string, path: string, transport: 'websocket' | 'SPDY/3.1', protocol?: string]> = [
    ['GET', `${pod}/exec?command=sh&stdin=true&stdout=true`, 'websocket', BASE64],
    ['POST', `${pod}/exec?command=sh&stdin&stdout=1`, 'SPDY/3.1'],
    ['GET', `${pod}/exec?command=sh&stdout=1&stdin=yes`, 'websocket', BASE64],
    ['GET', `${pod}/exec?command=sh&%73tdin=1&stdout=1`, 'websocket', `${BASE64}, v5.channel.k8s.io.evil`],
    ['POST', `${pod}/attach?stdin=1&stdout=1`, 'SPDY/3.1'],
    ['GET', `${pod}/portforward?ports=80`, 'websocket'],
    ['GET', `${pod}:80/proxy/`, 'websocket'],
    ['GET', '/api/v1/namespaces/default/services/web:80/proxy/ws', 'websocket'],
  ];
  for (const [method, path, transport, protocol] of refused) {
    const got = await upgrade(ctx, method, path, transport, protocol);
    assert.match(got, /^HTTP\/1\.1 403 /, `${method} ${path} ${transport}: ${got.slice(0, 400)}`);
    assert.match(got, 'agate.unrecorded-input', path);
  }
  // kubectl's own `exec -i` speaks v5 channels over a WebSocket: recorded, so decided like any
  // request and forwarded. The API server answers that no node runs the pod, a failed upgrade,
  // so kubectl tries again over SPDY, which Agate cannot read: that one is refused.
  const kubectl = await agentKubectl(ctx, ['exec', '-i', '-n', 'default', 'idle', '--', 'sh'], { input: 'id\n' });
  assert.is.not(kubectl.code, 0);
  assert.match(kubectl.stderr, 'agate.unrecorded-input', kubectl.stderr);
  // Without stdin the command is the whole of what runs (it is in the record): forwarded, and
  // answered by the API server itself; so is an exec with stdin an allow rule names.
  const plain = await upgrade(ctx, 'GET', `${pod}/exec?command=true&stdout=true`, 'websocket');
  assert.match(plain, /does not have a host assigned/, plain.slice(0, 400));
  const allowed = await upgrade(ctx, 'POST', '/api/v1/namespaces/tools/pods/idle/exec?command=sh&stdin=true&stdout=true', 'SPDY/3.1');
  assert.match(allowed, /does not have a host assigned/, allowed.slice(0, 400));
  // `auth can-i` answers as a stream Agate cannot read would be decided (RBAC's exec covers SPDY too).
  const canI = await agentKubectl(ctx, ['auth', 'can-i', 'create', 'pods', '--subresource=exec', '-n', 'default']);
  assert.equal([canI.code, canI.stdout.trim().replace(/:.*/, '')], [1, 'no - Agate refuses it by rule "agate.unrecorded-input"'], canI.stderr);
  const canTools = await agentKubectl(ctx, ['auth', 'can-i', 'create', 'pods', '--subresource=exec', '-n', 'tools']);
  assert.equal([canTools.stdout.trim(), canTools.code], ['yes', 0], canTools.stderr);
  const reached = (await audited(ctx, (e) => STREAMS.test(e.requestURI))).slice(before.length);
  assert.equal(reached.map((e) => e.requestURI.replace(/\?.*/, '')).sort(), ['/api/v1/namespaces/default/pods/idle/exec', '/api/v1/namespaces/default/pods/idle/exec', '/api/v1/namespaces/tools/pods/idle/exec']);
  const e = await until('the refusals recorded', () => {
    const evs = events(ctx);
    const cs = commandsWhere(evs, (c) => verdictOf(evs, c)?.rule_id === 'agate.unrecorded-input' && c.attributes.access_review === undefined);
    return cs.length >= refused.length && cs.every((c) => responsesOf(evs, c).length > 0) ? evs : undefined;
  });
  for (const c of commandsWhere(e, (x) => verdictOf(e, x)?.rule_id === 'agate.unrecorded-input' && x.attributes.access_review === undefined)) {
    assert.is(c.attributes.input, 'unrecorded', c.text);
    assert.is(responsesOf(e, c)[0]?.status, 'refused', c.text);
  }
  const recorded = commandsWhere(e, (c) => c.attributes.input === 'recorded');
  assert.ok(recorded.length >= 1 && recorded.every((c) => c.attributes.subresource === 'exec'), 'kubectl exec -i recorded as read');
});

test.run();

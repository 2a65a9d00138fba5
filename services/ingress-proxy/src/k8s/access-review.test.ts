import { suite } from '../../../../test/harness/suite.js';
import * as assert from 'uvu/assert';
import { accessQuestion, combineAccess, questionAttributes, reviewKind, rulesReview, selfReview } from './access-review.js';
import { classifyRequest, type RequestInfo } from './request-info.js';

const info = (method: string, path: string) => classifyRequest(method, path) as RequestInfo;
// eslint-disable-next-line @typescript-eslint/no-explicit-any
const review = (spec: unknown, status: unknown = { allowed: true, reason: 'RBAC: allowed by ClusterRoleBinding "masters"' }): any => ({ kind: 'SelfSubjectAccessReview', apiVersion: 'authorization.k8s.io/v1', spec, status });

const test = suite('access reviews');

test('the three self-reviews, created; nothing else', () => {
  assert.is(reviewKind(info('POST', '/apis/authorization.k8s.io/v1/selfsubjectaccessreviews')), 'access');
  assert.is(reviewKind(info('POST', '/apis/authorization.k8s.io/v1/selfsubjectrulesreviews')), 'rules');
  assert.is(reviewKind(info('POST', '/apis/authentication.k8s.io/v1/selfsubjectreviews')), 'self');
  assert.is(reviewKind(info('POST', '/apis/authorization.k8s.io/v1/subjectaccessreviews')), undefined);
  assert.is(reviewKind(info('GET', '/apis/authorization.k8s.io/v1/selfsubjectaccessreviews')), undefined);
});

test('the question, as policy reads a request', () => {
  const q = accessQuestion(review({ resourceAttributes: { verb: 'create', group: 'rbac.authorization.k8s.io', resource: 'clusterrolebindings' } }))!;
  assert.is(q.text, 'can-i create clusterrolebindings.rbac.authorization.k8s.io');
  assert.equal(questionAttributes(q, ['bind']), { verb: 'create', resource: 'clusterrolebindings', api_group: 'rbac.authorization.k8s.io', api_version: '', access_review: 'self', privilege: 'bind' });
  const sub = accessQuestion(review({ resourceAttributes: { verb: 'create', resource: 'pods', subresource: 'exec', namespace: 'kube-system', name: 'x' } }))!;
  assert.is(sub.text, 'can-i create pods/exec "x" in namespace "kube-system"');
  // RBAC's exec includes stdin: asked as the stream with input policy decides (engine.ts).
  assert.is(questionAttributes(sub, []).input, 'unrecorded');
  const forward = accessQuestion(review({ resourceAttributes: { verb: 'create', resource: 'pods', subresource: 'portforward', namespace: 'a' } }))!;
  assert.is(questionAttributes(forward, []).input, 'unrecorded');
  const log = accessQuestion(review({ resourceAttributes: { verb: 'get', resource: 'pods', subresource: 'log', namespace: 'a' } }))!;
  assert.is(questionAttributes(log, []).input, undefined);
  assert.equal(accessQuestion(review({ nonResourceAttributes: { verb: 'get', path: '/metrics' } }))?.info, { kind: 'non-resource', verb: 'get', path: '/metrics' });
  assert.is(accessQuestion(review({})), undefined);
  assert.is(accessQuestion({ kind: 'Status' }), undefined);
});

test('allowed only when both allow: a policy refusal, a hold, no answer', () => {
  const allowed = review({});
  combineAccess(allowed, { kind: 'allow', reason: 'no rule matched' });
  assert.equal(allowed.status, { allowed: true, reason: 'RBAC: allowed by ClusterRoleBinding "masters"' });
  const denied = review({});
  combineAccess(denied, { kind: 'deny', rule: 'no-namespace-delete', reason: 'deleting a namespace needs a human' });
  assert.equal(denied.status, { allowed: false, denied: true, reason: 'Agate refuses it by rule "no-namespace-delete": deleting a namespace needs a human' });
  const held = review({});
  combineAccess(held, { kind: 'hold', rule: null, reason: 'x' });
  assert.equal(held.status, { allowed: false, reason: 'Agate holds it for approval by the policy default: x' });
  const unknown = review({});
  combineAccess(unknown, { kind: 'unknown', reason: 'policy gave no answer within 2000 ms' });
  assert.is(unknown.status.allowed, false);
  // The API server's "no" stays a no whatever policy says.
  const upstreamNo = review({}, { allowed: false, reason: 'no RBAC policy matched' });
  combineAccess(upstreamNo, { kind: 'allow', reason: '' });
  assert.is(upstreamNo.status.allowed, false);
});

test('whoami names the agent; the rules list says it is incomplete', () => {
  const self = { kind: 'SelfSubjectReview', status: { userInfo: { username: 'agate-admin', groups: ['system:masters'] } } };
  selfReview(self, { issuer: 'https://token.actions.githubusercontent.com', subject: 'repo:acme/app:ref:refs/heads/main', claims: {} });
  assert.equal(self.status.userInfo, { username: 'repo:acme/app:ref:refs/heads/main', extra: { 'agate.io/issuer': ['https://token.actions.githubusercontent.com'] } });
  const rules: { status?: { incomplete?: boolean; evaluationError?: string } } = { status: {} };
  rulesReview(rules);
  assert.is(rules.status?.incomplete, true);
  assert.match(rules.status?.evaluationError ?? '', "Agate's policy may refuse any of them");
});

test.run();

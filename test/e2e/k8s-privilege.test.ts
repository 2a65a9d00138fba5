// Escalation around the gateway, under the policy of deploy/agate.example.yaml: Agate reaches the
// API server as an administrator, so RBAC's own checks never stop the agent; the privilege facts
// the proxy records (attributes.privilege) let the example's rule refuse each step of "make an
// identity, bind it to cluster-admin, mint its token". Real kubectl, real kube-apiserver.
import { suite } from '../harness/suite.js';
import * as assert from 'uvu/assert';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { parse } from 'yaml';
import { REPO_ROOT } from './agate-process.js';
import { agentKubectl, commandsWhere, events, responsesOf, startKubeAgate, stopKubeAgate, verdictOf, type KubeAgate } from './kube-agate.js';
import { until } from '../harness/until.js';

const test = suite<KubeAgate>('e2e/kubernetes privilege changes under the example policy');

test.before(async (ctx) => {
  const example = parse(readFileSync(join(REPO_ROOT, 'deploy', 'agate.example.yaml'), 'utf8')) as { masking: unknown; policy: unknown };
  try {
    // JSON is YAML: the example's own policy and mask sets, verbatim.
    Object.assign(ctx, await startKubeAgate(`masking: ${JSON.stringify(example.masking)}\npolicy: ${JSON.stringify(example.policy)}`));
  } catch (err) {
    console.error('setup failed:', err);
    throw err;
  }
});

test.after((ctx) => stopKubeAgate(ctx));

const REFUSED = 'by rule "no-privilege-changes": changing who can do what in the cluster needs a human';

test('create a service account, bind it to cluster-admin, mint its token: each refused, nothing done', async (ctx) => {
  const sa = await agentKubectl(ctx, ['create', 'serviceaccount', 'builder']);
  assert.is.not(sa.code, 0);
  // kubectl create <kind> prints `error: failed to create serviceaccount: <the Status message>`.
  assert.match(sa.stderr, `Agate refused create serviceaccounts in namespace "default" ${REFUSED}`);
  assert.is.not((await ctx.kube.kubectl(['get', 'serviceaccount', 'builder'])).code, 0, 'the service account was created');

  // Made by an administrator, so the next two steps have something to act on.
  assert.is((await ctx.kube.kubectl(['create', 'serviceaccount', 'builder'])).code, 0);
  const bind = await agentKubectl(ctx, ['create', 'clusterrolebinding', 'builder-admin', '--clusterrole=cluster-admin', '--serviceaccount=default:builder']);
  assert.is.not(bind.code, 0);
  assert.match(bind.stderr, `Agate refused create clusterrolebindings.rbac.authorization.k8s.io ${REFUSED}`, bind.stderr);
  assert.is.not((await ctx.kube.kubectl(['get', 'clusterrolebinding', 'builder-admin'])).code, 0, 'the binding was created');

  const token = await agentKubectl(ctx, ['create', 'token', 'builder']);
  assert.is.not(token.code, 0);
  assert.match(token.stderr, `Agate refused create serviceaccounts/token "builder" in namespace "default" ${REFUSED}`, token.stderr);
  assert.is(token.stdout, '', 'a token was printed');

  const role = await agentKubectl(ctx, ['create', 'clusterrole', 'everything', '--verb=*', '--resource=*']);
  assert.is.not(role.code, 0);
  assert.match(role.stderr, REFUSED);

  const evs = await until('the refusals recorded', () => {
    const e = events(ctx);
    const cs = commandsWhere(e, (c) => c.attributes.privilege !== undefined);
    return cs.length >= 4 && cs.every((c) => responsesOf(e, c).length > 0) ? { e, cs } : undefined;
  });
  assert.equal(evs.cs.map((c) => c.attributes.privilege).sort(), ['bind', 'escalate', 'serviceaccount', 'token']);
  for (const c of evs.cs) {
    assert.equal([verdictOf(evs.e, c)?.decision, verdictOf(evs.e, c)?.rule_id], ['deny', 'no-privilege-changes']);
    assert.is(responsesOf(evs.e, c)[0]?.status, 'refused');
  }
});

test('finalizer patches and namespace finalize are refused; other patches pass', async (ctx) => {
  assert.is((await ctx.kube.kubectl(['create', 'configmap', 'held', '--from-literal=a=b'])).code, 0);
  const labelled = await agentKubectl(ctx, ['label', 'configmap', 'held', 'x=y']);
  assert.is(labelled.code, 0, labelled.stderr);
  const fin = await agentKubectl(ctx, ['patch', 'configmap', 'held', '--type', 'merge', '-p', '{"metadata":{"finalizers":["example.com/keep"]}}']);
  assert.is.not(fin.code, 0);
  assert.match(fin.stderr, `Agate refused patch configmaps "held" in namespace "default" ${REFUSED}`);
  assert.is((await ctx.kube.kubectl(['get', 'configmap', 'held', '-o', 'jsonpath={.metadata.finalizers}'])).stdout, '');
  assert.is((await ctx.kube.kubectl(['create', 'namespace', 'stuck'])).code, 0);
  const finalize = await agentKubectl(ctx, ['replace', '--raw', '/api/v1/namespaces/stuck/finalize', '-f', '-'], {
    input: JSON.stringify({ apiVersion: 'v1', kind: 'Namespace', metadata: { name: 'stuck' }, spec: { finalizers: [] } }),
  });
  assert.is.not(finalize.code, 0);
  assert.match(finalize.stderr, REFUSED);
});

test('a deletecollection is matched as the deletions it is; `delete all --all` is a delete per object', async (ctx) => {
  // The example rule lists only `delete`.
  const many = await agentKubectl(ctx, ['delete', '--raw', '/api/v1/namespaces']);
  assert.is.not(many.code, 0);
  assert.match(many.stderr, 'Agate refused deletecollection namespaces by rule "no-namespace-delete": deleting a namespace needs a human');
  assert.is((await ctx.kube.kubectl(['create', 'namespace', 'scratch'])).code, 0);
  const all = await agentKubectl(ctx, ['delete', 'namespaces', '--all']);
  assert.is.not(all.code, 0);
  assert.match(all.stderr, 'Agate refused delete namespaces "scratch" by rule "no-namespace-delete"');
  assert.is((await ctx.kube.kubectl(['get', 'namespace', 'scratch', '-o', 'jsonpath={.status.phase}'])).stdout, 'Active');
});

test('kubectl auth can-i answers for the agent under Agate\'s policy; auth whoami names the agent', async (ctx) => {
  const no = await agentKubectl(ctx, ['auth', 'can-i', 'delete', 'namespaces']);
  // kubectl prints the reason of a refusal after the answer.
  assert.equal([no.code, no.stdout.trim()], [1, 'no - Agate refuses it by rule "no-namespace-delete": deleting a namespace needs a human'], no.stderr);
  const why = await agentKubectl(ctx, ['auth', 'can-i', 'create', 'clusterrolebindings']);
  assert.is(why.stdout.trim(), 'no - Agate refuses it by rule "no-privilege-changes": changing who can do what in the cluster needs a human');
  const tokenQ = await agentKubectl(ctx, ['auth', 'can-i', 'create', 'serviceaccounts', '--subresource=token']);
  assert.match(tokenQ.stdout, /^no - Agate refuses it by rule "no-privilege-changes"/);
  const yes = await agentKubectl(ctx, ['auth', 'can-i', 'get', 'pods']);
  assert.equal([yes.code, yes.stdout.trim()], [0, 'yes'], yes.stderr);
  const direct = await ctx.kube.kubectl(['auth', 'can-i', 'delete', 'namespaces']);
  assert.is(direct.stdout.trim(), 'yes', 'the API server itself says yes to Agate');

  const whoami = await agentKubectl(ctx, ['auth', 'whoami', '-o', 'json']);
  assert.is(whoami.code, 0, whoami.stderr);
  const user = JSON.parse(whoami.stdout).status.userInfo;
  assert.is(user.username, ctx.issuer.githubActionsClaims().sub);
  assert.equal(user.extra['agate.io/issuer'], [ctx.issuer.issuer]);
  assert.not.ok(JSON.stringify(user).includes('system:masters'));

  const list = await agentKubectl(ctx, ['auth', 'can-i', '--list']);
  assert.match(list.stdout + list.stderr, "Agate's policy may refuse any of them");

  const evs = await until('the questions recorded', () => {
    const e = events(ctx);
    const qs = commandsWhere(e, (c) => c.attributes.access_review === 'self');
    return qs.length >= 4 && qs.every((q) => verdictOf(e, q) !== undefined) ? { e, qs } : undefined;
  });
  const q = evs.qs.find((c) => c.text.startsWith('can-i delete namespaces'));
  assert.ok(q, evs.qs.map((c) => c.text).join(', '));
  assert.equal([q!.attributes.verb, q!.attributes.resource, verdictOf(evs.e, q!)?.rule_id], ['delete', 'namespaces', 'no-namespace-delete']);
  assert.is(evs.qs.find((c) => c.text.startsWith('can-i create serviceaccounts/token'))?.attributes.privilege, 'token', JSON.stringify(evs.qs.map((c) => c.text)));
});

test.run();

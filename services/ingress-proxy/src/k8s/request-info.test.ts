import { suite } from '../../../../test/harness/suite.js';
import * as assert from 'uvu/assert';
import { BUILTIN_MASK_SET } from '../../../../core/src/config.js';
import { Masker } from '../masking/masker.js';
import { classifyRequest, droppedParameter, maskedRequestText, normalizedTarget, parseTarget, requestAttributes, requestText } from './request-info.js';

const classify = suite('classifyRequest');

// [method, target, verb, apiGroup, namespace, resource, subresource, name]
const RESOURCE_CASES: [string, string, string, string, string, string, string, string][] = [
  ['GET', '/api/v1/pods', 'list', '', '', 'pods', '', ''],
  ['GET', '/api/v1/pods?watch=true', 'watch', '', '', 'pods', '', ''],
  ['GET', '/api/v1/pods?watch=1', 'watch', '', '', 'pods', '', ''],
  ['GET', '/api/v1/pods?watch=false', 'list', '', '', 'pods', '', ''],
  // The API server's query decoding: anything but 0 and false (any case) is true.
  ['GET', '/api/v1/pods?watch=yes', 'watch', '', '', 'pods', '', ''],
  ['GET', '/api/v1/pods?watch=on', 'watch', '', '', 'pods', '', ''],
  ['GET', '/api/v1/pods?watch=', 'watch', '', '', 'pods', '', ''],
  ['GET', '/api/v1/pods?watch', 'watch', '', '', 'pods', '', ''],
  ['GET', '/api/v1/pods?watch=%31', 'watch', '', '', 'pods', '', ''],
  ['GET', '/api/v1/pods?watch=y&watch=false', 'watch', '', '', 'pods', '', ''],
  ['GET', '/api/v1/pods?watch=FALSE', 'list', '', '', 'pods', '', ''],
  ['GET', '/api/v1/pods?watch=0&watch=1', 'list', '', '', 'pods', '', ''],
  ['GET', '/api/v1/pods?Watch=1', 'list', '', '', 'pods', '', ''],
  ['GET', '/api/v1/watch/pods', 'watch', '', '', 'pods', '', ''],
  ['GET', '/api/v1/namespaces/other/pods', 'list', '', 'other', 'pods', '', ''],
  ['GET', '/api/v1/namespaces/other/pods/foo', 'get', '', 'other', 'pods', '', 'foo'],
  ['HEAD', '/api/v1/namespaces/other/pods/foo', 'get', '', 'other', 'pods', '', 'foo'],
  ['GET', '/api/v1/namespaces/other/pods/foo/log', 'get', '', 'other', 'pods', 'log', 'foo'],
  ['GET', '/api/v1/watch/namespaces/other/pods', 'watch', '', 'other', 'pods', '', ''],
  ['GET', '/api/v1/watch/namespaces/other/pods/foo', 'watch', '', 'other', 'pods', '', 'foo'],
  ['GET', '/api/v1/namespaces/other/pods?watch=true&fieldSelector=metadata.name%3Dfoo', 'watch', '', 'other', 'pods', '', 'foo'],
  ['GET', '/api/v1/namespaces/other/pods?fieldSelector=metadata.name%3D%3Dfoo', 'list', '', 'other', 'pods', '', 'foo'],
  ['GET', '/api/v1/namespaces/other/pods?fieldSelector=status.phase%3DRunning%2Cmetadata.name%3Dfoo', 'list', '', 'other', 'pods', '', 'foo'],
  ['GET', '/api/v1/namespaces/other/pods?fieldSelector=metadata.name%21%3Dfoo', 'list', '', 'other', 'pods', '', ''],
  ['GET', '/api/v1/namespaces/other/pods?fieldSelector=metadata.name%3Da%2Fb', 'list', '', 'other', 'pods', '', ''],
  ['POST', '/api/v1/namespaces/other/pods', 'create', '', 'other', 'pods', '', ''],
  ['PUT', '/api/v1/namespaces/other/pods/foo', 'update', '', 'other', 'pods', '', 'foo'],
  ['PATCH', '/api/v1/namespaces/other/pods/foo', 'patch', '', 'other', 'pods', '', 'foo'],
  ['DELETE', '/api/v1/namespaces/other/pods/foo', 'delete', '', 'other', 'pods', '', 'foo'],
  ['DELETE', '/api/v1/namespaces/other/pods', 'deletecollection', '', 'other', 'pods', '', ''],
  ['POST', '/api/v1/namespaces/other/pods/foo/exec?command=ls', 'create', '', 'other', 'pods', 'exec', 'foo'],
  ['GET', '/api/v1/namespaces/other/pods/foo/exec?command=ls', 'get', '', 'other', 'pods', 'exec', 'foo'],
  ['POST', '/api/v1/namespaces/other/pods/foo/portforward', 'create', '', 'other', 'pods', 'portforward', 'foo'],
  ['POST', '/api/v1/namespaces/other/pods/foo/attach', 'create', '', 'other', 'pods', 'attach', 'foo'],
  ['PUT', '/api/v1/namespaces/other/pods/foo/status', 'update', '', 'other', 'pods', 'status', 'foo'],
  // The namespace object itself: its name is also its namespace.
  ['GET', '/api/v1/namespaces', 'list', '', '', 'namespaces', '', ''],
  ['GET', '/api/v1/namespaces/other', 'get', '', 'other', 'namespaces', '', 'other'],
  ['DELETE', '/api/v1/namespaces/other', 'delete', '', 'other', 'namespaces', '', 'other'],
  ['PUT', '/api/v1/namespaces/other/finalize', 'update', '', 'other', 'namespaces', 'finalize', 'other'],
  ['GET', '/api/v1/namespaces/other/status', 'get', '', 'other', 'namespaces', 'status', 'other'],
  ['GET', '/api/v1/nodes/n1', 'get', '', '', 'nodes', '', 'n1'],
  ['GET', '/apis/apps/v1/deployments', 'list', 'apps', '', 'deployments', '', ''],
  ['GET', '/apis/apps/v1/namespaces/other/deployments/web', 'get', 'apps', 'other', 'deployments', '', 'web'],
  ['PATCH', '/apis/apps/v1/namespaces/other/deployments/web/scale', 'patch', 'apps', 'other', 'deployments', 'scale', 'web'],
  ['GET', '/apis/apps/v1/watch/namespaces/other/deployments', 'watch', 'apps', 'other', 'deployments', '', ''],
  ['DELETE', '/apis/rbac.authorization.k8s.io/v1/clusterroles', 'deletecollection', 'rbac.authorization.k8s.io', '', 'clusterroles', '', ''],
  ['GET', '/api/v1/proxy/namespaces/other/pods/foo/a/b', 'proxy', '', 'other', 'pods', '', 'foo'],
  ['OPTIONS', '/api/v1/pods', '', '', '', 'pods', '', ''],
  ['GET', '/api/v1/pods/', 'list', '', '', 'pods', '', ''],
];

for (const [method, target, verb, apiGroup, namespace, resource, subresource, name] of RESOURCE_CASES) {
  classify(`${method} ${target}`, () => {
    const info = classifyRequest(method, target);
    assert.is(info.kind, 'resource');
    if (info.kind !== 'resource') return;
    assert.equal({ verb: info.verb, apiGroup: info.apiGroup, namespace: info.namespace, resource: info.resource, subresource: info.subresource, name: info.name },
      { verb, apiGroup, namespace, resource, subresource, name });
  });
}

const NON_RESOURCE: [string, string, string][] = [
  ['GET', '/', 'get'],
  ['GET', '/version', 'get'],
  ['GET', '/api', 'get'],
  ['GET', '/api/v1', 'get'],
  ['GET', '/apis', 'get'],
  ['GET', '/apis/apps', 'get'],
  ['GET', '/apis/apps/v1', 'get'],
  ['GET', '/openapi/v3/apis/apps/v1', 'get'],
  ['GET', '/healthz/etcd', 'get'],
  ['POST', '/foo/bar/baz', 'post'],
];

for (const [method, target, verb] of NON_RESOURCE) {
  classify(`non-resource ${method} ${target}`, () => {
    const info = classifyRequest(method, target);
    assert.equal(info, { kind: 'non-resource', verb, path: new URL(target, 'http://x').pathname });
  });
}

classify('the path is decoded and dot segments resolved before it is split, as the API server would see it', () => {
  const enc = classifyRequest('DELETE', '/api/v1/namespaces%2Fkube-system%2Fsecrets%2Fx');
  assert.equal(enc.kind === 'resource' && [enc.verb, enc.namespace, enc.resource, enc.name], ['delete', 'kube-system', 'secrets', 'x']);
  const dots = classifyRequest('GET', '/apis/../api/v1/namespaces/kube-system/secrets/x');
  assert.equal(dots.kind === 'resource' && [dots.verb, dots.namespace, dots.resource, dots.name], ['get', 'kube-system', 'secrets', 'x']);
  assert.is(normalizedTarget('/apis/../api/v1/x/./y?watch=1'), '/api/v1/x/y?watch=1');
  assert.is(classifyRequest('GET', '/api/v1/pods/%E0%A4%A').kind, 'invalid');
});

classify('one parsed target serves both: the same answers as from the text', () => {
  const targets = [...RESOURCE_CASES.map((c) => c[1]), ...NON_RESOURCE.map((c) => c[1]), '/apis/../api/v1/x/./y?watch=1', '/api/v1/pods/%E0%A4%A', '/api/v1/configmaps?fieldSelector=metadata.name%3Dx&watch=true'];
  for (const target of targets) {
    const url = parseTarget(target);
    assert.equal(classifyRequest('GET', url), classifyRequest('GET', target), target);
    assert.is(normalizedTarget(url), normalizedTarget(target), target);
  }
});

classify('a query parameter Go\'s parser drops (a `;`, a bad percent escape) is named; everything it reads is not', () => {
  const dropped = (target: string) => droppedParameter(parseTarget(target));
  assert.match(dropped('/api/v1/secrets?fieldSelector=metadata.name%3Dx,a%3D;') ?? '', 'contains ";"');
  assert.match(dropped('/api/v1/secrets?limit=1&watch=0;') ?? '', '"watch=0;"');
  assert.match(dropped('/api/v1/secrets?fieldSelector=metadata.name%3Dx,a%3D%zz') ?? '', 'not valid percent-encoding');
  assert.match(dropped('/api/v1/secrets?x=%4') ?? '', 'not valid percent-encoding');
  assert.match(dropped('/api/v1/secrets?wat%ch=1') ?? '', 'not valid percent-encoding');
  // Agate and the API server read these alike (and `;` in the path is part of a segment to both).
  for (const ok of ['/api/v1/secrets', '/api/v1/secrets?', '/api/v1/secrets?labelSelector=a%3Db&labelSelector=c&watch', '/api/v1/secrets?x=%2F%2f+y', '/api/v1/namespaces/a;b/secrets?limit=5']) {
    assert.is(dropped(ok), undefined, ok);
  }
  // The classification still reads the name: the refusal comes from the engine, recorded.
  const info = classifyRequest('GET', '/api/v1/namespaces/a/secrets?fieldSelector=metadata.name%3Dx,a%3D;');
  assert.is(info.kind === 'resource' ? info.name : '', 'x');
});

classify('a special verb with nothing after it is invalid', () => {
  assert.is(classifyRequest('GET', '/api/v1/watch').kind, 'invalid');
  assert.is(classifyRequest('GET', '/api/v1/watch/').kind, 'invalid');
  assert.is(classifyRequest('GET', '/apis/apps/v1/watch').kind, 'invalid');
});

classify.run();

const attributes = suite('requestAttributes');

attributes('carries what the policy engine matches on', () => {
  const info = classifyRequest('DELETE', '/apis/apps/v1/namespaces/prod/deployments/web');
  if (info.kind === 'invalid') throw new Error('unexpected');
  assert.equal(requestAttributes(info), { verb: 'delete', resource: 'deployments', api_group: 'apps', api_version: 'v1', namespace: 'prod', name: 'web' });
});

attributes('non-resource requests say so', () => {
  const info = classifyRequest('GET', '/version?timeout=32s');
  if (info.kind === 'invalid') throw new Error('unexpected');
  assert.equal(requestAttributes(info), { verb: 'get', path: '/version', non_resource: 'true' });
});

attributes('the text keeps method, path and query', () => {
  assert.is(requestText('delete', '/api/v1/namespaces/x?gracePeriodSeconds=0'), 'DELETE /api/v1/namespaces/x?gracePeriodSeconds=0');
});

attributes('the recorded text is masked where the API server decodes it too: query values, the path', () => {
  const masker = new Masker('default', BUILTIN_MASK_SET);
  const masked = (t: string) => maskedRequestText(t, (x) => masker.maskText(x));
  assert.is(masked('GET /p/exec?command=sh&command=export+KEY%3DAKIAQWERTYUIOPASDFGH'), 'GET /p/exec?command=sh&command=export%20KEY%3D[masked:cloud_access_key]');
  assert.is(masked('GET /s/proxy/x%3Ftoken%3DAKIAQWERTYUIOPASDFGH'), 'GET /s/proxy/x%3Ftoken%3D[masked:cloud_access_key]');
  // As sent where nothing is found, a secret spanning a pair, an escape the API server would not read.
  assert.is(masked('GET /api/v1/pods?watch=1&labelSelector=a%3Db'), 'GET /api/v1/pods?watch=1&labelSelector=a%3Db');
  assert.is(masked('GET /x?password=hunter2&a=b'), 'GET /x?password=[masked:connection_string]&a=b');
  assert.is(masked('GET /x?bad=%ZZ'), 'GET /x?bad=%ZZ');
});

attributes.run();

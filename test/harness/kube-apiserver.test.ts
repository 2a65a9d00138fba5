import { suite } from './suite.js';
import * as assert from 'uvu/assert';
import { request } from 'node:https';
import { readFile } from 'node:fs/promises';
import { startKubeApiServer, type KubeApiServer } from './kube-apiserver.js';

const test = suite<{ kube?: KubeApiServer }>('harness/kube-apiserver');

test.before(async (ctx) => {
  ctx.kube = await startKubeApiServer();
});

test.after(async (ctx) => {
  await ctx.kube?.stop();
});

test('kubectl with the admin kubeconfig lists the default namespace', async ({ kube }) => {
  const r = await kube!.kubectl(['get', 'ns', '-o', 'name']);
  assert.is(r.code, 0, r.stderr);
  assert.ok(r.stdout.split('\n').includes('namespace/default'), r.stdout);
  const v = await kube!.kubectl(['version', '-o', 'json']);
  assert.is(v.code, 0, v.stderr);
  assert.is(JSON.parse(v.stdout).serverVersion.gitVersion.replace(/^v(\d+\.\d+)\..*/, '$1'), kube!.version.replace(/^v(\d+\.\d+)\..*/, '$1'));
});

test('a namespace can be created, then deleted (it stays Terminating: no namespace controller runs)', async ({ kube }) => {
  const created = await kube!.kubectl(['create', 'namespace', 'agate-harness']);
  assert.is(created.code, 0, created.stderr);
  const cm = await kube!.kubectl(['-n', 'agate-harness', 'create', 'configmap', 'c', '--from-literal=k=v']);
  assert.is(cm.code, 0, cm.stderr);
  const got = await kube!.kubectl(['-n', 'agate-harness', 'get', 'configmap', 'c', '-o', 'jsonpath={.data.k}']);
  assert.is(got.stdout, 'v', got.stderr);
  const deleted = await kube!.kubectl(['delete', 'namespace', 'agate-harness', '--wait=false']);
  assert.is(deleted.code, 0, deleted.stderr);
  const phase = await kube!.kubectl(['get', 'namespace', 'agate-harness', '-o', 'jsonpath={.status.phase}']);
  assert.is(phase.stdout, 'Terminating', phase.stderr);
  // A terminating namespace refuses new objects: the deletion really took effect.
  const again = await kube!.kubectl(['-n', 'agate-harness', 'create', 'configmap', 'd', '--from-literal=k=v']);
  assert.is.not(again.code, 0);
  assert.match(again.stderr, /being terminated/);
});

test('bearer tokens: the admin token may list namespaces, the unprivileged one gets 403', async ({ kube }) => {
  const admin = await kube!.kubectl(['get', 'ns', 'default', '-o', 'name'], { kubeconfig: await kube!.writeKubeconfig({ token: kube!.adminToken }) });
  assert.is(admin.code, 0, admin.stderr);
  const nobody = await kube!.kubectl(['get', 'ns'], { kubeconfig: await kube!.writeKubeconfig({ token: kube!.userToken }) });
  assert.is.not(nobody.code, 0);
  assert.match(nobody.stderr, /forbidden/i);
  assert.match(nobody.stderr, /agate-nobody/);
});

test('a request without credentials is refused with 401', async ({ kube }) => {
  const { status } = await get(kube!.url + '/api/v1/namespaces', { ca: kube!.caPem });
  assert.is(status, 401);
});

test('the other CA does not verify the server, and its client certificate is refused', async ({ kube }) => {
  const mismatch = await get(kube!.url + '/readyz', { ca: kube!.other.caPem }).then(() => 'connected', (e: NodeJS.ErrnoException) => e.code);
  assert.is(mismatch, 'UNABLE_TO_VERIFY_LEAF_SIGNATURE');
  const foreign = await get(kube!.url + '/api/v1/namespaces', { ca: kube!.caPem, cert: await readFile(kube!.other.certFile), key: await readFile(kube!.other.keyFile) });
  assert.is(foreign.status, 401);
});

function get(url: string, tls: { ca: string; cert?: Buffer; key?: Buffer }): Promise<{ status: number; body: string }> {
  return new Promise((resolve, reject) => {
    const req = request(url, { ...tls, timeout: 10_000 }, (res) => {
      let body = '';
      res.setEncoding('utf8').on('data', (d: string) => (body += d));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, body }));
    });
    req.on('timeout', () => req.destroy(new Error('timed out')));
    req.on('error', reject);
    req.end();
  });
}

test.run();

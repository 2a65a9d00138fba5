import { suite } from '../../../../test/harness/suite.js';
import * as assert from 'uvu/assert';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { KubeUpstream } from './upstream.js';

const load = suite<{ dir: string }>('KubeUpstream.load');
load.before((ctx) => void (ctx.dir = mkdtempSync(join(tmpdir(), 'agate-kubeconfig-'))));
load.after((ctx) => rmSync(ctx.dir, { recursive: true, force: true }));

const CA = Buffer.from('-----BEGIN CERTIFICATE-----\nnot really\n-----END CERTIFICATE-----\n');
function kubeconfig(dir: string, cluster: string, user: string, extra = ''): string {
  const path = join(dir, `k${Math.random().toString(36).slice(2)}.yaml`);
  writeFileSync(path, `apiVersion: v1
kind: Config
clusters:
- name: c
  cluster: ${cluster}
users:
- name: u
  user: ${user}
contexts:
- name: main
  context: { cluster: c, user: u }
- name: ghost
  context: { cluster: nowhere, user: u }
current-context: main
${extra}`);
  return path;
}

load('a token user: the server, the CA from a relative file, the bearer header', async ({ dir }) => {
  writeFileSync(join(dir, 'ca.crt'), CA);
  const up = await KubeUpstream.load(kubeconfig(dir, '{ server: "https://10.1.2.3:6443", certificate-authority: ca.crt }', '{ token: abc }'), undefined, 'targets[0].upstream');
  try {
    assert.is(up.server.host, '10.1.2.3:6443');
    assert.equal(up.tls.ca, CA);
    assert.equal(await up.headers(), { Authorization: 'Bearer abc' });
  } finally {
    up.close();
  }
});

load('an exec plugin runs at load and its token is used', async ({ dir }) => {
  const user = `{ exec: { apiVersion: client.authentication.k8s.io/v1, command: sh, args: ["-c", "printf '{\\"apiVersion\\":\\"client.authentication.k8s.io/v1\\",\\"kind\\":\\"ExecCredential\\",\\"status\\":{\\"token\\":\\"from-plugin\\"}}'"] } }`;
  const up = await KubeUpstream.load(kubeconfig(dir, `{ server: "https://h:6443", certificate-authority-data: ${CA.toString('base64')} }`, user), undefined, 'x');
  try {
    assert.equal(await up.headers(), { Authorization: 'Bearer from-plugin' });
  } finally {
    up.close();
  }
});

async function code(p: Promise<unknown>): Promise<string> {
  try {
    (await p as KubeUpstream).close();
    return 'loaded';
  } catch (err) {
    return `${(err as { code: string }).code}: ${(err as Error).message}`;
  }
}

load('refuses what Agate cannot use safely, naming where', async ({ dir }) => {
  const ok = '{ server: "https://h:6443" }';
  assert.match(await code(KubeUpstream.load(join(dir, 'missing.yaml'), undefined, 't')), /^CONFIG_INVALID: t\.kubeconfig: cannot load/);
  assert.match(await code(KubeUpstream.load(kubeconfig(dir, '{ server: "https://h:6443", insecure-skip-tls-verify: true }', '{ token: a }'), undefined, 't')), /insecure-skip-tls-verify/);
  assert.match(await code(KubeUpstream.load(kubeconfig(dir, '{ server: "http://h:8080" }', '{ token: a }'), undefined, 't')), /must be https/);
  assert.match(await code(KubeUpstream.load(kubeconfig(dir, ok, '{ token: a }'), 'nope', 't')), /t\.context: no context "nope"/);
  assert.match(await code(KubeUpstream.load(kubeconfig(dir, ok, '{ token: a }'), 'ghost', 't')), /names cluster "nowhere"/);
  assert.match(await code(KubeUpstream.load(kubeconfig(dir, ok, '{ username: "" }'), undefined, 't')), /no credential Agate can use/);
  assert.match(await code(KubeUpstream.load(kubeconfig(dir, ok, '{ auth-provider: { name: gcp } }'), undefined, 't')), /auth-provider "gcp"/);
  assert.match(await code(KubeUpstream.load(kubeconfig(dir, ok, '{ exec: { apiVersion: client.authentication.k8s.io/v1, command: "false" } }'), undefined, 't')), /exec credential plugin/);
  assert.is(await code(KubeUpstream.load(kubeconfig(dir, ok, '{ username: a, password: b }'), undefined, 't')), 'loaded');
});

load.run();

import { suite } from '../../test/harness/suite.js';
import * as assert from 'uvu/assert';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { execFileSync } from 'node:child_process';
import { parse } from 'yaml';
import { parseConfig } from '../../core/src/config.js';
import { kubeconfigFor } from './kubeconfig.js';

const kc = suite<{ dir: string }>('kubeconfigFor');
kc.before((ctx) => {
  ctx.dir = mkdtempSync(join(tmpdir(), 'agate-kubeconfig-cli-'));
  writeFileSync(join(ctx.dir, 'serving.crt'), 'SERVING CERT');
  writeFileSync(join(ctx.dir, 'ca.crt'), 'ISSUING CA');
});
kc.after((ctx) => rmSync(ctx.dir, { recursive: true, force: true }));

const config = (dir: string, tls: string) => parseConfig(`identity: { dev_issuer: { enabled: true } }
targets:
  - { name: prod, protocol: kubernetes, listen: 10.0.0.5:6443, tls: ${tls}, upstream: { kubeconfig: ./admin.kubeconfig } }
  - { name: db, protocol: postgres, upstream: { host: h, database: d, user: u, password: { value: p } } }
`, join(dir, 'agate.yaml'));

kc('points at the listener, trusts the CA, and reads the token from $AGATE_TOKEN through sh', ({ dir }) => {
  const doc = parse(kubeconfigFor(config(dir, '{ cert: serving.crt, key: k.pem, ca: ca.crt }'), { target: 'prod' }));
  assert.is(doc['current-context'], 'agate-prod');
  assert.is(doc.clusters[0].cluster.server, 'https://10.0.0.5:6443');
  assert.is(Buffer.from(doc.clusters[0].cluster['certificate-authority-data'], 'base64').toString(), 'ISSUING CA');
  const exec = doc.users[0].user.exec;
  const printed = execFileSync(exec.command, exec.args, { env: { ...process.env, AGATE_TOKEN: 'tok.en.value' } }).toString();
  assert.equal(JSON.parse(printed), { apiVersion: 'client.authentication.k8s.io/v1', kind: 'ExecCredential', status: { token: 'tok.en.value' } });
  assert.throws(() => execFileSync(exec.command, exec.args, { env: { PATH: process.env.PATH }, stdio: 'pipe' }), /set AGATE_TOKEN/);
});

kc('--server, --token and --token-env; the certificate is the CA when none is given', ({ dir }) => {
  const cfg = config(dir, '{ cert: serving.crt, key: k.pem }');
  const doc = parse(kubeconfigFor(cfg, { target: 'prod', server: 'https://agate.example:443', token: 'literal' }));
  assert.is(doc.clusters[0].cluster.server, 'https://agate.example:443');
  assert.is(Buffer.from(doc.clusters[0].cluster['certificate-authority-data'], 'base64').toString(), 'SERVING CERT');
  assert.equal(doc.users[0].user, { token: 'literal' });
  assert.match(parse(kubeconfigFor(cfg, { target: 'prod', tokenEnv: 'CI_JOB_JWT' })).users[0].user.exec.args[1], '$CI_JOB_JWT');
  assert.throws(() => kubeconfigFor(cfg, { target: 'prod', tokenEnv: 'X; rm -rf /' }), /environment variable name/);
});

kc('an unknown or non-Kubernetes target is named', ({ dir }) => {
  assert.throws(() => kubeconfigFor(config(dir, '{ cert: serving.crt, key: k.pem }'), { target: 'db' }), /no Kubernetes target named "db" \(Kubernetes targets: prod\)/);
});

kc('config: kubernetes targets resolve their paths and check mask_client and mask_fields', ({ dir }) => {
  const cfg = config(dir, '{ cert: serving.crt, key: k.pem }');
  const t = cfg.targets[0]!;
  assert.is(t.protocol, 'kubernetes');
  if (t.protocol !== 'kubernetes') return;
  assert.is(t.upstream.kubeconfig, join(dir, 'admin.kubeconfig'));
  assert.is(t.tls.cert, join(dir, 'serving.crt'));
  assert.equal([t.allow_discovery, t.mask_client, t.mask_fields], [true, false, []]);
  const bad = (extra: string) => () => parseConfig(`identity: { dev_issuer: { enabled: true } }
targets:
  - { name: prod, protocol: kubernetes, listen: 10.0.0.5:6443, tls: { cert: a, key: b }, upstream: { kubeconfig: k }, ${extra} }
`, 'agate.yaml');
  assert.throws(bad('mask_client: nosuchset'), /targets\[0\]\.mask_client: no mask set named "nosuchset"/);
  assert.throws(bad('mask_fields: ["data.x"]'), /mask_fields\[0\]: expected KIND:dotted\.path/);
  assert.throws(() => parseConfig(`identity: { dev_issuer: { enabled: true } }
targets: [{ name: p, protocol: kubernetes, listen: "6443", tls: { cert: a, key: b }, upstream: { kubeconfig: k } }]
`, 'agate.yaml'), /targets\[0\]\.listen: expected HOST:PORT/);
});

kc.run();

// The Helm chart (deploy/helm/agate): `helm lint`, `helm template`, the rendered objects checked
// for what the chart promises (non-root, read-only root, probes on the ops endpoints, resources,
// HPA, PDB, NetworkPolicy, credentials from Secrets), the rendered config accepted by
// `agate check`, and every object accepted by a real kube-apiserver (`kubectl apply
// --dry-run=server`), which validates them against the API's schemas and admission.
import { suite } from '../harness/suite.js';
import * as assert from 'uvu/assert';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseAllDocuments } from 'yaml';
import { helm, type Helm } from '../harness/helm.js';
import { startKubeApiServer, type KubeApiServer } from '../harness/kube-apiserver.js';
import { REPO_ROOT, runCli } from '../e2e/agate-process.js';

const CHART = join(REPO_ROOT, 'deploy', 'helm', 'agate');

const VALUES = `
kafka:
  brokers: [kafka-0.kafka:9092, kafka-1.kafka:9092, kafka-2.kafka:9092]
  schemaRegistryUrl: http://registry:8080/apis/ccompat/v7
clickhouse:
  url: http://clickhouse:8123
  passwordSecret: agate-clickhouse
targetCredentials:
  values: { appdb: s3cret-appdb }
proxy:
  ssh: { enabled: true, hostKeySecret: agate-ssh-host-key }
config:
  identity:
    issuers:
      - issuer: https://token.actions.githubusercontent.com
        audience: agate
  targets:
    - name: appdb
      protocol: postgres
      upstream: { host: appdb.db.svc, database: app, user: agate, password: { file: /etc/agate/targets/appdb } }
  policy:
    default: deny
    rules:
      - { id: reads, action: allow, match: { sql: { statements: [SelectStmt] } } }
networkPolicy:
  clients: [{ namespaceSelector: { matchLabels: { agate.io/agents: "true" } } }]
  egress: [{ to: [{ namespaceSelector: {} }] }]
`;

type Obj = { kind: string; apiVersion: string; metadata: { name: string }; spec?: any; data?: Record<string, string>; stringData?: Record<string, string> };
interface Ctx { helm: Helm; dir: string; values: string; rendered: string; objects: Obj[]; kube?: KubeApiServer }

const chart = suite<Ctx>('helm chart deploy/helm/agate');

chart.before(async (ctx) => {
  ctx.helm = await helm();
  ctx.dir = mkdtempSync(join(tmpdir(), 'agate-chart-'));
  ctx.values = join(ctx.dir, 'values.yaml');
  writeFileSync(ctx.values, VALUES);
});

chart.after(async (ctx) => {
  await ctx.kube?.stop();
  ctx.helm?.close();
  if (ctx.dir) rmSync(ctx.dir, { recursive: true, force: true });
});

chart('helm lint --strict passes', async (ctx) => {
  const r = await ctx.helm.run(['lint', '--strict', CHART, '-f', ctx.values]);
  assert.is(r.code, 0, r.stdout + r.stderr);
  assert.match(r.stdout, /1 chart\(s\) linted, 0 chart\(s\) failed/);
});

chart('helm template renders every object the chart promises', async (ctx) => {
  const r = await ctx.helm.run(['template', 'audit', CHART, '-f', ctx.values, '--namespace', 'agate-test']);
  assert.is(r.code, 0, r.stderr);
  ctx.rendered = r.stdout;
  ctx.objects = parseAllDocuments(r.stdout).map((d) => d.toJS() as Obj).filter((o) => o !== null);
  const names = ctx.objects.map((o) => `${o.kind}/${o.metadata.name}`).sort();
  for (const want of ['Deployment/audit-agate-proxy', 'Deployment/audit-agate-policy', 'Deployment/audit-agate-ledger', 'Deployment/audit-agate-query',
    'HorizontalPodAutoscaler/audit-agate-proxy', 'PodDisruptionBudget/audit-agate-proxy', 'ConfigMap/audit-agate-config', 'Secret/audit-agate-targets',
    'Service/audit-agate-proxy', 'Service/audit-agate-query', 'NetworkPolicy/audit-agate-proxy', 'NetworkPolicy/audit-agate-query']) {
    assert.ok(names.includes(want), `${want} in ${names.join(', ')}`);
  }
});

chart('every pod: non-root, read-only root, no privilege escalation, probes on the ops endpoints, resources', (ctx) => {
  const deployments = ctx.objects.filter((o) => o.kind === 'Deployment');
  assert.is(deployments.length, 4);
  for (const d of deployments) {
    const pod = d.spec.template.spec;
    const what = d.metadata.name;
    assert.is(pod.securityContext.runAsNonRoot, true, what);
    assert.ok(pod.securityContext.runAsUser > 0, what);
    assert.is(pod.automountServiceAccountToken, false, what);
    for (const c of [...pod.containers, ...(pod.initContainers ?? [])]) {
      assert.is(c.securityContext.readOnlyRootFilesystem, true, `${what}/${c.name}`);
      assert.is(c.securityContext.allowPrivilegeEscalation, false, `${what}/${c.name}`);
      assert.equal(c.securityContext.capabilities.drop, ['ALL'], `${what}/${c.name}`);
      assert.ok(c.resources.requests.cpu && c.resources.requests.memory && c.resources.limits.memory, `${what}/${c.name} resources`);
    }
    const main = pod.containers[0];
    assert.equal(main.livenessProbe.httpGet, { path: '/healthz', port: 'ops' }, what);
    assert.equal(main.readinessProbe.httpGet, { path: '/readyz', port: 'ops' }, what);
    assert.ok(main.ports.some((p: { name: string; containerPort: number }) => p.name === 'ops' && p.containerPort === 9464), what);
    assert.is(main.args[0], what.replace('audit-agate-', ''), `${what} runs its own role`);
  }
  const proxy = deployments.find((d) => d.metadata.name === 'audit-agate-proxy')!;
  assert.is(proxy.spec.replicas, undefined, 'the HPA owns the proxy replica count');
  const secret = ctx.objects.find((o) => o.kind === 'Secret')!;
  assert.equal(secret.stringData, { appdb: 's3cret-appdb' });
  const config = ctx.objects.find((o) => o.kind === 'ConfigMap')!.data!['agate.yaml']!;
  assert.not.match(config, /s3cret-appdb/, 'the credential is not in the ConfigMap');
});

chart('agate check accepts the config the chart renders', async (ctx) => {
  const config = ctx.objects.find((o) => o.kind === 'ConfigMap')!.data!['agate.yaml']!;
  const path = join(ctx.dir, 'agate.yaml');
  writeFileSync(path, config);
  // The files it names (keys, secrets) are mounted in the pods, not here: the text alone.
  const r = await runCli(['check', '--no-files', '--config', path]);
  assert.is(r.code, 0, r.stderr);
  assert.match(config, /listen: 0\.0\.0\.0:9464/);
  assert.match(config, /kind: kafka/);
  assert.match(config, /kind: clickhouse/);
});

chart('missing Kafka brokers fail the render, naming the value', async (ctx) => {
  const r = await ctx.helm.run(['template', 'audit', CHART, '--set', 'clickhouse.url=http://ch:8123']);
  assert.is.not(r.code, 0);
  assert.match(r.stderr, /kafka\.brokers/);
});

chart('kubectl apply --dry-run=server accepts every rendered object', async (ctx) => {
  ctx.kube = await startKubeApiServer();
  const ns = await ctx.kube.kubectl(['create', 'namespace', 'agate-test']);
  assert.is(ns.code, 0, ns.stderr);
  const r = await ctx.kube.kubectl(['apply', '--dry-run=server', '-n', 'agate-test', '-f', '-'], { input: ctx.rendered, timeoutMs: 120_000 });
  assert.is(r.code, 0, r.stderr);
  const applied = r.stdout.trim().split('\n');
  assert.is(applied.length, ctx.objects.length, r.stdout);
  for (const line of applied) assert.match(line, /\(server dry run\)$/);
});

chart('the server dry run is a real check: an invalid object is refused', async (ctx) => {
  const broken = ctx.rendered.replace('minAvailable: 1', 'minAvailable: -1');
  assert.is.not(broken, ctx.rendered);
  const r = await ctx.kube!.kubectl(['apply', '--dry-run=server', '-n', 'agate-test', '-f', '-'], { input: broken, timeoutMs: 120_000 });
  assert.is.not(r.code, 0);
  assert.match(r.stderr, /minAvailable/);
});

chart.run();

/**
 * Kubernetes proxy overhead, side by side in one run: `get` (one ConfigMap) and `list` (50
 * ConfigMaps) against a real kube-apiserver, directly (admin client certificate) and through
 * Agate (embedded default: OIDC token, fsynced write-ahead audit, a policy verdict per request,
 * response recorded, ledger). Sequential requests on one keep-alive connection each way, so the
 * figures are per-request latency, not throughput. Also a Secret `get` masked for the client, and
 * a discovery request, which the built-in discovery rule allows without a policy round trip.
 */
import { readFileSync, writeFileSync } from 'node:fs';
import { Agent, request } from 'node:https';
import { join } from 'node:path';
import { startKubeApiServer } from '../test/harness/kube-apiserver.js';
import { startOidcIssuer } from '../test/harness/oidc-issuer.js';
import { findFreePort } from '../test/harness/postgres.js';
import { startAgateProcess } from '../test/e2e/agate-process.js';

interface Figures {
  p50: number;
  p99: number;
  rps: number;
}

export async function run(args: string[]): Promise<void> {
  const n = Number(args[0] ?? 1000);
  const kube = await startKubeApiServer();
  const issuer = await startOidcIssuer({ audience: 'agate' });
  const port = await findFreePort();
  const q = (s: string) => JSON.stringify(s);
  const agate = await startAgateProcess({
    configYaml: (p) => `data_dir: ${q(p.dataDir)}
identity: { issuers: [{ issuer: ${q(issuer.issuer)}, audience: agate }] }
proxy: { postgres: { listen: ${q(p.pgListen)} } }
targets:
  - name: cluster
    protocol: kubernetes
    listen: 127.0.0.1:${port}
    tls: { cert: ${q(kube.other.certFile)}, key: ${q(kube.other.keyFile)} }
    upstream: { kubeconfig: ${q(kube.adminKubeconfigPath)} }
policy:
  default: allow
  rules:
    - { id: no-namespace-delete, action: deny, match: { kubernetes: { verbs: [delete], resources: [namespaces] } } }
    - { id: secrets-masked, action: allow, mask_client: true, match: { kubernetes: { resources: [secrets] } } }
query: { listen: ${q(p.apiListen)} }
`,
  });
  try {
    const manifests = Array.from({ length: 50 }, (_, i) => `apiVersion: v1\nkind: ConfigMap\nmetadata: { name: bench-${i}, namespace: default }\ndata: { value: "${'x'.repeat(200)}" }\n---\n`).join('');
    const file = join(agate.dir, 'bench.yaml');
    writeFileSync(file, manifests);
    const made = await kube.kubectl(['apply', '-f', file]);
    if (made.code !== 0) throw new Error(made.stderr);
    const secret = await kube.kubectl(['create', 'secret', 'generic', 'bench-secret', '--from-literal=password=bench']);
    if (secret.code !== 0) throw new Error(secret.stderr);

    const direct = new Agent({ keepAlive: true, maxSockets: 1, ca: kube.caPem, cert: readFileSync(kube.clientCertFile), key: readFileSync(kube.clientKeyFile) });
    const viaAgate = new Agent({ keepAlive: true, maxSockets: 1, ca: readFileSync(kube.other.caFile) });
    const token = await issuer.mint(issuer.githubActionsClaims(), { expiresIn: 3600 });
    const directUrl = new URL(kube.url);
    const paths = {
      get: '/api/v1/namespaces/default/configmaps/bench-0',
      list: '/api/v1/namespaces/default/configmaps?labelSelector=',
      'get Secret': '/api/v1/namespaces/default/secrets/bench-secret',
      // Allowed by the built-in discovery rule: recorded, no policy round trip.
      'discovery GET /api': '/api',
    };
    console.log(`\nKubernetes API latency, ${n} sequential requests per row after 50 warm-up (${new Date().toISOString()}, kube-apiserver ${kube.version})\n`);
    console.log('| request | path | p50 ms | p99 ms | req/s |');
    console.log('|---|---|---:|---:|---:|');
    const summary: string[] = [];
    for (const [name, path] of Object.entries(paths)) {
      const d = await measure(n, () => send(directUrl.hostname, Number(directUrl.port), path, direct, {}));
      console.log(`| ${name} | direct | ${d.p50.toFixed(3)} | ${d.p99.toFixed(3)} | ${d.rps.toFixed(0)} |`);
      const a = await measure(n, () => send('127.0.0.1', port, path, viaAgate, { authorization: `Bearer ${token}` }));
      console.log(`| ${name}${name === 'get Secret' ? ' (masked)' : ''} | Agate | ${a.p50.toFixed(3)} | ${a.p99.toFixed(3)} | ${a.rps.toFixed(0)} |`);
      summary.push(`| ${name} | ${(a.p50 - d.p50).toFixed(3)} | ${(a.p99 - d.p99).toFixed(3)} |`);
    }
    console.log('\n| request | added p50 ms | added p99 ms |');
    console.log('|---|---:|---:|');
    for (const s of summary) console.log(s);
    direct.destroy();
    viaAgate.destroy();
  } finally {
    await agate.dispose();
    await issuer.close();
    await kube.stop();
  }
}

async function measure(n: number, once: () => Promise<void>): Promise<Figures> {
  for (let i = 0; i < 50; i++) await once();
  const times: number[] = [];
  const start = performance.now();
  for (let i = 0; i < n; i++) {
    const t = performance.now();
    await once();
    times.push(performance.now() - t);
  }
  const total = performance.now() - start;
  times.sort((a, b) => a - b);
  return { p50: times[Math.floor(n * 0.5)]!, p99: times[Math.min(n - 1, Math.floor(n * 0.99))]!, rps: (n * 1000) / total };
}

function send(host: string, port: number, path: string, agent: Agent, headers: Record<string, string>): Promise<void> {
  return new Promise((resolve, reject) => {
    const req = request({ host, port, path, agent, headers: { accept: 'application/json', ...headers } }, (res) => {
      res.resume();
      res.on('end', () => (res.statusCode === 200 ? resolve() : reject(new Error(`${path}: HTTP ${res.statusCode}`))));
    });
    req.on('error', reject);
    req.end();
  });
}

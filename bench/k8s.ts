/**
 * Kubernetes proxy overhead, side by side in one run: `get` (one ConfigMap) and `list` (50
 * ConfigMaps) against a real kube-apiserver, directly (admin client certificate) and through
 * Agate (embedded default: OIDC token, fsynced write-ahead audit, a policy verdict per request,
 * response recorded, ledger). Sequential requests on one keep-alive connection per path, so the
 * figures are per-request latency, not throughput. Also a Secret `get` masked for the client, and
 * a discovery request, which the built-in discovery rule allows without a policy round trip.
 *
 * The paths take turns request by request (direct, Agate, direct, …), so a machine whose load
 * changes during the run (other work on shared cores) weighs on each path alike. With
 * AGATE_BENCH_BASELINE naming another build's `bin/agate.js`, that build runs beside this one
 * with the same configuration and takes its turn too: a before/after comparison in one run.
 */
import { readFileSync, writeFileSync } from 'node:fs';
import { Agent, request } from 'node:https';
import { loadavg } from 'node:os';
import { join } from 'node:path';
import { startKubeApiServer } from '../test/harness/kube-apiserver.js';
import { startOidcIssuer } from '../test/harness/oidc-issuer.js';
import { findFreePort } from '../test/harness/postgres.js';
import { startAgateProcess, type AgateProcess } from '../test/e2e/agate-process.js';

interface Figures {
  p50: number;
  p99: number;
  rps: number;
  /** CPU milliseconds the Agate process used per request (everything it does: proxy, policy, ledger). */
  cpuMs: number | undefined;
  /** Of which its main thread (the JavaScript: proxy, policy, the ledger's hashing); the rest is the thread pool and the embedded engine's threads. */
  mainMs: number | undefined;
}

/** One way to the API server: a name, one request by path, and the CPU its Agate process used so far. */
interface Way {
  name: string;
  send(path: string): Promise<void>;
  cpu?: () => Cpu;
}

/** CPU ms used so far by a process, and by its main thread. */
interface Cpu {
  all: number;
  main: number;
}

const WARM_UP = 50;
/**
 * Rounds of every path through every way before any row is measured (AGATE_BENCH_K8S_WARM_UP).
 * A proxy runs for days; its first thousands of requests also pay V8's optimizing compiler
 * (on its worker threads) and run in its unoptimized tiers. Measured (2026-12-07, `--trace-opt`):
 * 528 functions optimized over an Agate's first 1,000 `get`s, then 150, 46, 26, 16 and 10 per
 * further 1,000; its CPU per `get` fell from ~3.0 to ~1.4 ms over them. With only the rows' own
 * warm-up, the first row (`get`) carried most of that start-up cost.
 */
const WARM_UP_ALL = Number(process.env.AGATE_BENCH_K8S_WARM_UP ?? 1000);

export async function run(args: string[]): Promise<void> {
  const n = Number(args[0] ?? 1000);
  const kube = await startKubeApiServer();
  const issuer = await startOidcIssuer({ audience: 'agate' });
  const q = (s: string) => JSON.stringify(s);
  // AGATE_BENCH_NODE_ARGS (e.g. `--cpu-prof --cpu-prof-dir=/tmp/prof`) profiles the Agate process.
  const nodeArgs = (process.env.AGATE_BENCH_NODE_ARGS ?? '').split(' ').filter(Boolean);
  const start = async (bin: string | undefined): Promise<{ agate: AgateProcess; port: number }> => {
    const port = await findFreePort();
    const agate = await startAgateProcess({
      bin,
      nodeArgs: bin === undefined ? nodeArgs : [],
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
    return { agate, port };
  };
  const current = await start(undefined);
  const baselineBin = process.env.AGATE_BENCH_BASELINE;
  const baseline = baselineBin === undefined || baselineBin === '' ? undefined : await start(baselineBin);
  const agents: Agent[] = [];
  try {
    const manifests = Array.from({ length: 50 }, (_, i) => `apiVersion: v1\nkind: ConfigMap\nmetadata: { name: bench-${i}, namespace: default }\ndata: { value: "${'x'.repeat(200)}" }\n---\n`).join('');
    const file = join(current.agate.dir, 'bench.yaml');
    writeFileSync(file, manifests);
    const made = await kube.kubectl(['apply', '-f', file]);
    if (made.code !== 0) throw new Error(made.stderr);
    const secret = await kube.kubectl(['create', 'secret', 'generic', 'bench-secret', '--from-literal=password=bench']);
    if (secret.code !== 0) throw new Error(secret.stderr);

    const token = await issuer.mint(issuer.githubActionsClaims(), { expiresIn: 3600 });
    const directUrl = new URL(kube.url);
    const agentCa = readFileSync(kube.other.caFile);
    const way = (name: string, host: string, port: number, agent: Agent, headers: Record<string, string>, pid?: number): Way => {
      agents.push(agent);
      return { name, send: (path) => send(host, port, path, agent, headers), cpu: pid === undefined ? undefined : () => ({ all: cpuMs(`/proc/${pid}/stat`), main: cpuMs(`/proc/${pid}/task/${pid}/stat`) }) };
    };
    const viaAgate = (name: string, a: { agate: AgateProcess; port: number }) => way(name, '127.0.0.1', a.port, new Agent({ keepAlive: true, maxSockets: 1, ca: agentCa }), { authorization: `Bearer ${token}` }, a.agate.pid);
    const ways: Way[] = [
      way('direct', directUrl.hostname, Number(directUrl.port), new Agent({ keepAlive: true, maxSockets: 1, ca: kube.caPem, cert: readFileSync(kube.clientCertFile), key: readFileSync(kube.clientKeyFile) }), {}),
      ...(baseline === undefined ? [] : [viaAgate('Agate (baseline build)', baseline)]),
      viaAgate('Agate', current),
    ];
    const paths = {
      get: '/api/v1/namespaces/default/configmaps/bench-0',
      list: '/api/v1/namespaces/default/configmaps?labelSelector=',
      'get Secret': '/api/v1/namespaces/default/secrets/bench-secret',
      // Allowed by the built-in discovery rule: recorded, no policy round trip.
      'discovery GET /api': '/api',
    };
    for (let i = 0; i < WARM_UP_ALL; i++) for (const path of Object.values(paths)) for (const w of ways) await w.send(path);
    // The ledger's last batches of the warm-up land before the idle figure is taken.
    if (WARM_UP_ALL > 0) await new Promise((r) => setTimeout(r, 3_000));
    // What each Agate spends with no request at all (timers, the ledger's batches): taken out of its CPU per request.
    const idle = await idleCpu(ways, 5_000);
    const load = () => loadavg().map((l) => l.toFixed(1)).join(' / ');
    console.log(`\nKubernetes API latency, ${n} sequential requests per row after ${WARM_UP_ALL} rounds of every path and ${WARM_UP} of the row's own as warm-up, the paths taking turns (${new Date().toISOString()}, kube-apiserver ${kube.version}, ${baselineBin ? `baseline ${baselineBin}, ` : ''}load average 1/5/15 min ${load()} at the start)\n`);
    console.log('| request | path | p50 ms | p99 ms | req/s | Agate CPU ms per request | of which main thread |');
    console.log('|---|---|---:|---:|---:|---:|---:|');
    const summary: string[] = [];
    for (const [name, path] of Object.entries(paths)) {
      const figures = await measure(n, ways, path, idle);
      const direct = figures[0]!;
      ways.forEach((w, i) => {
        const f = figures[i]!;
        console.log(`| ${name}${name === 'get Secret' && i > 0 ? ' (masked)' : ''} | ${w.name} | ${f.p50.toFixed(3)} | ${f.p99.toFixed(3)} | ${f.rps.toFixed(0)} | ${f.cpuMs === undefined ? '' : f.cpuMs.toFixed(2)} | ${f.mainMs === undefined ? '' : f.mainMs.toFixed(2)} |`);
        if (i > 0) summary.push(`| ${name} | ${w.name} | ${(f.p50 - direct.p50).toFixed(3)} | ${(f.p99 - direct.p99).toFixed(3)} |`);
      });
    }
    console.log(`\nAgate CPU per request excludes what each Agate process uses idle: ${ways.map((w, i) => (idle[i] === undefined ? undefined : `${w.name} ${idle[i]!.all.toFixed(1)} ms/s (main thread ${idle[i]!.main.toFixed(1)})`)).filter(Boolean).join(', ')} (measured over 5 s before the rows).`);
    console.log('\n| request | path | added p50 ms | added p99 ms |');
    console.log('|---|---|---:|---:|');
    for (const s of summary) console.log(s);
    console.log(`\nload average 1/5/15 min at the end: ${load()}`);
  } finally {
    for (const a of agents) a.destroy();
    await current.agate.dispose();
    await baseline?.agate.dispose();
    await issuer.close();
    await kube.stop();
  }
}

/** Each of `ways` once per round, in turn, `n` rounds after the warm-up; figures per way (CPU with `idle` ms per second taken out). */
async function measure(n: number, ways: readonly Way[], path: string, idle: readonly (Cpu | undefined)[]): Promise<Figures[]> {
  for (let i = 0; i < WARM_UP; i++) for (const w of ways) await w.send(path);
  const times = ways.map(() => [] as number[]);
  const cpuBefore = ways.map((w) => w.cpu?.());
  const started = performance.now();
  for (let i = 0; i < n; i++) {
    // Each round starts with another way: the one that goes after another Agate shares the CPU
    // with that Agate's recording of the answer it just gave. The order turns round every
    // ways.length rounds, so each way follows each other one as often (in one direction only,
    // this build always came right after the baseline build).
    const dir = Math.floor(i / ways.length) % 2 === 0 ? 1 : -1;
    for (let k = 0; k < ways.length; k++) {
      const w = (((i + dir * k) % ways.length) + ways.length) % ways.length;
      const t = performance.now();
      await ways[w]!.send(path);
      times[w]!.push(performance.now() - t);
    }
  }
  const seconds = (performance.now() - started) / 1000;
  return times.map((t, w) => {
    const total = t.reduce((a, b) => a + b, 0);
    const before = cpuBefore[w];
    const after = ways[w]!.cpu?.();
    const perRequest = (k: keyof Cpu) => (before === undefined || after === undefined ? undefined : (after[k] - before[k] - (idle[w]?.[k] ?? 0) * seconds) / n);
    t.sort((a, b) => a - b);
    // req/s of this way alone: its requests over the time they took (the others' turns excluded).
    return { p50: t[Math.floor(n * 0.5)]!, p99: t[Math.min(n - 1, Math.floor(n * 0.99))]!, rps: (n * 1000) / total, cpuMs: perRequest('all'), mainMs: perRequest('main') };
  });
}

/** Each way's Agate process CPU per second of wall time, with no request sent, over `ms`. */
async function idleCpu(ways: readonly Way[], ms: number): Promise<(Cpu | undefined)[]> {
  const before = ways.map((w) => w.cpu?.());
  await new Promise((r) => setTimeout(r, ms));
  return ways.map((w, i) => {
    const b = before[i];
    if (b === undefined) return undefined;
    const now = w.cpu!();
    return { all: ((now.all - b.all) * 1000) / ms, main: ((now.main - b.main) * 1000) / ms };
  });
}

/** User and system CPU time so far of a process or thread, in ms (Linux: its `stat` file under /proc, in clock ticks of 10 ms). */
function cpuMs(statFile: string): number {
  // The fields after the command name, which is in parentheses and may hold spaces.
  const fields = readFileSync(statFile, 'utf8').split(') ')[1]!.split(' ');
  return (Number(fields[11]) + Number(fields[12])) * 10;
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

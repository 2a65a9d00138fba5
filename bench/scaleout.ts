/**
 * Scale-out of the distributed mode, side by side in one run: 1, 2 and 4 `agate proxy`
 * processes in front of one PostgreSQL, with 2 policy processes in one consumer group and 2
 * ledger processes sharing the partitions (one chain per partition), over a real Kafka broker and
 * schema registry; the store is the ClickHouse HTTP test double (the embedded engine behind a
 * server's HTTP interface). The same closed-loop load each time: CLIENTS connections spread
 * round-robin over the proxies, each running `SELECT 1` for SECONDS. Printed per configuration:
 * statements/s, client latency (p50, p99), and the proxies' verdict latency (mean, from their
 * agate_verdict_latency_seconds histograms). Then every statement must be recorded with its
 * allow verdict, none refused (a verdict that reached the wrong proxy would time out), and every
 * chain must verify.
 *
 *   npm run bench -- scaleout [SECONDS=15] [CLIENTS=16]
 */
import { cpus } from 'node:os';
import { startDistributed, verdictLatencySums, type ProxyMember } from '../test/harness/distributed.js';
import { until } from '../test/harness/until.js';
import { connectAgent } from '../test/harness/agent-client.js';

const PARTITIONS = 4;
const PROXIES = [1, 2, 4];
/** Above the default 2 s: on a shared 2-core machine a fresh proxy's first verdicts can take longer. */
const VERDICT_TIMEOUT_MS = 10_000;

interface Figures {
  proxies: number;
  statements: number;
  errors: number;
  perSecond: number;
  p50: number;
  p99: number;
  verdictMeanMs: number;
}

export async function run(args: string[]): Promise<void> {
  const seconds = Number(args[0] ?? 15);
  const clients = Number(args[1] ?? 16);
  const stack = await startDistributed({ partitions: PARTITIONS, policies: 2, ledgers: 2, verdictTimeoutMs: VERDICT_TIMEOUT_MS, registry: true, policyYaml: '  default: allow' });
  const token = await stack.issuer.mint({ sub: 'scaleout', agate_role: 'auditor' });
  const rows: Figures[] = [];
  try {
    for (const n of PROXIES) {
      const proxies: ProxyMember[] = [];
      for (let i = 0; i < n; i++) proxies.push(await stack.addProxy(`proxy-${n}-${i}`));
      try {
        rows.push(await load(n, proxies, clients, seconds, token));
      } finally {
        await Promise.all(proxies.map((p) => p.process.stop()));
      }
    }
    const sent = rows.reduce((s, r) => s + r.statements, 0);
    const recorded = await until('the ledger to record every statement', async () => {
      const [row] = await stack.store.query<{ c: string; a: string }>(
        `SELECT count() AS c, countIf(decision = 'allow') AS a FROM agate.decisions WHERE text LIKE 'SELECT 1 /* scaleout %'`);
      return Number(row!.c) >= sent ? row : undefined;
    }, { timeoutMs: 180_000, everyMs: 500, retryErrors: true });
    const verify = await stack.verify(token);
    print(rows, clients, seconds);
    console.log(`\nrecorded: ${recorded.c} commands for ${sent} statements sent, ${recorded.a} allowed; refused or failed at the client: ${rows.reduce((s, r) => s + r.errors, 0)}`);
    console.log(`agate verify (exit ${verify.code}):\n${verify.stdout.trim()}`);
    if (verify.code !== 0 || Number(recorded.a) !== sent || rows.some((r) => r.errors > 0)) process.exitCode = 1;
  } finally {
    await stack.stop();
  }
}

/** CLIENTS closed-loop clients over the proxies for `seconds`. */
async function load(n: number, proxies: ProxyMember[], clients: number, seconds: number, token: string): Promise<Figures> {
  // A failed statement is counted where it is awaited.
  const conns = await Promise.all(Array.from({ length: clients }, (_, i) => connectAgent({ port: proxies[i % proxies.length]!.port, token })));
  const before = await verdictLatencySums(proxies.map((p) => p.ops));
  const latencies: number[] = [];
  let errors = 0; // statements refused or failed, warm-up included
  let warmed = 0;
  const text = `SELECT 1 /* scaleout ${n} */`;
  // Warm-up: each session's first statement (plans, caches) is not measured.
  await Promise.all(conns.map((c) => c.query(text).then(() => warmed++, () => errors++)));
  const start = performance.now();
  const end = start + seconds * 1000;
  await Promise.all(conns.map(async (c) => {
    while (performance.now() < end) {
      const t = performance.now();
      try {
        await c.query(text);
        latencies.push(performance.now() - t);
      } catch {
        errors++;
      }
    }
  }));
  const elapsed = (performance.now() - start) / 1000;
  const after = await verdictLatencySums(proxies.map((p) => p.ops));
  await Promise.all(conns.map((c) => c.end()));
  latencies.sort((a, b) => a - b);
  const pct = (p: number) => latencies[Math.min(latencies.length - 1, Math.floor(latencies.length * p))] ?? NaN;
  return {
    proxies: n, statements: latencies.length + errors + warmed, errors, perSecond: latencies.length / elapsed, p50: pct(0.5), p99: pct(0.99),
    verdictMeanMs: ((after.sum - before.sum) / Math.max(1, after.count - before.count)) * 1000,
  };
}

function print(rows: Figures[], clients: number, seconds: number): void {
  console.log(`scale-out: ${clients} clients, ${seconds} s each, ${PARTITIONS} partitions, 2 policy + 2 ledger processes, ${cpus().length} cores`);
  console.log('proxies  statements/s  p50 ms  p99 ms  verdict mean ms  errors');
  for (const r of rows) {
    console.log(`${String(r.proxies).padStart(7)}  ${r.perSecond.toFixed(0).padStart(12)}  ${r.p50.toFixed(2).padStart(6)}  ${r.p99.toFixed(2).padStart(6)}  ${r.verdictMeanMs.toFixed(2).padStart(15)}  ${String(r.errors).padStart(6)}`);
  }
}

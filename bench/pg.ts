/**
 * PostgreSQL proxy overhead, side by side in one run (issue 21's figures):
 * 1. added latency at one client: pgbench -S, simple and prepared, p50 and p99 from pgbench's
 *    per-transaction log, direct against PostgreSQL, through PgBouncer and through Agate
 *    (embedded default: fsynced write-ahead audit, policy on every statement, ledger);
 * 2. throughput and Agate's own CPU per statement at N clients (process CPU time from
 *    /proc/PID/stat divided by transactions), in each of pgbench's query modes, unthrottled and at
 *    a fixed rate (`--rate`, pgbench -R), where every build does the same work per second;
 *    PgBouncer's CPU per statement beside Agate's, and `agate proxy` alone in distributed mode;
 * 3. `agate start`'s RssAnon and PSS idle and while a 2 GB result streams through it.
 */
import { execFileSync, spawn, type ChildProcess } from 'node:child_process';
import { chownSync, closeSync, fdatasyncSync, mkdtempSync, openSync, readdirSync, readFileSync, rmSync, unlinkSync, writeFileSync, writeSync } from 'node:fs';
import { connect } from 'node:net';
import { loadavg, tmpdir } from 'node:os';
import { join } from 'node:path';
import { serialize } from 'pg-protocol';
import { packageRoot } from '../core/src/package-root.js';
import { startListeningChild } from './listening-child.js';
import { loopDiagCells, readLoopDiag } from './loop-diag-report.js';
import { startAgate, type AgateFixture } from '../test/e2e/agate-fixture.js';
import { findFreePort } from '../test/harness/postgres.js';
import { describeFailure, run as runProcess } from '../test/harness/proc.js';
import { startKafka } from '../test/harness/kafka.js';
import { startRole, type RoleProcess } from '../test/e2e/role-process.js';
import { readOptions } from './options.js';
import { initPgbench, PGBENCH } from './pgbench.js';

export interface PgBenchOptions {
  seconds: number;
  clients: number;
  streamGb: number;
  /** Also run the diagnosis rows (Agate with fsync off, a bare Node TCP relay). */
  diagnosis: boolean;
  /** pgbench query modes of the throughput table. */
  modes: readonly string[];
  /**
   * Statements per second of the fixed-rate table (pgbench -R; 0: no such table). At one rate
   * every build does the same work each second, so its CPU per statement compares across builds
   * and runs however loaded the machine is; unthrottled, CPU per statement falls as throughput
   * rises (more statements per group commit and per wake-up).
   */
  rate: number;
  /**
   * Also measure `agate proxy` alone at N clients (distributed mode: Kafka bus, policy in its own
   * process), its CPU per statement beside `agate start`'s.
   */
  proxyAlone: boolean;
}

interface Figures {
  tps: number;
  /** Transactions in pgbench's per-transaction log. */
  transactions: number;
  p50: number;
  p99: number;
}

export interface Memory {
  rss: number;
  anon: number;
  file: number;
  pss: number;
}

/**
 * What `agate start` says of its own memory at /metrics, in MiB: V8's heap (used, and total
 * including what V8 keeps free) and the embedded engine's memory tracker. RssAnon minus these is
 * what neither counts: the C allocator's free lists, thread stacks, compiled code, WebAssembly.
 */
export interface OwnView {
  heapUsed: number;
  heapTotal: number;
  engine: number;
}

export async function ownView(opsUrl: string): Promise<OwnView> {
  const text = await (await fetch(`${opsUrl}/metrics`)).text();
  const mib = (re: RegExp) => Number(re.exec(text)?.[1] ?? NaN) / 2 ** 20;
  return {
    heapUsed: mib(/^agate_nodejs_heap_size_used_bytes (\S+)$/m),
    heapTotal: mib(/^agate_nodejs_heap_size_total_bytes (\S+)$/m),
    engine: mib(/^agate_store_engine_memory_bytes\{kind="tracked"\} (\S+)$/m),
  };
}

/** A process's memory in MiB: RSS split into anonymous and file-backed pages, and its PSS. */
export function memory(pid: number): Memory {
  const kib = (text: string, key: string) => Number(new RegExp(`^${key}:\\s+(\\d+) kB`, 'm').exec(text)?.[1] ?? NaN) / 1024;
  const status = readFileSync(`/proc/${pid}/status`, 'utf8');
  const rollup = readFileSync(`/proc/${pid}/smaps_rollup`, 'utf8');
  return { rss: kib(status, 'VmRSS'), anon: kib(status, 'RssAnon'), file: kib(status, 'RssFile'), pss: kib(rollup, 'Pss') };
}

function uptime(): string {
  return readFileSync('/proc/loadavg', 'utf8').split(' ').slice(0, 3).join(' ');
}


export async function benchPg(o: PgBenchOptions): Promise<void> {
  execFileSync('bash', [join(packageRoot(), 'bench/install-pgbouncer.sh')], { stdio: 'inherit' });
  // AGATE_BENCH_NODE_ARGS (e.g. `--cpu-prof --cpu-prof-dir=/tmp/prof`) profiles the Agate process.
  const nodeArgs = (process.env.AGATE_BENCH_NODE_ARGS ?? '').split(' ').filter(Boolean);
  // AGATE_BENCH_LOOP_DIAG=1 preloads loop-diag.js into both Agate processes and prints where
  // their event loops stalled during each row.
  const diagFile = process.env.AGATE_BENCH_LOOP_DIAG === '1' ? join(tmpdir(), `agate-bench-loop-diag-${process.pid}.jsonl`) : undefined;
  const diagArgs = diagFile === undefined ? [] : ['--import', new URL('./loop-diag.js', import.meta.url).href];
  if (diagFile !== undefined) process.env.LOOP_DIAG_OUT = diagFile;
  // The ops listener's /metrics gives Agate's own view of its memory (V8 heap, engine tracker).
  const opsPort = await findFreePort();
  const opsUrl = `http://127.0.0.1:${opsPort}`;
  const agate = await startAgate({ nodeArgs: [...diagArgs, ...nodeArgs], extraYaml: `ops: { listen: "127.0.0.1:${opsPort}" }\n` });
  // For diagnosis only: the same Agate without fsync shows what the write-ahead fsync costs.
  const unsynced = o.diagnosis ? await startAgate({ extraYaml: 'bus: { fsync: false }\n', nodeArgs: diagArgs }) : undefined;
  const diagRows: { label: string; pid: number; from: number; to: number }[] = [];
  let bouncer: ChildProcess | undefined;
  let relay: { child: ChildProcess; port: number } | undefined;
  let alone: ProxyAlone | undefined;
  const work = mkdtempSync(join(tmpdir(), 'agate-bench-'));
  try {
    const { base, direct } = await initPgbench(agate);
    if (unsynced !== undefined) await initPgbench(unsynced);
    const bouncerPort = await findFreePort();
    bouncer = await startBouncer(work, agate, bouncerPort);
    const viaBouncer = { ...base, PGPORT: String(bouncerPort), PGUSER: 'agent', PGPASSWORD: '' };
    if (o.diagnosis) relay = await startListeningChild('the TCP relay', new URL('./tcp-relay.js', import.meta.url).pathname, [String(agate.pg.port)]);
    const viaAgate = async () => ({ ...base, PGPASSWORD: await agate.token() });
    const bouncerProcess = processUnder(bouncer);
    const idle = memory(agate.pid);
    const idleView = await ownView(opsUrl);

    console.log(`\nAdded latency at 1 client: pgbench -S, 1 client, 1 thread, ${o.seconds} s per run, scale 10, p50 and p99 of the per-transaction log (${new Date().toISOString()}, uptime: ${uptime()})\n`);
    console.log('| mode | path | TPS | p50 ms | p99 ms | added p50 ms | added p99 ms | load avg (1 min) |');
    console.log('|---|---|---:|---:|---:|---:|---:|---:|');
    const added: string[] = [];
    for (const mode of ['simple', 'prepared'] as const) {
      const one = { ...o, clients: 1 };
      const d = await pgbench(work, direct, mode, one);
      const line = (name: string, f: Figures) =>
        console.log(`| ${mode} | ${name} | ${f.tps.toFixed(0)} | ${f.p50.toFixed(3)} | ${f.p99.toFixed(3)} | ${name === 'direct' ? '—' : (f.p50 - d.p50).toFixed(3)} | ${name === 'direct' ? '—' : (f.p99 - d.p99).toFixed(3)} | ${loadavg()[0]!.toFixed(1)} |`);
      line('direct', d);
      const b = await pgbench(work, viaBouncer, mode, one);
      line('PgBouncer', b);
      const a = await pgbench(work, await viaAgate(), mode, one);
      line('Agate', a);
      added.push(`| ${mode} | ${(a.p50 - d.p50).toFixed(3)} | ${(a.p99 - d.p99).toFixed(3)} | ${(b.p50 - d.p50).toFixed(3)} | ${(b.p99 - d.p99).toFixed(3)} |`);
    }
    const disk = fdatasyncLatency(agate.dir);
    console.log(`\nThe disk under Agate's event log, same run: fdatasync of a 600-byte append (one statement's Command and Verdict) p50 ${disk.p50.toFixed(3)} ms, p99 ${disk.p99.toFixed(3)} ms (${disk.n} appends). Every statement through Agate waits for one: the floor of its added latency.`);
    console.log('\n| mode | Agate added p50 ms (target ≤ 0.30) | Agate added p99 ms (target ≤ 1) | PgBouncer added p50 ms | PgBouncer added p99 ms |');
    console.log('|---|---:|---:|---:|---:|');
    for (const a of added) console.log(a);

    alone = o.proxyAlone ? await startProxyAlone(agate, work, nodeArgs) : undefined;
    const viaAlone = async () => ({ ...base, PGPORT: String(alone!.port), PGPASSWORD: await agate.token() });
    console.log(`\npgbench -S, ${o.clients} clients, 2 threads, ${o.seconds} s per run, scale 10, after a warm-up run through Agate (${new Date().toISOString()}, uptime: ${uptime()})\n`);
    console.log('| mode | path | TPS | p50 latency ms | p99 latency ms | proxy process CPU µs per tx | machine CPU µs per tx (all processes) | load avg (1 min) |');
    console.log('|---|---|---:|---:|---:|---:|---:|---:|');
    const summary: string[] = [];
    const threadRows: string[] = [];
    // The 1-client runs leave Agate's JIT cold for 8 clients' code paths; its compiler threads
    // would count against the first measured row.
    await pgbench(work, await viaAgate(), o.modes[0] ?? 'simple', { ...o, seconds: Math.min(o.seconds, 10) });
    if (alone !== undefined) await pgbench(work, await viaAlone(), o.modes[0] ?? 'simple', { ...o, seconds: Math.min(o.seconds, 10) });
    for (const mode of o.modes) {
      const row = async (name: string, env: NodeJS.ProcessEnv, pid?: number, threads = true) => {
        // CPU time of the Agate process per transaction: steadier than TPS on a shared machine.
        const cpu0 = pid === undefined ? 0 : cpuMs(pid);
        const threads0 = pid === undefined || !threads ? undefined : threadCpuMs(pid);
        const each0 = threads0 === undefined || process.env.AGATE_BENCH_THREADS === undefined ? undefined : perThreadMs(pid!);
        const busy0 = machineBusyMs();
        const from = Date.now();
        const f = await pgbench(work, env, mode, o);
        if (pid !== undefined) diagRows.push({ label: `${mode} | ${name}`, pid, from, to: Date.now() });
        const cpuPerTx = pid === undefined ? NaN : ((cpuMs(pid) - cpu0) * 1000) / f.transactions;
        if (pid !== undefined && threads0 !== undefined) {
          const t = threadCpuMs(pid);
          const us = (k: keyof ThreadCpu) => (((t[k] - threads0[k]) * 1000) / f.transactions).toFixed(0);
          threadRows.push(`| ${mode} | ${name} | ${us('main')} | ${us('node')} | ${us('engine')} |`);
          if (each0 !== undefined) threadRows.push(...perThreadRows(each0, perThreadMs(pid), f.transactions));
        }
        const machinePerTx = (((machineBusyMs() - busy0) * 1000) / f.transactions).toFixed(0);
        console.log(`| ${mode} | ${name} | ${f.tps.toFixed(0)} | ${f.p50.toFixed(3)} | ${f.p99.toFixed(3)} | ${pid === undefined ? '—' : cpuPerTx.toFixed(0)} | ${machinePerTx} | ${loadavg()[0]!.toFixed(1)} |`);
        return { ...f, cpuPerTx };
      };
      const d = await row('direct', direct);
      const b = await row('PgBouncer', viaBouncer, bouncerProcess, false);
      const a = await row('Agate', await viaAgate(), agate.pid);
      const p = alone === undefined ? undefined : await row('`agate proxy` alone (distributed: Kafka bus, policy in its own process)', await viaAlone(), alone.pid);
      if (unsynced !== undefined) await row('Agate, bus.fsync off (diagnosis only)', { ...(await unsynced.libpqEnv()) }, unsynced.pid);
      const r = relay === undefined ? undefined : await row('bare Node TCP relay, no parsing or audit (diagnosis only)', { ...direct, PGPORT: String(relay.port) }, relay.child.pid);
      summary.push(`| ${mode} | ${a.cpuPerTx.toFixed(0)} | ${p === undefined ? '—' : p.cpuPerTx.toFixed(0)} | ${b.cpuPerTx.toFixed(0)} | ${(a.tps / b.tps).toFixed(2)}× | ${(a.tps / d.tps).toFixed(2)}× | ${r === undefined ? '—' : `${(r.tps / b.tps).toFixed(2)}×`} |`);
    }
    if (o.rate > 0) {
      // At a fixed rate both paths (and two builds) do the same statements a second, so their CPU
      // per statement compares even when the machine lets one serve fewer statements than another.
      console.log(`\nAt a fixed rate: pgbench -S -R ${o.rate}, ${o.clients} clients, ${o.seconds} s per run (${new Date().toISOString()}, uptime: ${uptime()})\n`);
      console.log('| mode | path | TPS | p50 latency ms | p99 latency ms | CPU µs per statement | main thread | Node\'s other threads | engine threads | load avg (1 min) |');
      console.log('|---|---|---:|---:|---:|---:|---:|---:|---:|---:|');
      const paths = [{ name: '`agate start`', env: viaAgate, pid: agate.pid }, ...(alone === undefined ? [] : [{ name: '`agate proxy` alone', env: viaAlone, pid: alone.pid }])];
      for (const mode of o.modes) {
        for (const path of paths) {
          const cpu0 = cpuMs(path.pid);
          const threads0 = threadCpuMs(path.pid);
          const f = await pgbench(work, await path.env(), mode, o, o.rate);
          const t = threadCpuMs(path.pid);
          const us = (ms: number) => ((ms * 1000) / f.transactions).toFixed(0);
          console.log(`| ${mode} | ${path.name} | ${f.tps.toFixed(0)} | ${f.p50.toFixed(3)} | ${f.p99.toFixed(3)} | ${us(cpuMs(path.pid) - cpu0)} | ${us(t.main - threads0.main)} | ${us(t.node - threads0.node)} | ${us(t.engine - threads0.engine)} | ${loadavg()[0]!.toFixed(1)} |`);
        }
      }
    }
    console.log(`\n| mode | \`agate start\` CPU µs per statement at ${o.clients} clients (target ≤ 100) | \`agate proxy\` alone CPU µs per statement (target ≤ 40) | PgBouncer CPU µs per statement | Agate TPS / PgBouncer | Agate TPS / direct | bare Node relay TPS / PgBouncer |`);
    console.log('|---|---:|---:|---:|---:|---:|---:|');
    for (const s of summary) console.log(s);
    console.log(`\n| mode | path | Agate CPU µs per statement: main thread | Node's other threads (GC and compiler helpers, libuv pool, ledger hashing worker) | engine threads (ledger inserts, views, merges) |`);
    console.log('|---|---|---:|---:|---:|');
    for (const t of threadRows) console.log(t);
    if (diagFile !== undefined) printLoopDiag(diagFile, diagRows);

    console.log(`\nMemory of \`agate start\` (pid ${agate.pid}), MiB: RssAnon from /proc/PID/status, PSS from /proc/PID/smaps_rollup; V8 heap and the engine's memory tracker from its /metrics (agate_nodejs_heap_size_*, agate_store_engine_memory_bytes{kind="tracked"}); the rest of RssAnon is neither's: the C allocator's free lists, thread stacks, compiled code, WebAssembly\n`);
    console.log('| when | RSS | RssAnon (target ≤ 150 idle, ≤ 256 streaming) | RssFile | PSS | V8 heap used / total | engine tracked | rest of RssAnon |');
    console.log('|---|---:|---:|---:|---:|---:|---:|---:|');
    const memLine = (when: string, m: Memory, v: OwnView) =>
      console.log(`| ${when} | ${m.rss.toFixed(0)} | ${m.anon.toFixed(0)} | ${m.file.toFixed(0)} | ${m.pss.toFixed(0)} | ${v.heapUsed.toFixed(0)} / ${v.heapTotal.toFixed(0)} | ${v.engine.toFixed(0)} | ${(m.anon - v.heapTotal - v.engine).toFixed(0)} |`);
    memLine('idle, after start', idle, idleView);
    // The ledger's last batch lands within a second of the last statement.
    await new Promise((r) => setTimeout(r, 2_000));
    const afterView = await ownView(opsUrl);
    memLine('idle, after the pgbench runs', memory(agate.pid), afterView);
    if (o.streamGb > 0) {
      console.log(`\n| process streaming ${o.streamGb} GiB | time s | MiB/s | RSS before MiB | RSS peak MiB | RssAnon before MiB | RssAnon peak MiB (target ≤ 256) | PSS peak MiB | load avg |`);
      console.log('|---|---:|---:|---:|---:|---:|---:|---:|---:|');
      await stream('`agate start` (embedded: proxy, policy, ledger, chdb engine)', { host: agate.host, port: agate.port, pid: agate.pid, token: () => agate.token() }, o.streamGb);
      await new Promise((r) => setTimeout(r, 2_000));
      console.log('\n| when | RSS | RssAnon | RssFile | PSS | V8 heap used / total | engine tracked | rest of RssAnon |');
      console.log('|---|---:|---:|---:|---:|---:|---:|---:|');
      memLine('idle, after the stream', memory(agate.pid), await ownView(opsUrl));
      if (o.diagnosis) {
        const own = alone ?? (await startProxyAlone(agate, work, []));
        try {
          await stream('`agate proxy` alone (distributed: Kafka bus, policy in its own process)', { host: '127.0.0.1', port: own.port, pid: own.pid, token: () => agate.token() }, o.streamGb);
        } finally {
          if (own !== alone) await own.stop();
        }
      }
    }
  } finally {
    bouncer?.kill('SIGTERM');
    relay?.child.kill('SIGTERM');
    await alone?.stop();
    await agate.cleanup();
    await unsynced?.cleanup();
    rmSync(work, { recursive: true, force: true });
    if (diagFile !== undefined) rmSync(diagFile, { force: true });
  }
}

/**
 * fdatasync latency of small appends to a preallocated file in `dir` (the filesystem of Agate's
 * event log), as the log does them: what one durable write per statement costs on this disk.
 */
function fdatasyncLatency(dir: string, n = 2_000): { p50: number; p99: number; n: number } {
  const file = join(dir, 'bench-fdatasync.bin');
  const fd = openSync(file, 'w+');
  const record = Buffer.alloc(600, 0x61);
  const ms: number[] = [];
  try {
    writeSync(fd, Buffer.alloc(n * record.length), 0, n * record.length, 0);
    fdatasyncSync(fd);
    for (let i = 0; i < n; i++) {
      writeSync(fd, record, 0, record.length, i * record.length);
      const t = process.hrtime.bigint();
      fdatasyncSync(fd);
      ms.push(Number(process.hrtime.bigint() - t) / 1e6);
    }
  } finally {
    closeSync(fd);
    unlinkSync(file);
  }
  ms.sort((a, b) => a - b);
  return { p50: ms[Math.floor(n * 0.5)]!, p99: ms[Math.floor(n * 0.99)]!, n };
}

/** Where each Agate row's event loop stalled (AGATE_BENCH_LOOP_DIAG=1; see loop-diag.ts). */
function printLoopDiag(file: string, rows: readonly { label: string; pid: number; from: number; to: number }[]): void {
  const lines = readLoopDiag(file);
  console.log('\nEvent loop of the Agate process, per second of each row (loop-diag.ts): stalls are turns of the loop more than 4 ms late.');
  console.log('\n| mode | path | loop delay p99 ms (median second) / max | GC pauses ms/s (pauses > 4 ms /s) | stalls ms/s | stalls: running JS / GC / waiting for a core, ms/s | CPU ms/s: main thread / Node helpers (GC, libuv pool, workers) / engine threads | seconds |');
  console.log('|---|---|---:|---:|---:|---:|---:|---:|');
  for (const r of rows) console.log(`| ${r.label} | ${loopDiagCells(lines, r.pid, r.from, r.to).join(' | ')} |`);
}

/**
 * CPU time the whole machine spent busy so far, in ms (all cores, every process: PostgreSQL,
 * pgbench, the proxy under test, and whatever else runs). Per transaction it bounds what the
 * transaction costs end to end.
 */
function machineBusyMs(): number {
  const [user, nice, system, , , irq, softirq] = readFileSync('/proc/stat', 'utf8').split('\n')[0]!.trim().split(/\s+/).slice(1).map(Number);
  return (user! + nice! + system! + irq! + softirq!) * 10; // clock ticks of 10 ms
}

/** User plus system CPU time of a process so far, in ms (all its threads). */
function cpuMs(pid: number): number {
  const fields = readFileSync(`/proc/${pid}/stat`, 'utf8').split(') ')[1]!.split(' ');
  return (Number(fields[11]) + Number(fields[12])) * 10; // clock ticks of 10 ms
}

interface ThreadCpu {
  main: number;
  /** Node's other threads, all named `node`: V8's GC and compiler helpers, libuv's pool (fsync, file writes), worker threads. */
  node: number;
  /** The embedded engine's threads, which it names (inserts, merges, the query service's views). */
  engine: number;
}

/** CPU ms so far of a process's threads, in three groups. */
function threadCpuMs(pid: number): ThreadCpu {
  const out = { main: 0, node: 0, engine: 0 };
  for (const tid of readdirSync(`/proc/${pid}/task`)) {
    try {
      const stat = readFileSync(`/proc/${pid}/task/${tid}/stat`, 'utf8');
      const name = stat.slice(stat.indexOf('(') + 1, stat.lastIndexOf(')'));
      const f = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
      out[tid === String(pid) ? 'main' : name === 'node' ? 'node' : 'engine'] += (Number(f[11]) + Number(f[12])) * 10;
    } catch {
      // the thread ended meanwhile
    }
  }
  return out;
}

/** CPU ms so far of each thread of a process, by tid, with its name (AGATE_BENCH_THREADS: to tell Node's unnamed threads apart by tid order). */
function perThreadMs(pid: number): Map<number, { name: string; ms: number }> {
  const out = new Map<number, { name: string; ms: number }>();
  for (const tid of readdirSync(`/proc/${pid}/task`)) {
    try {
      const stat = readFileSync(`/proc/${pid}/task/${tid}/stat`, 'utf8');
      const f = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
      out.set(Number(tid), { name: stat.slice(stat.indexOf('(') + 1, stat.lastIndexOf(')')), ms: (Number(f[11]) + Number(f[12])) * 10 });
    } catch {
      // the thread ended meanwhile
    }
  }
  return out;
}

/** One line per thread that used CPU between two snapshots: tid, name, µs per statement. */
function perThreadRows(before: Map<number, { name: string; ms: number }>, after: Map<number, { name: string; ms: number }>, transactions: number): string[] {
  const rows: string[] = [];
  for (const [tid, t] of [...after].sort((a, b) => a[0] - b[0])) {
    const us = ((t.ms - (before.get(tid)?.ms ?? 0)) * 1000) / transactions;
    if (us >= 0.5) rows.push(`|   | thread ${tid} ${t.name} | ${us.toFixed(1)} | | |`);
  }
  return rows;
}

async function must(cmd: string, args: string[], env: NodeJS.ProcessEnv): Promise<string> {
  const r = await runProcess(cmd, args, { env, timeoutMs: 600_000 });
  if (r.code !== 0) throw new Error(describeFailure(cmd, args, r));
  return r.stdout;
}

/** One pgbench -S run; `rate` (statements per second, pgbench -R) throttles it. */
async function pgbench(work: string, env: NodeJS.ProcessEnv, mode: string, o: Pick<PgBenchOptions, 'clients' | 'seconds'>, rate?: number): Promise<Figures> {
  const dir = mkdtempSync(join(work, 'log-'));
  chownToPostgres(dir);
  const throttle = rate === undefined ? [] : ['-R', String(rate)];
  const out = await must(PGBENCH, ['-n', '-S', '-M', mode, '-c', String(o.clients), '-j', String(Math.min(2, o.clients)), '-T', String(o.seconds), ...throttle, '-l', '--log-prefix', join(dir, 'tx')], env);
  const tps = Number(/tps = ([\d.]+)/.exec(out)?.[1] ?? NaN);
  // Per-transaction log: client, transaction, latency (µs), script, epoch s, µs.
  const latencies: number[] = [];
  for (const f of readdirSync(dir)) {
    for (const line of readFileSync(join(dir, f), 'utf8').split('\n')) {
      const us = Number(line.split(' ')[2]);
      if (Number.isFinite(us) && line !== '') latencies.push(us);
    }
  }
  latencies.sort((a, b) => a - b);
  const pct = (p: number) => (latencies[Math.min(latencies.length - 1, Math.floor(latencies.length * p))] ?? NaN) / 1000;
  return { tps, transactions: latencies.length, p50: pct(0.5), p99: pct(0.99) };
}

function chownToPostgres(path: string): void {
  if (process.getuid?.() !== 0) return;
  const uid = Number(execFileSync('id', ['-u', 'postgres']).toString().trim());
  const gid = Number(execFileSync('id', ['-g', 'postgres']).toString().trim());
  chownSync(path, uid, gid);
}

/** PgBouncer on loopback, session pooling, logging in upstream as the same role Agate uses. */
async function startBouncer(work: string, agate: AgateFixture, port: number): Promise<ChildProcess> {
  const dir = join(work, 'pgbouncer');
  execFileSync('mkdir', ['-p', dir]);
  const cred = agate.pg.users.scram;
  writeFileSync(join(dir, 'userlist.txt'), '"agent" ""\n');
  writeFileSync(join(dir, 'pgbouncer.ini'), [
    '[databases]',
    `appdb = host=127.0.0.1 port=${agate.pg.port} dbname=appdb user=${cred.user} password=${cred.password}`,
    '[pgbouncer]',
    'listen_addr = 127.0.0.1',
    `listen_port = ${port}`,
    'unix_socket_dir =',
    'auth_type = trust',
    `auth_file = ${join(dir, 'userlist.txt')}`,
    'pool_mode = session',
    'max_client_conn = 200',
    'default_pool_size = 20',
    `logfile = ${join(dir, 'pgbouncer.log')}`,
    'ignore_startup_parameters = extra_float_digits',
    '',
  ].join('\n'));
  chownToPostgres(work);
  chownToPostgres(dir);
  for (const f of ['userlist.txt', 'pgbouncer.ini']) chownToPostgres(join(dir, f));
  const args = [join(dir, 'pgbouncer.ini')];
  const child = process.getuid?.() === 0 ? spawn('runuser', ['-u', 'postgres', '--', 'pgbouncer', ...args], { stdio: 'ignore' }) : spawn('pgbouncer', args, { stdio: 'ignore' });
  const deadline = Date.now() + 10_000;
  for (;;) {
    const ok = await new Promise<boolean>((resolve) => {
      const s = connect({ host: '127.0.0.1', port }, () => (s.destroy(), resolve(true)));
      s.on('error', () => resolve(false));
    });
    if (ok) return child;
    if (Date.now() > deadline) throw new Error('pgbouncer did not start');
    await new Promise((r) => setTimeout(r, 100));
  }
}

interface ProxyAlone {
  port: number;
  pid: number;
  stop(): Promise<void>;
}

/**
 * `agate proxy` alone (distributed mode: Kafka bus, policy in its own process) in front of the
 * same PostgreSQL: the proxy's own CPU and memory, without the embedded engine and ledger beside it.
 */
async function startProxyAlone(agate: AgateFixture, work: string, nodeArgs: string[]): Promise<ProxyAlone> {
  const broker = await startKafka();
  const procs: RoleProcess[] = [];
  const stop = async () => {
    for (const p of procs.reverse()) await p.stop();
    await broker.destroy();
  };
  try {
    const port = await findFreePort();
    const cred = agate.pg.users.scram;
    const q = JSON.stringify;
    const config = join(work, 'distributed.yaml');
    writeFileSync(config, `instance_id: bench-proxy
data_dir: ${q(join(work, 'distributed'))}
identity:
  issuers:
    - { issuer: ${q(agate.oidc.issuer)}, audience: agate, jwks_uri: ${q(agate.oidc.jwksUri)} }
bus: { kind: kafka, brokers: [${q(broker.bootstrap)}], partitions: 1, replication_factor: 1 }
proxy:
  postgres: { listen: "127.0.0.1:${port}" }
  verdict_timeout_ms: 10000
targets:
  - name: appdb
    protocol: postgres
    upstream: { host: 127.0.0.1, port: ${agate.pg.port}, database: appdb, user: ${q(cred.user)}, password: { value: ${q(cred.password)} } }
policy: { default: allow }
`);
    procs.push(await startRole('policy', config));
    const proxy = await startRole('proxy', config, 60_000, nodeArgs);
    procs.push(proxy);
    return { port, pid: proxy.pid, stop };
  } catch (err) {
    await stop();
    throw err;
  }
}

/**
 * The process that serves a child: PgBouncer itself, also when `runuser` started it (as root),
 * so that its CPU time is read, not runuser's.
 */
function processUnder(child: ChildProcess): number {
  const pid = child.pid!;
  if (process.getuid?.() !== 0) return pid;
  const kids = readFileSync(`/proc/${pid}/task/${pid}/children`, 'utf8').trim().split(' ').filter(Boolean);
  if (kids.length !== 1) throw new Error(`expected one process under runuser ${pid}, found ${kids.length}`);
  return Number(kids[0]);
}

export interface StreamTarget {
  host: string;
  port: number;
  /** The process whose resident memory is sampled. */
  pid: number;
  token: () => Promise<string>;
}

/** Streams `gb` GiB of rows through a proxy to a client that discards them; samples the proxy's RSS. */
export async function stream(label: string, agate: StreamTarget, gb: number): Promise<{ before: Memory; peak: Memory }> {
  const rowBytes = 1000;
  const rows = Math.ceil((gb * 2 ** 30) / rowBytes);
  const before = memory(agate.pid);
  const peak = { ...before };
  const sampler = setInterval(() => {
    const m = memory(agate.pid);
    for (const k of ['rss', 'anon', 'file', 'pss'] as const) peak[k] = Math.max(peak[k], m[k]);
  }, 100);
  const started = Date.now();
  const received = await new Promise<number>(async (resolve, reject) => {
    const socket = connect({ host: agate.host, port: agate.port });
    socket.on('error', reject);
    let total = 0;
    let phase: 'auth' | 'query' = 'auth';
    let tail = Buffer.alloc(0);
    socket.on('data', (d: Buffer) => {
      total += d.length;
      tail = Buffer.concat([tail, d]).subarray(-16);
      const ready = tail.includes(Buffer.from('Z\0\0\0\x05I'));
      if (phase === 'auth' && d.includes(Buffer.from([0x52, 0, 0, 0, 8, 0, 0, 0, 3]))) socket.write(serialize.password(token));
      if (phase === 'auth' && ready) {
        phase = 'query';
        total = 0;
        socket.write(serialize.query(`SELECT repeat('x', ${rowBytes - 11}) FROM generate_series(1, ${rows})`));
      } else if (phase === 'query' && ready) {
        socket.end();
        resolve(total);
      }
    });
    const token = await agate.token();
    socket.write(serialize.startup({ user: 'agent', database: 'appdb' }));
  });
  clearInterval(sampler);
  const secs = (Date.now() - started) / 1000;
  console.log(`| ${label}, ${(received / 2 ** 30).toFixed(2)} GiB | ${secs.toFixed(1)} | ${(received / 2 ** 20 / secs).toFixed(0)} | ${before.rss.toFixed(0)} | ${peak.rss.toFixed(0)} | ${before.anon.toFixed(0)} | ${peak.anon.toFixed(0)} | ${peak.pss.toFixed(0)} | ${loadavg()[0]!.toFixed(1)} |`);
  return { before, peak };
}

/** `npm run bench -- pg [--seconds N] [--clients N] [--rate N] [--stream-gb N] [--modes simple,prepared] [--diagnosis] [--no-proxy-alone]` */
export async function run(args: string[]): Promise<void> {
  const o = readOptions(args, {
    numbers: { seconds: 15, 'stream-gb': 2, clients: 8, rate: 250 },
    strings: { modes: 'simple,extended,prepared' },
    flags: ['diagnosis', 'no-proxy-alone'],
  });
  await benchPg({ seconds: o.seconds, streamGb: o['stream-gb'], clients: o.clients, rate: o.rate, diagnosis: o.diagnosis, proxyAlone: !o['no-proxy-alone'], modes: o.modes.split(',') });
}

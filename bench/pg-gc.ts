/**
 * `npm run bench -- pg-gc [--seconds N] [--rate R] [--runs K]`: the garbage `agate start` makes
 * per statement under pgbench -S -M prepared, 8 clients: counts that a loaded machine does not
 * move much, unlike CPU per statement.
 *
 * `agate start` runs with V8's `--trace-gc-nvp`, one line per collection on its stdout; over the
 * measured run (after an 8 s warm-up) the bench sums their `allocated=` (bytes allocated on the V8
 * heap since the collection before) and `promoted=` (bytes moved to the old generation), and
 * counts scavenges and mark-compacts. Per statement: bytes allocated and promoted; per 10,000
 * statements: scavenges and mark-compacts; the pauses' wall time (which the load does move);
 * CPU µs of the process and of its main thread. With `--rate` (pgbench -R) both builds do the same
 * statements a second, so work done per second (timers, the ledger's inserts) weighs the same.
 */
import { readdirSync, readFileSync } from 'node:fs';
import { loadavg } from 'node:os';
import { startAgate } from '../test/e2e/agate-fixture.js';
import { run as runProcess } from '../test/harness/proc.js';
import { readOptions } from './options.js';
import { initPgbench, PGBENCH } from './pgbench.js';

const TICK_MS = 10; // /proc's clock ticks (USER_HZ 100)

interface GcTotals {
  scavenges: number;
  markCompacts: number;
  allocated: number;
  promoted: number;
  pauseMs: number;
}

/** Sums the `--trace-gc-nvp` lines in `text` (see V8's GCTracer::PrintNVP). */
export function gcTotals(text: string): GcTotals {
  const t: GcTotals = { scavenges: 0, markCompacts: 0, allocated: 0, promoted: 0, pauseMs: 0 };
  for (const line of text.split('\n')) {
    const kind = / gc=(\w+) /.exec(line)?.[1];
    if (kind === undefined) continue;
    const field = (name: string) => Number(new RegExp(` ${name}=([\\d.]+)`).exec(line)?.[1] ?? 0);
    if (kind === 's') t.scavenges += 1;
    else if (kind === 'mc' || kind === 'mmc') t.markCompacts += 1;
    t.allocated += field('allocated');
    t.promoted += field('promoted');
    t.pauseMs += field('pause');
  }
  return t;
}

/** CPU ms so far of a process's main thread and of all its threads. */
function cpuMs(pid: number): { main: number; all: number } {
  const ticks = (path: string) => {
    const f = readFileSync(path, 'utf8');
    const rest = f.slice(f.lastIndexOf(')') + 2).split(' ');
    return (Number(rest[11]) + Number(rest[12])) * TICK_MS;
  };
  let all = 0;
  for (const tid of readdirSync(`/proc/${pid}/task`)) all += ticks(`/proc/${pid}/task/${tid}/stat`);
  return { main: ticks(`/proc/${pid}/task/${pid}/stat`), all };
}

async function pgbench(env: NodeJS.ProcessEnv, seconds: number, rate: number): Promise<number> {
  const r = await runProcess(PGBENCH, ['-n', '-S', '-M', 'prepared', '-c', '8', '-j', '2', '-T', String(seconds), ...(rate > 0 ? ['-R', String(rate)] : [])], { env });
  const n = /number of transactions actually processed: (\d+)/.exec(r.stdout)?.[1];
  if (r.code !== 0 || n === undefined) throw new Error(`pgbench failed (${r.code}): ${r.stderr}`);
  return Number(n);
}

export async function run(args: string[]): Promise<void> {
  const { seconds, rate, runs } = readOptions(args, { numbers: { seconds: 10, rate: 0, runs: 1 } });
  console.log(`\n\`agate start\` under pgbench -S -M prepared, 8 clients, ${seconds} s${rate > 0 ? ` at -R ${rate}` : ''} after an 8 s warm-up; V8's --trace-gc-nvp over the measured run\n`);
  console.log('| run | statements | TPS | bytes allocated / statement | bytes promoted / statement | scavenges / 10k statements | mark-compacts / 10k statements | GC pause µs / statement (wall) | CPU µs / statement: process / main thread | load avg |');
  console.log('|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|');
  for (let i = 1; i <= runs; i++) {
    // AGATE_BENCH_NODE_ARGS: more Node.js flags for Agate (e.g. a young generation size to compare).
    const agate = await startAgate({ nodeArgs: ['--trace-gc-nvp', ...(process.env.AGATE_BENCH_NODE_ARGS ?? '').split(' ').filter(Boolean)] });
    try {
      const { base } = await initPgbench(agate);
      const via = { ...base, PGPASSWORD: await agate.token() };
      await pgbench(via, 8, rate);
      const from = agate.logs().length;
      const cpu0 = cpuMs(agate.pid);
      const n = await pgbench(via, seconds, rate);
      const cpu1 = cpuMs(agate.pid);
      const gc = gcTotals(agate.logs().slice(from));
      const per = (x: number) => x / n;
      console.log(`| ${i} | ${n} | ${(n / seconds).toFixed(0)} | ${per(gc.allocated).toFixed(0)} | ${per(gc.promoted).toFixed(0)} | ${(per(gc.scavenges) * 1e4).toFixed(1)} | ${(per(gc.markCompacts) * 1e4).toFixed(2)} | ${(per(gc.pauseMs) * 1000).toFixed(1)} | ${(per(cpu1.all - cpu0.all) * 1000).toFixed(0)} / ${(per(cpu1.main - cpu0.main) * 1000).toFixed(0)} | ${loadavg()[0]!.toFixed(1)} |`);
    } finally {
      await agate.cleanup();
    }
  }
}

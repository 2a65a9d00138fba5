/**
 * Event-loop diagnosis for benchmarks, loaded into the Agate process with
 * `AGATE_BENCH_NODE_ARGS="--import <repo>/dist/bench/loop-diag.js"`; never part of the product.
 *
 * Every second it appends one JSON line to `$LOOP_DIAG_OUT` (default
 * `<tmpdir>/agate-loop-diag-<pid>.jsonl`): the loop delay percentiles of that second, the GC pauses,
 * and every stall of the loop longer than STALL_MS split into where the main thread's time went,
 * from the kernel's own accounting (/proc/self/task/<pid>/schedstat): running (JavaScript, GC or
 * a synchronous system call), waiting for a core (other processes had it), or neither (blocked in
 * the kernel: a synchronous read, write or page fault).
 */
import { appendFileSync, readdirSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { monitorEventLoopDelay, performance, PerformanceObserver } from 'node:perf_hooks';
import { isMainThread } from 'node:worker_threads';

/** A turn of the loop longer than this is a stall worth explaining. */
const STALL_MS = 4;
const TICK_MS = 1;
const out = process.env.LOOP_DIAG_OUT ?? join(tmpdir(), `agate-loop-diag-${process.pid}.jsonl`);
const schedstat = `/proc/self/task/${process.pid}/schedstat`;

/** Nanoseconds the main thread ran, and waited on a run queue, so far. */
function sched(): [number, number] {
  const [run, wait] = readFileSync(schedstat, 'utf8').split(' ');
  return [Number(run) / 1e6, Number(wait) / 1e6];
}

/** CPU ms per thread name (comm) of this process so far: what else of Agate's competes for the cores. */
function threadCpu(): Map<string, number> {
  const out = new Map<string, number>();
  for (const tid of readdirSync('/proc/self/task')) {
    try {
      const stat = readFileSync(`/proc/self/task/${tid}/stat`, 'utf8');
      const name = stat.slice(stat.indexOf('(') + 1, stat.lastIndexOf(')')).replace(/[0-9]+$/, '#');
      const f = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
      out.set(name, (out.get(name) ?? 0) + (Number(f[11]) + Number(f[12])) * 10);
    } catch {
      // the thread ended meanwhile
    }
  }
  return out;
}

interface Gc {
  start: number;
  ms: number;
  kind: number;
}

if (isMainThread) start();

function start(): void {
const delay = monitorEventLoopDelay({ resolution: 1 });
delay.enable();
let gcs: Gc[] = [];
new PerformanceObserver((list) => {
  for (const e of list.getEntries()) gcs.push({ start: e.startTime, ms: e.duration, kind: ((e as unknown as { detail?: { kind?: number } }).detail?.kind ?? 0) });
}).observe({ entryTypes: ['gc'] });

interface Stall {
  at: number;
  ms: number;
  runMs: number;
  waitMs: number;
  gcMs: number;
}
let stalls: Stall[] = [];
let last = performance.now();
let [lastRun, lastWait] = sched();
const tick = setInterval(() => {
  const now = performance.now();
  const [run, wait] = sched();
  const gap = now - last - TICK_MS;
  if (gap > STALL_MS) {
    // GC inside this gap (the observer reports it a little later: matched when the second ends).
    stalls.push({ at: last, ms: gap, runMs: run - lastRun, waitMs: wait - lastWait, gcMs: 0 });
  }
  last = now;
  lastRun = run;
  lastWait = wait;
}, TICK_MS);
tick.unref();

let threads = threadCpu();
const report = setInterval(() => {
  const nowThreads = threadCpu();
  const threadMs: Record<string, number> = {};
  for (const [name, ms] of nowThreads) if (ms - (threads.get(name) ?? 0) > 0) threadMs[name] = ms - (threads.get(name) ?? 0);
  threads = nowThreads;
  const done = gcs;
  gcs = [];
  for (const s of stalls) {
    for (const g of done) {
      const overlap = Math.min(s.at + s.ms + TICK_MS, g.start + g.ms) - Math.max(s.at, g.start);
      if (overlap > 0) s.gcMs += overlap;
    }
  }
  const sum = (xs: number[]) => xs.reduce((a, b) => a + b, 0);
  const line = {
    t: new Date().toISOString(),
    loopP50: delay.percentile(50) / 1e6,
    loopP99: delay.percentile(99) / 1e6,
    loopMax: delay.max / 1e6,
    gcCount: done.length,
    gcMs: sum(done.map((g) => g.ms)),
    gcMaxMs: Math.max(0, ...done.map((g) => g.ms)),
    gcOver4: done.filter((g) => g.ms > 4).map((g) => `${g.kind}:${g.ms.toFixed(1)}`),
    stalls: stalls.length,
    stallMs: sum(stalls.map((s) => s.ms)),
    stallRunMs: sum(stalls.map((s) => s.runMs)),
    stallWaitMs: sum(stalls.map((s) => s.waitMs)),
    stallGcMs: sum(stalls.map((s) => s.gcMs)),
    worst: stalls.sort((a, b) => b.ms - a.ms).slice(0, 5).map((s) => `${s.ms.toFixed(1)}=run ${s.runMs.toFixed(1)}+wait ${s.waitMs.toFixed(1)} gc ${s.gcMs.toFixed(1)}`),
    threadMs,
    heapMiB: Math.round(process.memoryUsage().heapUsed / 2 ** 20),
  };
  stalls = [];
  delay.reset();
  appendFileSync(out, JSON.stringify(line) + '\n');
}, 1000);
report.unref();
}

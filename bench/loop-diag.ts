/**
 * Event-loop diagnosis for benchmarks, preloaded into the Agate process with `--import`
 * (`AGATE_BENCH_LOOP_DIAG=1 npm run bench -- pg` does it); never part of the product.
 *
 * Every second it appends one JSON line (loop-diag-report.ts: LoopDiagLine) to `$LOOP_DIAG_OUT`
 * (default `<tmpdir>/agate-loop-diag-<pid>.jsonl`): the loop delay of that second, the GC pauses,
 * the CPU time of each of the process's threads, and every stall of the loop longer than
 * STALL_MS, split by the kernel's own accounting of the main thread
 * (/proc/self/task/<pid>/schedstat) into running (JavaScript, GC, a system call) and waiting
 * for a core (runnable while other threads or processes had both cores).
 *
 * Its own cost: a 1 ms timer reading schedstat, about 1-2 % of a core.
 */
import { appendFileSync, readdirSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { monitorEventLoopDelay, performance, PerformanceObserver } from 'node:perf_hooks';
import { isMainThread } from 'node:worker_threads';
import type { LoopDiagLine } from './loop-diag-report.js';

/** A turn of the loop this much longer than the timer's period is a stall worth explaining. */
const STALL_MS = 4;
const TICK_MS = 1;

interface Gc {
  start: number;
  ms: number;
  kind: number;
}

interface Stall {
  at: number;
  ms: number;
  runMs: number;
  waitMs: number;
  gcMs: number;
}

// Worker threads inherit --import: only the main thread's loop is diagnosed.
if (isMainThread) start(process.env.LOOP_DIAG_OUT ?? join(tmpdir(), `agate-loop-diag-${process.pid}.jsonl`));

function start(out: string): void {
  const schedstat = `/proc/self/task/${process.pid}/schedstat`;
  /** Milliseconds the main thread has run, and waited on a run queue, so far. */
  const sched = (): [number, number] => {
    const [run, wait] = readFileSync(schedstat, 'utf8').split(' ');
    return [Number(run) / 1e6, Number(wait) / 1e6];
  };

  const delay = monitorEventLoopDelay({ resolution: 1 });
  delay.enable();
  let gcs: Gc[] = [];
  new PerformanceObserver((list) => {
    for (const e of list.getEntries()) gcs.push({ start: e.startTime, ms: e.duration, kind: (e as unknown as { detail?: { kind?: number } }).detail?.kind ?? 0 });
  }).observe({ entryTypes: ['gc'] });

  let stalls: Stall[] = [];
  let last = performance.now();
  let [lastRun, lastWait] = sched();
  setInterval(() => {
    const now = performance.now();
    const [run, wait] = sched();
    const gap = now - last - TICK_MS;
    // The GC inside a stall is matched when the second ends (the observer reports a little later).
    if (gap > STALL_MS) stalls.push({ at: last, ms: gap, runMs: run - lastRun, waitMs: wait - lastWait, gcMs: 0 });
    last = now;
    lastRun = run;
    lastWait = wait;
  }, TICK_MS).unref();

  let threads = threadCpu();
  setInterval(() => {
    const nowThreads = threadCpu();
    const threadMs: Record<string, number> = {};
    for (const [name, ms] of nowThreads) if (ms > (threads.get(name) ?? 0)) threadMs[name] = ms - (threads.get(name) ?? 0);
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
    const line: LoopDiagLine = {
      t: Date.now(),
      pid: process.pid,
      loopP99: delay.percentile(99) / 1e6,
      loopMax: delay.max / 1e6,
      gcCount: done.length,
      gcMs: sum(done.map((g) => g.ms)),
      gcOver4: done.filter((g) => g.ms > 4).length,
      gcKinds: done.filter((g) => g.ms > 4).map((g) => `${g.kind}:${g.ms.toFixed(1)}`),
      stalls: stalls.length,
      stallMs: sum(stalls.map((s) => s.ms)),
      stallRunMs: sum(stalls.map((s) => s.runMs)),
      stallWaitMs: sum(stalls.map((s) => s.waitMs)),
      stallGcMs: sum(stalls.map((s) => s.gcMs)),
      threadMs,
      heapMiB: Math.round(process.memoryUsage().heapUsed / 2 ** 20),
    };
    stalls = [];
    delay.reset();
    appendFileSync(out, JSON.stringify(line) + '\n');
  }, 1000).unref();
}

/**
 * CPU ms per thread of this process so far. Node's own threads are all named `node`: they are
 * told apart by creation order (`node+N`, N = tid - pid: V8's GC and compiler helpers first,
 * then libuv's pool as it is used, worker threads later); the engine names its threads.
 */
function threadCpu(): Map<string, number> {
  const out = new Map<string, number>();
  for (const tid of readdirSync('/proc/self/task')) {
    try {
      const stat = readFileSync(`/proc/self/task/${tid}/stat`, 'utf8');
      let name = stat.slice(stat.indexOf('(') + 1, stat.lastIndexOf(')')).replace(/[0-9]+$/, '#');
      if (tid === String(process.pid)) name = 'main';
      else if (name === 'node') name = `node+${Number(tid) - process.pid}`;
      const f = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
      out.set(name, (out.get(name) ?? 0) + (Number(f[11]) + Number(f[12])) * 10); // utime + stime, 10 ms ticks
    } catch {
      // the thread ended meanwhile
    }
  }
  return out;
}

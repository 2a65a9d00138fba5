/** Summaries of loop-diag.ts's per-second lines over one benchmark row. */
import { existsSync, readFileSync } from 'node:fs';

/** One second of one process, as loop-diag.ts writes it. */
export interface LoopDiagLine {
  /** End of the second, ms since the epoch. */
  t: number;
  pid: number;
  /** Event-loop delay of that second (1 ms resolution). */
  loopP99: number;
  loopMax: number;
  gcCount: number;
  /** Wall time of the main thread's GC pauses. */
  gcMs: number;
  gcOver4: number;
  /** `kind:ms` of the pauses over 4 ms (kind 1 scavenge, 4 mark-compact, 8 incremental, 16 weak callbacks). */
  gcKinds: string[];
  /** Turns of the loop more than 4 ms late, in total, and where the main thread was meanwhile. */
  stalls: number;
  stallMs: number;
  stallRunMs: number;
  stallWaitMs: number;
  stallGcMs: number;
  /** CPU ms of each thread in that second: `main`, `node+N` (V8 helpers, libuv pool, workers), engine threads by name. */
  threadMs: Record<string, number>;
  heapMiB: number;
}

export function readLoopDiag(path: string): LoopDiagLine[] {
  if (!existsSync(path)) return [];
  return readFileSync(path, 'utf8').split('\n').filter(Boolean).map((l) => JSON.parse(l) as LoopDiagLine);
}

/** Markdown cells for one process over [from, to] (ms since the epoch): per-second rates. */
export function loopDiagCells(lines: readonly LoopDiagLine[], pid: number, from: number, to: number): string[] {
  // A line covers the second before `t`: only seconds wholly inside the row count.
  const mine = lines.filter((l) => l.pid === pid && l.t - 1000 >= from && l.t <= to);
  const n = mine.length;
  if (n === 0) return ['—', '—', '—', '—', '—', '—'];
  const per = (f: (l: LoopDiagLine) => number) => (mine.reduce((a, l) => a + f(l), 0) / n).toFixed(0);
  const p99s = mine.map((l) => l.loopP99).sort((a, b) => a - b);
  const helpers = (l: LoopDiagLine) => Object.entries(l.threadMs).filter(([k]) => k.startsWith('node+')).reduce((a, [, v]) => a + v, 0);
  const engine = (l: LoopDiagLine) => Object.entries(l.threadMs).filter(([k]) => k !== 'main' && !k.startsWith('node+')).reduce((a, [, v]) => a + v, 0);
  return [
    `${p99s[n >> 1]!.toFixed(1)} / ${Math.max(...mine.map((l) => l.loopMax)).toFixed(0)}`,
    `${per((l) => l.gcMs)} (${per((l) => l.gcOver4)} > 4 ms)`,
    per((l) => l.stallMs),
    `${per((l) => Math.max(0, l.stallRunMs - l.stallGcMs))} / ${per((l) => l.stallGcMs)} / ${per((l) => l.stallWaitMs)}`,
    `${per((l) => l.threadMs.main ?? 0)} / ${per(helpers)} / ${per(engine)}`,
    String(n),
  ];
}

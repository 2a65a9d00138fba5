/**
 * `npm run bench -- pg-mem [--transactions N] [--rate R] [--stream-gb G] [--rounds K] [--env "K=V …"]… [--node-args "--flag …"]…`:
 * what `agate start`'s anonymous memory holds after a fixed amount of work, and while a large
 * result streams after it. A fixed number of statements (pgbench -t, 8 clients, prepared) instead
 * of a fixed time, so a loaded machine changes the work less than it changes a 10 s run.
 *
 * Each variant gets a fresh PostgreSQL and `agate start`: this build as is, this build with each
 * `--env` list set in its environment (the C allocator's tunables are read only at process start),
 * this build under each `--node-args` list of Node.js flags, and another build when
 * AGATE_BENCH_BASELINE names its `bin/agate.js`. Rounds alternate the
 * variants. RssAnon is split by where its pages live (/proc/PID/smaps): glibc's main arena (the
 * `[heap]` mapping), its other arenas (64 MiB-aligned heaps, one per thread that allocated, up to
 * 8 per core), and everything else (V8's heap and code, the engine's jemalloc, WebAssembly, thread
 * stacks); V8's heap and the engine's memory tracker come from Agate's own /metrics.
 */
import { readFileSync } from 'node:fs';
import { loadavg } from 'node:os';
import { memory, ownView, stream, type Memory, type OwnView } from './pg.js';
import { startAgate } from '../test/e2e/agate-fixture.js';
import { findFreePort } from '../test/harness/postgres.js';
import { run as runProcess } from '../test/harness/proc.js';
import { readOptions } from './options.js';
import { initPgbench, PGBENCH } from './pgbench.js';

const TICK_MS = 10; // /proc's clock ticks (USER_HZ 100)
/** glibc's non-main arenas are heaps of at most HEAP_MAX_SIZE (64 MiB on 64-bit), aligned to it. */
const ARENA_ALIGN = 64 * 2 ** 20;

interface Variant {
  name: string;
  env?: Record<string, string>;
  nodeArgs?: string[];
  bin?: string;
}

/** RssAnon in MiB by where it lives: glibc's main arena, its other arenas, the rest. */
function anonSplit(pid: number): { mainArena: number; arenas: number; arenaCount: number } {
  let mainArena = 0;
  let arenas = 0;
  let arenaCount = 0;
  let current: { start: number; name: string } | undefined;
  for (const line of readFileSync(`/proc/${pid}/smaps`, 'utf8').split('\n')) {
    const head = /^([0-9a-f]+)-[0-9a-f]+ \S+ \S+ \S+ \S+\s*(.*)$/.exec(line);
    if (head !== null) {
      current = { start: parseInt(head[1]!, 16), name: head[2]! };
      continue;
    }
    const anon = /^Anonymous:\s+(\d+) kB/.exec(line);
    if (anon === null || current === undefined || anon[1] === '0') continue;
    const mib = Number(anon[1]) / 1024;
    if (current.name === '[heap]') mainArena += mib;
    else if (current.name === '' && current.start % ARENA_ALIGN === 0) (arenas += mib), (arenaCount += 1);
  }
  return { mainArena, arenas, arenaCount };
}

function cpuMs(pid: number): number {
  const f = readFileSync(`/proc/${pid}/stat`, 'utf8');
  const rest = f.slice(f.lastIndexOf(')') + 2).split(' ');
  return (Number(rest[11]) + Number(rest[12])) * TICK_MS;
}

function row(variant: string, round: number, when: string, m: Memory, v: OwnView, pid: number, extra = ''): void {
  // A preloaded probe (AGATE_BENCH_NODE_ARGS="--import …") may dump more on SIGUSR2; without one the signal would end Agate.
  if (process.env.AGATE_BENCH_PROBE_SIGNAL === '1') process.kill(pid, 'SIGUSR2');
  const a = anonSplit(pid);
  const rest = m.anon - a.mainArena - a.arenas - v.heapTotal - v.engine;
  console.log(`| ${variant} | ${round} | ${when} | ${m.anon.toFixed(0)} | ${v.heapUsed.toFixed(0)} / ${v.heapTotal.toFixed(0)} | ${v.engine.toFixed(0)} | ${a.mainArena.toFixed(0)} | ${a.arenas.toFixed(0)} (${a.arenaCount}) | ${rest.toFixed(0)} | ${extra} | ${loadavg()[0]!.toFixed(1)} |`);
}

// AGATE_BENCH_NODE_ARGS: Node.js flags for every Agate process (a profiler, a preloaded probe).
const nodeArgs = (process.env.AGATE_BENCH_NODE_ARGS ?? '').split(' ').filter(Boolean);

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

async function measure(variant: Variant, round: number, transactions: number, streamGb: number, rate: number): Promise<void> {
  const opsPort = await findFreePort();
  const opsUrl = `http://127.0.0.1:${opsPort}`;
  const agate = await startAgate({ env: variant.env, bin: variant.bin, nodeArgs: [...nodeArgs, ...(variant.nodeArgs ?? [])], extraYaml: `ops: { listen: "127.0.0.1:${opsPort}" }\n` });
  try {
    const { base } = await initPgbench(agate);
    row(variant.name, round, 'idle after start', memory(agate.pid), await ownView(opsUrl), agate.pid);
    const cpu0 = cpuMs(agate.pid);
    const started = Date.now();
    const r = await runProcess(PGBENCH, ['-n', '-S', '-M', 'prepared', '-c', '8', '-j', '2', '-t', String(transactions), ...(rate > 0 ? ['-R', String(rate)] : [])], { env: { ...base, PGPASSWORD: await agate.token() } });
    const n = Number(/number of transactions actually processed: (\d+)/.exec(r.stdout)?.[1] ?? NaN);
    if (r.code !== 0 || !Number.isFinite(n)) throw new Error(`pgbench failed (${r.code}): ${r.stderr}`);
    const cpu = `${n} statements, ${((n * 1000) / (Date.now() - started)).toFixed(0)}/s, CPU ${(((cpuMs(agate.pid) - cpu0) * 1000) / n).toFixed(0)} µs each`;
    // The ledger's last batch lands within a second of the last statement.
    await sleep(2_000);
    row(variant.name, round, '2 s after pgbench', memory(agate.pid), await ownView(opsUrl), agate.pid, cpu);
    if (streamGb > 0) {
      const s = await stream(`${variant.name}, round ${round}`, { host: agate.host, port: agate.port, pid: agate.pid, token: () => agate.token() }, streamGb);
      row(variant.name, round, `peak while ${streamGb} GiB stream`, s.peak, await ownView(opsUrl), agate.pid, 'V8 and splits: after the stream');
    }
    await sleep(30_000);
    row(variant.name, round, '30 s idle after', memory(agate.pid), await ownView(opsUrl), agate.pid);
  } finally {
    await agate.cleanup();
  }
}

export async function run(args: string[]): Promise<void> {
  const o = readOptions(args, { numbers: { transactions: 6_000, 'stream-gb': 2, rounds: 1, rate: 0 }, repeated: ['env', 'node-args'] });
  const { transactions, rounds, rate } = o;
  const streamGb = o['stream-gb'];
  const words = (list: string) => list.split(/\s+/).filter(Boolean);
  const variants: Variant[] = [{ name: 'this build' }];
  for (const list of o.env) variants.push({ name: `this build, ${list}`, env: Object.fromEntries(words(list).map((kv) => kv.split('=', 2) as [string, string])) });
  for (const list of o['node-args']) variants.push({ name: `this build, node ${list}`, nodeArgs: words(list) });
  const baseline = process.env.AGATE_BENCH_BASELINE;
  if (baseline !== undefined) variants.push({ name: `baseline ${baseline}`, bin: baseline });
  console.log(`\n\`agate start\` after pgbench -S -M prepared -c 8 -j 2 -t ${transactions}${rate > 0 ? ` -R ${rate}` : ''}${streamGb > 0 ? `, then a ${streamGb} GiB result streamed` : ''} (${new Date().toISOString()}); MiB\n`);
  console.log('| variant | round | when | RssAnon | V8 heap used / total | engine tracked | glibc main arena | glibc other arenas (count) | rest (code, WebAssembly, stacks, jemalloc free) | work | load avg |');
  console.log('|---|---:|---|---:|---:|---:|---:|---:|---:|---|---:|');
  for (let round = 1; round <= rounds; round++) {
    for (const v of variants) await measure(v, round, transactions, streamGb, rate);
  }
}

/**
 * SSH proxy throughput, side by side in one run: `scp` of one file straight to a real sshd and
 * through Agate's SSH proxy (a separate process: bench/ssh-proxy-child.ts), upload then download,
 * with the proxy process's peak RSS (VmHWM) read from /proc while it ran.
 *
 * `npm run bench -- ssh [--mb 1024] [--runs 1]`
 */
import { chownSync, mkdtempSync, readFileSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { startOidcIssuer } from '../test/harness/oidc-issuer.js';
import { startListeningChild } from './listening-child.js';
import { describeFailure, run as runProcess } from '../test/harness/proc.js';
import { startSshd } from '../test/harness/sshd.js';

const COMMON = ['-q', '-o', 'StrictHostKeyChecking=no', '-o', 'UserKnownHostsFile=/dev/null', '-o', 'LogLevel=ERROR'];

export async function run(args: string[]): Promise<void> {
  const { values } = parseArgs({ args, options: { mb: { type: 'string', default: '1024' }, runs: { type: 'string', default: '1' } } });
  const mb = Number(values.mb);
  const runs = Number(values.runs);
  const sshd = await startSshd();
  const issuer = await startOidcIssuer({ audience: 'agate' });
  const work = mkdtempSync(join(tmpdir(), 'agate-ssh-bench-'));
  const remote = mkdtempSync(join(tmpdir(), 'agate-ssh-bench-remote-'));
  const uid = Number((await runProcess('id', ['-u', sshd.user])).stdout.trim());
  chownSync(remote, uid, Number((await runProcess('id', ['-g', sshd.user])).stdout.trim()));
  // AGATE_BENCH_NODE_ARGS (e.g. --cpu-prof) profiles the proxy process.
  const nodeArgs = (process.env.AGATE_BENCH_NODE_ARGS ?? '').split(' ').filter(Boolean);
  const { child, port } = await startListeningChild('the proxy process', join(import.meta.dirname, 'ssh-proxy-child.js'), [JSON.stringify({ issuer: issuer.issuer, jwksUri: issuer.jwksUri, sshd })], nodeArgs);
  try {
    const file = join(work, 'payload.bin');
    // Incompressible data, so neither path gains from compression.
    await must('dd', ['if=/dev/urandom', `of=${file}`, 'bs=1M', `count=${mb}`, 'status=none']);
    const size = statSync(file).size;
    const token = await issuer.mint({ sub: 'repo:acme/bench:ref:refs/heads/main' }, { alg: 'ES256' });
    const direct = (from: string, to: string) => must('scp', [...COMMON, '-P', String(sshd.port), '-i', sshd.clientKeyFile, '-o', 'IdentitiesOnly=yes', from, to]);
    const agate = (from: string, to: string) => must('sshpass', ['-e', 'scp', ...COMMON, '-P', String(port), '-o', 'PreferredAuthentications=password', '-o', 'PubkeyAuthentication=no', from, to], { SSHPASS: token });
    const rssBefore = memory(child.pid!);
    console.log(`\nscp of a ${mb} MiB file (random bytes), ${runs} run(s) each, ${new Date().toISOString()}; proxy process RSS before: ${rssBefore.rss} MB\n`);
    console.log('| direction | path | seconds | MB/s | ratio to direct | proxy CPU s |');
    console.log('|---|---|---:|---:|---:|---:|');
    for (const direction of ['upload', 'download'] as const) {
      const times: Record<string, number> = {};
      for (const [name, copy, host] of [['direct', direct, `${sshd.user}@127.0.0.1`], ['through Agate', agate, 'box@127.0.0.1']] as const) {
        let best = Infinity;
        let cpu = Infinity;
        for (let i = 0; i < runs; i += 1) {
          const cpuBefore = cpuSeconds(child.pid!);
          const started = performance.now();
          if (direction === 'upload') await copy(file, `${host}:${remote}/copy.bin`);
          else await copy(`${host}:${remote}/copy.bin`, join(work, 'back.bin'));
          const took = (performance.now() - started) / 1000;
          if (took < best) cpu = cpuSeconds(child.pid!) - cpuBefore;
          best = Math.min(best, took);
        }
        times[name] = best;
        const ratio = name === 'direct' ? '1.00' : (times.direct! / best).toFixed(2);
        const proxyCpu = name === 'direct' ? '' : cpu.toFixed(2);
        console.log(`| ${direction} | ${name} | ${best.toFixed(2)} | ${(size / 1e6 / best).toFixed(1)} | ${ratio} | ${proxyCpu} |`);
      }
    }
    const after = memory(child.pid!);
    console.log(`\nproxy process peak RSS (VmHWM) over the run: ${after.hwm} MB (target < 200 MB); RSS now ${after.rss} MB`);
  } finally {
    // A proxy that already died (the run's error says why) has no exit left to wait for.
    if (child.exitCode === null && child.signalCode === null) {
      child.kill('SIGTERM');
      await new Promise((r) => child.once('exit', r));
    }
    await issuer.close();
    await sshd.stop();
    rmSync(work, { recursive: true, force: true });
    rmSync(remote, { recursive: true, force: true });
  }
}

function memory(pid: number): { rss: number; hwm: number } {
  const status = readFileSync(`/proc/${pid}/status`, 'utf8');
  const kb = (key: string) => Number(new RegExp(`${key}:\\s+(\\d+) kB`).exec(status)?.[1] ?? 0);
  return { rss: Math.round(kb('VmRSS') / 1024), hwm: Math.round(kb('VmHWM') / 1024) };
}

/** User plus system CPU seconds the process has used (/proc/<pid>/stat fields 14 and 15, in clock ticks). */
function cpuSeconds(pid: number): number {
  const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
  const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
  return (Number(fields[11]) + Number(fields[12])) / 100; // CLK_TCK is 100 on Linux
}

async function must(cmd: string, args: string[], env: Record<string, string> = {}): Promise<void> {
  const r = await runProcess(cmd, args, { env: { ...process.env, ...env }, timeoutMs: 3_600_000 });
  if (r.code !== 0) throw new Error(describeFailure(cmd, args, r));
}

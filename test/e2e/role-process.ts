// Runs one Agate service (`agate proxy|policy|ledger|query --config FILE`) as its own process,
// for the distributed tests: start, wait for its "agate <role> started" log line, stop or kill.
import { spawn, type ChildProcess } from 'node:child_process';
import { AGATE_BIN, REPO_ROOT, cleanEnv } from './agate-process.js';

export type Role = 'proxy' | 'policy' | 'ledger' | 'query';

export interface RoleProcess {
  role: Role;
  readonly running: boolean;
  /** The process id (to watch its memory). */
  readonly pid: number;
  /** The exit code of the last run once it exited (null while running, or when a signal ended it). */
  readonly exitCode: number | null;
  stderr(): string;
  /** SIGTERM (graceful) or SIGKILL (crash), then waits for the exit. */
  stop(signal?: 'SIGTERM' | 'SIGKILL'): Promise<void>;
  /** Starts the same role with the same config again. */
  restart(): Promise<void>;
}

const live = new Set<ChildProcess>();
process.on('exit', () => live.forEach((c) => c.kill('SIGKILL')));

/** `nodeArgs` go to node before the script (e.g. `--cpu-prof` for a benchmark). */
export async function startRole(role: Role, configPath: string, readyTimeoutMs = 120_000, nodeArgs: string[] = []): Promise<RoleProcess> {
  let child: ChildProcess;
  let stderr = '';
  const launch = () =>
    new Promise<void>((resolve, reject) => {
      stderr = '';
      child = spawn(process.execPath, [...nodeArgs, AGATE_BIN, role, '--config', configPath], { cwd: REPO_ROOT, env: cleanEnv(), stdio: ['ignore', 'ignore', 'pipe'] });
      live.add(child);
      const timer = setTimeout(() => {
        // Killed, not left running: a child still holding its pipe keeps the test process alive for good.
        child.kill('SIGKILL');
        reject(new Error(`agate ${role} did not start within ${readyTimeoutMs} ms:\n${stderr.slice(-3000)}`));
      }, readyTimeoutMs);
      child.stderr!.setEncoding('utf8').on('data', (d: string) => {
        stderr = (stderr + d).slice(-50_000);
        if (stderr.includes(`"msg":"agate ${role} started"`)) {
          clearTimeout(timer);
          resolve();
        }
      });
      child.once('exit', (code, signal) => {
        live.delete(child);
        clearTimeout(timer);
        reject(new Error(`agate ${role} exited (${code ?? signal}) before starting:\n${stderr.slice(-3000)}`));
      });
    });
  await launch();
  return {
    role,
    get running() {
      return child.exitCode === null && child.signalCode === null;
    },
    get pid() {
      return child.pid ?? 0;
    },
    get exitCode() {
      return child.exitCode;
    },
    stderr: () => stderr,
    stop: async (signal = 'SIGTERM') => {
      if (child.exitCode !== null || child.signalCode !== null) return;
      const gone = new Promise((r) => child.once('exit', r));
      child.kill(signal);
      const t = setTimeout(() => child.kill('SIGKILL'), 20_000);
      await gone;
      clearTimeout(t);
    },
    restart: launch,
  };
}

// Runs one of the harness's install-*.sh scripts. Each installs a service's binaries into
// ~/.cache/agate once (a no-op when cached) and prints the install directory as its last line.
import { spawn } from 'node:child_process';
import { join } from 'node:path';
import { packageRoot } from '../../core/src/package-root.js';
import { describeFailure, run } from './proc.js';

interface InstallerOptions {
  /** Kill the script after this long (default: no limit). */
  timeoutMs?: number;
  /**
   * Hold the script's progress (its stderr) back and show the tail only if it fails. By default
   * progress streams to this process's stderr, for builds that take minutes cold.
   */
  quiet?: boolean;
}

/** Runs `test/harness/<script>` and returns the last line it printed (the install directory). */
export async function runInstaller(script: string, opts: InstallerOptions = {}): Promise<string> {
  const path = join(packageRoot(), 'test/harness', script);
  if (opts.quiet === true) {
    const r = await run('bash', [path], { timeoutMs: opts.timeoutMs });
    if (r.code !== 0) throw new Error(describeFailure('bash', [path], r));
    return lastLine(r.stdout);
  }
  const child = spawn('bash', [path], { stdio: ['ignore', 'pipe', 'inherit'] });
  let stdout = '';
  child.stdout.setEncoding('utf8').on('data', (d: string) => (stdout += d));
  const timer = opts.timeoutMs === undefined ? undefined : setTimeout(() => child.kill('SIGKILL'), opts.timeoutMs);
  const code = await new Promise<number | null>((resolve, reject) => {
    child.once('error', reject);
    child.once('close', resolve);
  }).finally(() => clearTimeout(timer));
  if (code !== 0) throw new Error(`${path} failed (exit ${code}); its output is above`);
  return lastLine(stdout);
}

const lastLine = (out: string): string => out.trim().split('\n').pop()!;

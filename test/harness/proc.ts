// Minimal child-process runner for the test harness: collects output, feeds
// stdin, enforces a timeout, and never throws on a non-zero exit so callers
// can build error messages that say what actually failed.
import { spawn, type ChildProcess } from 'node:child_process';

interface RunOptions {
  input?: string;
  env?: NodeJS.ProcessEnv;
  cwd?: string;
  timeoutMs?: number;
}

export interface RunResult {
  code: number | null;
  signal: NodeJS.Signals | null;
  stdout: string;
  stderr: string;
  timedOut: boolean;
}

export function run(cmd: string, args: string[], opts: RunOptions = {}): Promise<RunResult> {
  return new Promise((resolve, reject) => {
    const child = spawn(cmd, args, {
      env: opts.env ?? process.env,
      cwd: opts.cwd,
      stdio: ['pipe', 'pipe', 'pipe'],
      // Own process group, so a timeout also kills grandchildren (runuser ->
      // initdb) instead of orphaning them.
      detached: true,
    });
    let stdout = '';
    let stderr = '';
    let timedOut = false;
    child.stdout.setEncoding('utf8').on('data', (d: string) => (stdout += d));
    child.stderr.setEncoding('utf8').on('data', (d: string) => (stderr += d));
    const timer =
      opts.timeoutMs === undefined
        ? undefined
        : setTimeout(() => {
            timedOut = true;
            try {
              if (child.pid) process.kill(-child.pid, 'SIGKILL');
            } catch {
              child.kill('SIGKILL'); // group already gone; make sure the child is
            }
          }, opts.timeoutMs);
    child.on('error', (err) => {
      if (timer) clearTimeout(timer);
      reject(new Error(`cannot run ${cmd}: ${err.message}`));
    });
    child.on('close', (code, signal) => {
      if (timer) clearTimeout(timer);
      resolve({ code, signal, stdout, stderr, timedOut });
    });
    // The child may exit before reading stdin (EPIPE); its exit status tells the story.
    child.stdin.on('error', () => {});
    child.stdin.end(opts.input ?? '');
  });
}

/** One-line description of a failed run, for error messages. */
export function describeFailure(cmd: string, args: string[], r: RunResult): string {
  const how = r.timedOut ? 'timed out' : r.signal ? `was killed by ${r.signal}` : `exited with ${r.code}`;
  const output = (r.stderr.trim() || r.stdout.trim()).split('\n').slice(-20).join('\n');
  return `${cmd} ${args.join(' ')} ${how}${output ? `:\n${output}` : ''}`;
}

/**
 * Lets the test process exit while a long-lived server child still runs: a test that failed before
 * its teardown would otherwise hang until run.sh's timeout. The caller's `process.once('exit')`
 * handler then kills the child.
 */
export function unrefChild(child: ChildProcess): void {
  child.unref();
  for (const stream of [child.stdin, child.stdout, child.stderr]) (stream as { unref?: () => void } | null)?.unref?.();
}

// run.sh's `timeout` ends a hung test file with SIGTERM, which by default skips 'exit' handlers and
// would leave its servers running; exiting normally lets each harness kill its children.
if (process.listenerCount('SIGTERM') === 0) process.once('SIGTERM', () => process.exit(143));

// helm for the chart tests: built from its Go module by install-helm.sh into ~/.cache/agate/helm-<v>/bin
// (test/run.sh builds it before the suite starts). Runs with its own config, cache and data homes
// in a temp dir, so a test never reads or writes the user's helm setup.
import { spawn } from 'node:child_process';
import { existsSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { run, type RunResult } from './proc.js';

function repoFile(rel: string): string {
  let dir = dirname(fileURLToPath(import.meta.url));
  while (!existsSync(join(dir, 'package.json'))) dir = dirname(dir);
  return join(dir, rel);
}

/** Builds helm when missing (minutes cold; progress on stderr); returns the bin directory. */
export async function installHelm(): Promise<string> {
  const script = repoFile('test/harness/install-helm.sh');
  const child = spawn('bash', [script], { stdio: ['ignore', 'pipe', 'inherit'] });
  let stdout = '';
  child.stdout.setEncoding('utf8').on('data', (d: string) => (stdout += d));
  const code = await new Promise<number | null>((resolve, reject) => {
    child.once('error', reject);
    child.once('close', resolve);
  });
  if (code !== 0) throw new Error(`${script} failed (exit ${code}); its output is above`);
  return stdout.trim().split('\n').pop()!;
}

export interface Helm {
  run(args: string[]): Promise<RunResult>;
  close(): void;
}

export async function helm(): Promise<Helm> {
  const bin = join(await installHelm(), 'helm');
  const home = mkdtempSync(join(tmpdir(), 'agate-helm-'));
  const env = { ...process.env, HELM_CONFIG_HOME: join(home, 'config'), HELM_CACHE_HOME: join(home, 'cache'), HELM_DATA_HOME: join(home, 'data') };
  return {
    run: (args) => run(bin, args, { env, timeoutMs: 120_000 }),
    close: () => rmSync(home, { recursive: true, force: true }),
  };
}

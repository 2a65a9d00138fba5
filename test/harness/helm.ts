// helm for the chart tests: built from its Go module by install-helm.sh into ~/.cache/agate/helm-<v>/bin
// (test/run.sh builds it before the suite starts). Runs with its own config, cache and data homes
// in a temp dir, so a test never reads or writes the user's helm setup.
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { runInstaller } from './installer.js';
import { run, type RunResult } from './proc.js';

/** Builds helm when missing (minutes cold; progress on stderr); returns the bin directory. */
async function installHelm(): Promise<string> {
  return runInstaller('install-helm.sh');
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

// `npm ci` is the first thing a CI job or an image build runs: the committed lock file must agree with
// package.json on every platform, including the optional engine packages (chdb ships one per
// platform) that this machine never installs.
import { suite } from '../harness/suite.js';
import * as assert from 'uvu/assert';
import { spawnSync } from 'node:child_process';
import { copyFileSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { packageRoot } from '../../core/src/package-root.js';

const lock = suite('package-lock.json');

lock('npm ci accepts the committed lock file', () => {
  const dir = mkdtempSync(join(tmpdir(), 'agate-npm-ci-'));
  try {
    for (const f of ['package.json', 'package-lock.json']) copyFileSync(join(packageRoot(), f), join(dir, f));
    const r = spawnSync('npm', ['ci', '--dry-run', '--ignore-scripts', '--no-audit', '--no-fund'], { cwd: dir, encoding: 'utf8', timeout: 120_000 });
    assert.is(r.status, 0, `npm ci --dry-run failed:\n${r.stderr}`);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

lock('every optional engine package chdb names has a lock entry', () => {
  const parsed = JSON.parse(readFileSync(join(packageRoot(), 'package-lock.json'), 'utf8')) as { packages: Record<string, { optionalDependencies?: Record<string, string> }> };
  const optional = Object.keys(parsed.packages['node_modules/chdb']?.optionalDependencies ?? {});
  assert.ok(optional.length > 0, 'chdb lists its per-platform engines as optional dependencies');
  for (const name of optional) assert.ok(parsed.packages[`node_modules/${name}`] !== undefined, `${name} is in the lock file`);
});

lock.run();

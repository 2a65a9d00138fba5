import { spawnSync } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import * as assert from 'uvu/assert';
import { suite } from '../harness/suite.js';
import { countsOf, failuresOf } from './file-result.js';

const SUITE_URL = pathToFileURL(resolve(dirname(fileURLToPath(import.meta.url)), '../harness/suite.js')).href;

/** Runs a test file with `body` after an import of the suite wrapper; its output (no colours) and exit status. */
function runTestFile(body: string): { output: string; code: number | null } {
  const dir = mkdtempSync(join(tmpdir(), 'agate-file-result-'));
  try {
    const file = join(dir, 'x.test.mjs');
    writeFileSync(file, `import { suite } from ${JSON.stringify(SUITE_URL)};\n${body}\n`);
    const r = spawnSync(process.execPath, [file], { encoding: 'utf8', env: { ...process.env, FORCE_COLOR: '0' }, timeout: 20_000 });
    return { output: (r.stdout + r.stderr).replace(/\x1b\[[0-9;]*m/g, ''), code: r.status };
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

const result = suite('test runner: what a file counts for');

result('a passing file counts no failure', () => {
  const { output, code } = runTestFile(`const s = suite('a'); s('one', () => {}); s('two', () => {}); s.run();\nconst t = suite('b'); t('three', () => {}); t.run();`);
  assert.equal(countsOf(output), { passed: 3, total: 3 });
  assert.is(failuresOf(countsOf(output), code), 0);
});

result('each failed test counts one', () => {
  const { output, code } = runTestFile(`const s = suite('a'); s('one', () => {}); s('two', () => { throw new Error('no'); }); s('three', () => { throw new Error('no'); }); s.run();`);
  assert.equal(countsOf(output), { passed: 1, total: 3 });
  assert.is(failuresOf(countsOf(output), code), 2);
});

result('a file whose suite was never run, which prints nothing and exits 0, counts one', () => {
  const { output, code } = runTestFile(`const s = suite('forgot'); s('one', () => { throw new Error('never runs'); });`);
  assert.is(code, 0, 'uvu itself reports nothing');
  assert.is(output.trim(), '');
  assert.is(failuresOf(countsOf(output), code), 1);
});

result('a file that crashes before any suite runs counts one', () => {
  const { output, code } = runTestFile(`throw new Error('import failed');`);
  assert.is.not(code, 0);
  assert.equal(countsOf(output), { passed: 0, total: 0 });
  assert.is(failuresOf(countsOf(output), code), 1);
});

result('a failed before hook counts each test of its suite', () => {
  const { output, code } = runTestFile(`const s = suite('svc'); s.before(() => { throw new Error('no port'); }); s('one', () => {}); s('two', () => {}); s.run();`);
  assert.equal(countsOf(output), { passed: 0, total: 2 });
  assert.is(failuresOf(countsOf(output), code), 2);
});

result.run();

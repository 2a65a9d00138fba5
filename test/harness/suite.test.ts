import { spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync, readdirSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join, relative, resolve } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import * as assert from 'uvu/assert';
import { suite } from './suite.js';

const SOURCE_ROOT = resolve(dirname(fileURLToPath(import.meta.url)), '../../..');

/**
 * Runs a test file that imports `suite` from `from`, whose suites lose errors in plain uvu: a
 * `before` hook that throws, an `after.each` that throws, a test that throws a string.
 */
function runLosingFile(from: string): { status: number | null; out: string } {
  const dir = mkdtempSync(join(tmpdir(), 'agate-suite-'));
  try {
    const file = join(dir, 'hook.test.mjs');
    writeFileSync(file, `import { suite } from ${JSON.stringify(from)};
const pg = suite('pg');
pg.before(async () => {
  await new Promise((r) => setTimeout(r, 1));
  throw new Error('postgres did not start: port 5999 in use\\nFATAL:  could not bind IPv4 address');
});
pg.before(() => console.log('SECOND HOOK RAN'));
let ran = 0;
pg('queries', () => { ran++; });
pg('inserts', () => { ran++; });
pg.after(() => console.log('after hook ran, tests run: ' + ran));
pg.run();
const cleanup = suite('cleanup');
cleanup.after.each((ctx) => { if (ctx.__test__ === 'first') throw new Error('server would not close'); });
cleanup('first', () => {});
cleanup('second', () => { console.log('SECOND TEST RAN'); });
cleanup.run();
const odd = suite('odd');
odd('throws a string', () => { throw 'nope, a string'; });
odd.run();
const other = suite('other');
other('still runs', () => {});
other.run();
`);
    const r = spawnSync(process.execPath, [file], { encoding: 'utf8', env: { ...process.env, FORCE_COLOR: '0' }, timeout: 20_000 });
    return { status: r.status, out: (r.stdout + r.stderr).replace(/\x1b\[[0-9;]*m/g, '') };
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

const hook = suite('harness/suite: errors plain uvu loses');

hook('a failed before hook fails its suite\'s tests with its message, in full once', () => {
  const { status, out } = runLosingFile(pathToFileURL(join(SOURCE_ROOT, 'dist/test/harness/suite.js')).href);
  assert.is(status, 1, out);
  assert.match(out, /Total:\s+6\b/);
  assert.match(out, /Passed:\s+2\b/, 'the second cleanup test and the other suite pass');
  assert.is(out.match(/before hook failed, test not run: Error: postgres did not start: port 5999 in use/g)?.length, 2, out);
  assert.is(out.match(/FATAL: {2}could not bind IPv4 address/g)?.length, 1, 'the whole message is printed, once');
  assert.is(out.match(/hook\.test\.mjs:5:/g)?.length, 1, `the hook's frame is printed once:\n${out}`);
  assert.not.ok(out.includes('SECOND HOOK RAN'), 'hooks after the failed one do not run');
  assert.ok(out.includes('after hook ran, tests run: 0'), 'after hooks still run, to clean up');
});

hook('a failed after.each fails its test, and the next test runs', () => {
  const { out } = runLosingFile(pathToFileURL(join(SOURCE_ROOT, 'dist/test/harness/suite.js')).href);
  assert.match(out, /FAIL\s+cleanup\s+"first"\s+after\.each hook failed: Error: server would not close/);
  assert.ok(out.includes('SECOND TEST RAN'), out);
});

hook('a thrown string fails its test, named', () => {
  const { out } = runLosingFile(pathToFileURL(join(SOURCE_ROOT, 'dist/test/harness/suite.js')).href);
  assert.match(out, /FAIL\s+odd\s+"throws a string"\s+string thrown: nope, a string/);
});

hook('plain uvu loses all three and exits 0 (the reason this wrapper exists)', () => {
  // If an uvu upgrade makes this fail, uvu reports these errors itself and suite.ts can go.
  const { status, out } = runLosingFile(import.meta.resolve('uvu'));
  assert.is(status, 0, out);
  assert.match(out, /\(0 \/ 2\)/);
  for (const lost of ['port 5999', 'server would not close', 'nope, a string', 'SECOND TEST RAN']) assert.not.ok(out.includes(lost), `${lost}:\n${out}`);
});

hook.run();

const guard = suite('harness/suite: every test file uses it');

/** The TypeScript test files of the source tree (tsconfig's folders, not dist or node_modules). */
function sourceTests(dir: string): string[] {
  return readdirSync(dir).flatMap((name) => {
    const path = join(dir, name);
    if (statSync(path).isDirectory()) return name === 'node_modules' || name === 'dist' ? [] : sourceTests(path);
    return name.endsWith('.test.ts') ? [path] : [];
  });
}

guard('no test file imports suite or test from uvu directly', () => {
  const files = ['services', 'core', 'cli', 'schemas', 'deploy', 'bench', 'test', 'tools'].flatMap((d) => sourceTests(join(SOURCE_ROOT, d)));
  assert.ok(files.length > 200, `found only ${files.length} test files under ${SOURCE_ROOT}`);
  const direct = files.filter((f) => /^import [^;]*from 'uvu';/m.test(readFileSync(f, 'utf8'))).map((f) => relative(SOURCE_ROOT, f));
  assert.equal(direct, [], `import { suite } (or { test }) from test/harness/suite.js instead of 'uvu' in:\n${direct.join('\n')}`);
});

guard.run();

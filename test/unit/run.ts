import { spawn } from 'node:child_process';
import { availableParallelism } from 'node:os';
import { dirname, relative, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { countsOf, failuresOf } from './file-result.js';
import { classify, servicesReached, testFiles } from './select.js';

/*
 * `npm run test:unit`: every unit test (see select.ts) in its own Node process, as `npm test`
 * runs them, a few at a time. Prints each file's counts, then "N passed, N failed" and the wall
 * time; exits 1 on any failure. `--list` prints the classification instead of running;
 * `--needs` prints every test file (relative to dist/) with all the services it reaches, one
 * tab-separated line each, for test/run.sh to order the whole suite by.
 */
const ROOT = resolve(dirname(fileURLToPath(import.meta.url)), '../..');
const PER_FILE_TIMEOUT_MS = 60_000;
const NO_TEST = "(it ran no test: is a suite's .run() missing?)";

interface Result { file: string; passed: number; total: number; code: number | null; failures: number; output: string; ms: number }

function runFile(file: string): Promise<Result> {
  const started = Date.now();
  return new Promise((done) => {
    const child = spawn(process.execPath, ['--enable-source-maps', file], { stdio: ['ignore', 'pipe', 'pipe'], env: { ...process.env, FORCE_COLOR: '0' } });
    const chunks: Buffer[] = [];
    child.stdout.on('data', (c: Buffer) => chunks.push(c));
    child.stderr.on('data', (c: Buffer) => chunks.push(c));
    const timer = setTimeout(() => child.kill('SIGKILL'), PER_FILE_TIMEOUT_MS);
    child.on('close', (code) => {
      clearTimeout(timer);
      const output = Buffer.concat(chunks).toString('utf8').replace(/\x1b\[[0-9;]*m/g, '');
      const counts = countsOf(output);
      done({ file, ...counts, code, failures: failuresOf(counts, code), output, ms: Date.now() - started });
    });
  });
}

async function main(): Promise<number> {
  if (process.argv.includes('--needs')) {
    const graph = new Map<string, string[]>();
    for (const f of testFiles(ROOT)) console.log(`${relative(ROOT, f)}\t${servicesReached(f, ROOT, graph).join(' ')}`);
    return 0;
  }
  const { unit, service } = classify(ROOT);
  if (process.argv.includes('--list')) {
    for (const f of unit) console.log(`unit     ${relative(ROOT, f)}`);
    for (const s of service) console.log(`service  ${relative(ROOT, s.file)}  (${s.needs})`);
    return 0;
  }
  if (unit.length === 0) {
    console.error('no unit tests found: build first (npx tsc -p tsconfig.json)');
    return 1;
  }
  const started = Date.now();
  const queue = [...unit];
  const results: Result[] = [];
  const worker = async () => {
    for (let f = queue.shift(); f !== undefined; f = queue.shift()) {
      const r = await runFile(f);
      results.push(r);
      const bad = r.failures > 0;
      console.log(`${bad ? 'FAIL' : 'ok  '} ${relative(ROOT, r.file)}  ${r.passed}/${r.total}  ${(r.ms / 1000).toFixed(1)} s`);
      if (bad) console.log(r.output.split('\n').filter((l) => l.trim() !== '').slice(-40).join('\n'));
      if (r.total === 0 && r.code === 0) console.log(NO_TEST);
    }
  };
  await Promise.all(Array.from({ length: Math.max(1, availableParallelism()) }, worker));
  const passed = results.reduce((s, r) => s + r.passed, 0);
  const failedFiles = results.filter((r) => r.failures > 0);
  const failed = failedFiles.reduce((s, r) => s + r.failures, 0);
  console.log(`\n${unit.length} unit test files (${service.length} others need services: npm test)`);
  for (const r of failedFiles) console.log(`FAILED: ${relative(ROOT, r.file)}`);
  console.log(`${passed} passed, ${failed} failed in ${((Date.now() - started) / 1000).toFixed(1)} s`);
  return failedFiles.length === 0 ? 0 : 1;
}

process.exitCode = await main();

import { readFileSync, readdirSync, statSync } from 'node:fs';
import { dirname, join, relative, resolve } from 'node:path';
import ts from 'typescript';

/*
 * Which compiled test files are unit tests. A unit test is any `*.test.js` whose static import
 * graph reaches none of the service harnesses below nor the embedded ClickHouse engine: it needs
 * nothing installed or started, so `npm run test:unit` runs it in seconds. The rule is read off
 * the imports rather than kept as a list, so a new test is classified the moment it is written.
 */

/** Harness modules that install or start a real service (or the `agate` process in front of one). */
export const SERVICE_MODULES: readonly string[] = [
  'test/harness/postgres.js',
  'test/harness/kafka.js',
  'test/harness/schema-registry.js',
  'test/harness/sshd.js',
  'test/harness/kube-apiserver.js',
  'test/harness/helm.js',
  'test/harness/otelcol.js',
  'test/harness/keycloak.js',
  'test/harness/clickhouse-server.js',
  'test/harness/clickhouse-http-double.js',
  'test/harness/ocsf-validator.js',
  'test/e2e/agate-fixture.js',
];

/** Packages that start a heavy engine in the test process (chdb loads ClickHouse, ~550 MB). */
const SERVICE_PACKAGES: readonly string[] = ['chdb'];

/** What a compiled module imports: absolute paths of relative imports, bare names of packages. */
function importsOf(file: string): string[] {
  // TypeScript's pre-processor finds static, re-exported and literal dynamic imports, and not the
  // word "import" inside a string or a comment.
  const { importedFiles } = ts.preProcessFile(readFileSync(file, 'utf8'), true, true);
  return importedFiles.map(({ fileName: spec }) => (spec.startsWith('.') ? resolve(dirname(file), spec) : packageName(spec)));
}

function packageName(spec: string): string {
  const parts = spec.split('/');
  return spec.startsWith('@') ? parts.slice(0, 2).join('/') : parts[0]!;
}

/**
 * The service a test needs, or undefined for a unit test: the first service module or package
 * found in its import graph, as a path relative to `root` (the `dist` directory) or a package name.
 */
export function serviceNeeded(testFile: string, root: string, graph = new Map<string, string[]>()): string | undefined {
  return servicesReached(testFile, root, graph)[0];
}

/**
 * Every service module and package in a test's import graph, in the order a depth-first walk
 * meets them (the first is `serviceNeeded`'s answer). test/run.sh reads it through
 * `run.js --needs` to hold back only the files whose tools are still being built.
 */
export function servicesReached(testFile: string, root: string, graph = new Map<string, string[]>()): string[] {
  const services = new Set(SERVICE_MODULES.map((m) => resolve(root, m)));
  const found: string[] = [];
  const seen = new Set<string>();
  const stack = [resolve(testFile)];
  while (stack.length > 0) {
    const file = stack.pop()!;
    if (seen.has(file)) continue;
    seen.add(file);
    if (services.has(file)) found.push(relative(root, file));
    let deps = graph.get(file);
    if (deps === undefined) graph.set(file, (deps = importsOf(file)));
    for (const d of deps) {
      if (SERVICE_PACKAGES.includes(d) && !found.includes(d)) found.push(d);
      if (d.startsWith('/') && d.endsWith('.js')) stack.push(d);
    }
  }
  return found;
}

/** Every `*.test.js` under `dir`, sorted. */
export function testFiles(dir: string): string[] {
  const out: string[] = [];
  for (const name of readdirSync(dir)) {
    const path = join(dir, name);
    if (statSync(path).isDirectory()) out.push(...testFiles(path));
    else if (name.endsWith('.test.js')) out.push(path);
  }
  return out.sort();
}

/** The unit tests under `root` (the build output), and the others with the service each needs. */
export function classify(root: string): { unit: string[]; service: Array<{ file: string; needs: string }> } {
  const graph = new Map<string, string[]>();
  const unit: string[] = [];
  const service: Array<{ file: string; needs: string }> = [];
  for (const file of testFiles(root)) {
    const needs = serviceNeeded(file, root, graph);
    if (needs === undefined) unit.push(file);
    else service.push({ file, needs });
  }
  return { unit, service };
}

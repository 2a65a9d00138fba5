import { suite } from '../harness/suite.js';
import * as assert from 'uvu/assert';
import { mkdtempSync, mkdirSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { serviceNeeded, servicesReached } from './select.js';

const DIST = resolve(dirname(fileURLToPath(import.meta.url)), '../..');

// test/run.sh holds back a file until every Go-built tool it reaches is built, so the walk must
// report all services on the import graph, not only the first one.
const reached = suite('services a test reaches');

reached('reports every service module and package on the graph, each once, the first matching serviceNeeded', () => {
  const dir = mkdtempSync(join(tmpdir(), 'agate-reached-'));
  try {
    mkdirSync(join(dir, 'test/harness'), { recursive: true });
    mkdirSync(join(dir, 'test/e2e'), { recursive: true });
    writeFileSync(join(dir, 'test/harness/postgres.js'), 'export const pg = 1;\n');
    writeFileSync(join(dir, 'test/harness/kube-apiserver.js'), "import './postgres.js';\nexport const kube = 1;\n");
    writeFileSync(join(dir, 'test/harness/otelcol.js'), "const chdb = await import('chdb');\n");
    // A service module that imports another: the walk goes on past the first service it meets.
    writeFileSync(join(dir, 'test/e2e/agate-fixture.js'), "export * from '../harness/otelcol.js';\n");
    writeFileSync(join(dir, 'a.test.js'), "import './test/harness/kube-apiserver.js';\nimport './test/e2e/agate-fixture.js';\nimport './b.js';\n");
    writeFileSync(join(dir, 'b.js'), "import './test/harness/postgres.js';\nimport 'chdb';\n");
    writeFileSync(join(dir, 'u.test.js'), "import { suite } from 'uvu';\n");
    const all = servicesReached(join(dir, 'a.test.js'), dir);
    assert.equal([...all].sort(), ['chdb', 'test/e2e/agate-fixture.js', 'test/harness/kube-apiserver.js', 'test/harness/otelcol.js', 'test/harness/postgres.js']);
    assert.is(all[0], serviceNeeded(join(dir, 'a.test.js'), dir));
    assert.equal(servicesReached(join(dir, 'u.test.js'), dir), []);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

reached('the real tree: the Kubernetes and tracing suites reach the harnesses of the tools they run', () => {
  const of = (f: string) => servicesReached(join(DIST, f), DIST);
  assert.ok(of('test/e2e/k8s.test.js').includes('test/harness/kube-apiserver.js'));
  const tracingK8s = of('test/e2e/tracing-k8s.test.js');
  assert.ok(tracingK8s.includes('test/harness/kube-apiserver.js') && tracingK8s.includes('test/harness/otelcol.js'), tracingK8s.join(' '));
  assert.ok(of('test/deploy/helm-chart.test.js').includes('test/harness/helm.js'));
});

reached.run();

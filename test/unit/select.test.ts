import { suite } from '../harness/suite.js';
import * as assert from 'uvu/assert';
import { existsSync, mkdtempSync, mkdirSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { SERVICE_MODULES, classify, serviceNeeded } from './select.js';

const DIST = resolve(dirname(fileURLToPath(import.meta.url)), '../..');

const select = suite('unit test selection');

select('every service module named by the rule exists (a renamed harness would make e2e suites "unit")', () => {
  for (const m of SERVICE_MODULES) assert.ok(existsSync(join(DIST, m)), `${m} is built`);
});

select('follows imports through modules, including re-exports and dynamic imports', () => {
  const dir = mkdtempSync(join(tmpdir(), 'agate-select-'));
  try {
    mkdirSync(join(dir, 'test/harness'), { recursive: true });
    writeFileSync(join(dir, 'test/harness/postgres.js'), 'export const x = 1;\n');
    writeFileSync(join(dir, 'a.test.js'), "import { y } from './b.js';\nimport * as uvu from 'uvu';\n");
    writeFileSync(join(dir, 'b.js'), "export { x as y } from './test/harness/postgres.js';\n");
    writeFileSync(join(dir, 'c.test.js'), "const m = await import('chdb');\n");
    writeFileSync(join(dir, 'd.test.js'), "import { readFileSync } from 'node:fs';\nimport './e.js';\n");
    writeFileSync(join(dir, 'e.js'), '// imports nothing: the word import in a comment is not one\n');
    assert.is(serviceNeeded(join(dir, 'a.test.js'), dir), 'test/harness/postgres.js');
    assert.is(serviceNeeded(join(dir, 'c.test.js'), dir), 'chdb');
    assert.is(serviceNeeded(join(dir, 'd.test.js'), dir), undefined);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

select('the real tree: pure modules are unit tests, PostgreSQL, Kafka and chdb suites are not', () => {
  const { unit, service } = classify(DIST);
  const rel = (f: string) => f.slice(DIST.length + 1);
  const units = new Set(unit.map(rel));
  const needs = new Map(service.map((s) => [rel(s.file), s.needs]));
  assert.ok(units.has('services/ingress-proxy/src/pg/frontend-parser.test.js'));
  assert.ok(units.has('test/unit/select.test.js'));
  assert.ok(needs.has('test/e2e/clients.test.js'));
  assert.ok(needs.has('core/src/bus/kafka-bus.test.js'));
  assert.is(needs.get('services/ledger/src/ledger.test.js'), 'chdb');
});

select.run();

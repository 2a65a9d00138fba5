// The Grafana dashboard (deploy/grafana/agate-dashboard.json) may only chart what Agate exports:
// every metric name in its queries must be one the metrics registry serves (a renamed metric
// would otherwise leave an empty panel nobody notices).
import { suite } from '../harness/suite.js';
import * as assert from 'uvu/assert';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { metricsRegistry } from '../../core/src/ops/metrics.js';
import { parseExposition } from '../harness/prom-text.js';
import { REPO_ROOT } from '../e2e/agate-process.js';

interface Panel { title: string; targets: { expr: string }[] }
const dashboard = JSON.parse(readFileSync(join(REPO_ROOT, 'deploy', 'grafana', 'agate-dashboard.json'), 'utf8')) as { uid: string; panels: Panel[] };

const test = suite('grafana dashboard');

test('every query names only metrics Agate exports', async () => {
  const exported = new Set<string>();
  for (const [name, type] of parseExposition(await metricsRegistry.metrics()).types) {
    exported.add(name);
    if (type === 'histogram') for (const s of ['_bucket', '_sum', '_count']) exported.add(name + s);
  }
  assert.ok(exported.has('agate_commands_total'), 'the registry is the one Agate serves');
  assert.ok(dashboard.panels.length >= 10);
  for (const panel of dashboard.panels) {
    assert.ok(panel.targets.length > 0, panel.title);
    for (const { expr } of panel.targets) {
      const names = expr.match(/\bagate_[a-z_]+/g) ?? [];
      assert.ok(names.length > 0, `${panel.title}: ${expr}`);
      for (const name of names) assert.ok(exported.has(name), `${panel.title}: ${name} is not exported`);
    }
  }
});

test('the guard trips on a metric Agate does not export', async () => {
  const exported = new Set(parseExposition(await metricsRegistry.metrics()).types.keys());
  assert.not.ok(exported.has('agate_commands_denied_total'));
});

test.run();

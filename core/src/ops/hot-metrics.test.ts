import { Counter, Histogram, Registry } from 'prom-client';
import { suite } from '../../../test/harness/suite.js';
import * as assert from 'uvu/assert';
import { HotCounter, HotHistogram } from './hot-metrics.js';

const BUCKETS = [0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10];

/** Observations with repeats, values on and between bounds, above the last bound, and zero. */
const OBSERVED: [string, string, number][] = [
  ['postgres', 'allow', 0.0004], ['postgres', 'allow', 0.0005], ['postgres', 'allow', 0.0031], ['postgres', 'deny', 0.2],
  ['ssh', 'allow', 12], ['postgres', 'allow', 0], ['kubernetes', 'hold', 2.5], ['postgres', 'allow', 0.0007],
];

const histogram = suite('HotHistogram');

histogram('scrapes to the same text as prom-client\'s Histogram fed the same observations', async () => {
  const ours = new Registry();
  const theirs = new Registry();
  const o = new HotHistogram({ name: 'agate_test_seconds', help: 'A test.', labelNames: ['protocol', 'decision'] as const, buckets: BUCKETS, registers: [ours] });
  const t = new Histogram({ name: 'agate_test_seconds', help: 'A test.', labelNames: ['protocol', 'decision'] as const, buckets: BUCKETS, registers: [theirs] });
  for (const [protocol, decision, v] of OBSERVED) {
    o.observe({ protocol, decision }, v);
    t.observe({ protocol, decision }, v);
  }
  const text = await ours.metrics();
  assert.is(text, await theirs.metrics());
  assert.match(text, 'agate_test_seconds_count{protocol="postgres",decision="allow"} 5');
  assert.match(text, 'agate_test_seconds_bucket{le="0.0005",protocol="postgres",decision="allow"} 3');
});

histogram('refuses a value that is not a finite number, and reset() forgets every series', async () => {
  const r = new Registry();
  const h = new HotHistogram({ name: 'agate_test_seconds', help: 'A test.', labelNames: ['type'] as const, buckets: BUCKETS, registers: [r] });
  assert.throws(() => h.observe({ type: 'Response' }, Number.NaN), /not a finite number/);
  h.observe({ type: 'Response' }, 0.001);
  assert.match(await r.metrics(), 'agate_test_seconds_count{type="Response"} 1');
  h.reset();
  assert.not.match(await r.metrics(), 'agate_test_seconds_count');
  h.observe({ type: 'Command' }, 0.001);
  assert.match(await r.metrics(), 'agate_test_seconds_count{type="Command"} 1');
});

histogram.run();

const counter = suite('HotCounter');

counter('scrapes to the same text as prom-client\'s Counter, three labels, increments of 1 and more', async () => {
  const ours = new Registry();
  const theirs = new Registry();
  const o = new HotCounter({ name: 'agate_test_total', help: 'A test.', labelNames: ['protocol', 'decision', 'rule'] as const, registers: [ours] });
  const t = new Counter({ name: 'agate_test_total', help: 'A test.', labelNames: ['protocol', 'decision', 'rule'] as const, registers: [theirs] });
  for (const [protocol, decision, v] of OBSERVED) {
    // Same protocol and decision under two rules: distinct series.
    const rule = v > 1 ? 'slow' : 'none';
    o.inc({ protocol, decision, rule });
    t.inc({ protocol, decision, rule });
  }
  o.inc({ protocol: 'postgres', decision: 'allow', rule: 'none' }, 3);
  t.inc({ protocol: 'postgres', decision: 'allow', rule: 'none' }, 3);
  const text = await ours.metrics();
  assert.is(text, await theirs.metrics());
  assert.match(text, 'agate_test_total{protocol="postgres",decision="allow",rule="none"} 8');
});

counter('registers once per registry: a second metric of the same name is refused', () => {
  const r = new Registry();
  new HotCounter({ name: 'agate_test_total', help: 'A test.', labelNames: ['group'] as const, registers: [r] });
  assert.throws(() => new Counter({ name: 'agate_test_total', help: 'Another.', registers: [r] }), /already been registered/);
});

counter.run();

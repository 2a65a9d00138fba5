import { suite } from './suite.js';
import * as assert from 'uvu/assert';
import { parseExposition, sampleValue } from './prom-text.js';

const good = `# HELP agate_commands_total Commands.
# TYPE agate_commands_total counter
agate_commands_total{protocol="postgres",decision="deny",rule="no-drop"} 2
# TYPE lat histogram
lat_bucket{le="0.1"} 1
lat_bucket{le="+Inf"} 3
lat_sum 0.7
lat_count 3
`;

const check = suite('parseExposition');

check('reads NaN and Inf in any case, as Prometheus does (prom-client writes Nan)', () => {
  const e = parseExposition('# TYPE g gauge\ng{a="1"} Nan\ng{a="2"} +Inf\ng{a="3"} -inf\ng{a="4"} 1.5e3\n');
  assert.ok(Number.isNaN(sampleValue(e, 'g', { a: '1' })));
  assert.is(sampleValue(e, 'g', { a: '2' }), Infinity);
  assert.is(sampleValue(e, 'g', { a: '3' }), -Infinity);
  assert.is(sampleValue(e, 'g', { a: '4' }), 1500);
});

check('reads a valid exposition', () => {
  const e = parseExposition(good);
  assert.is(sampleValue(e, 'agate_commands_total', { decision: 'deny' }), 2);
  assert.is(e.types.get('lat'), 'histogram');
});

// The guard must trip: each of these is refused by promtool as well.
const broken: [string, string][] = [
  ['no TYPE before the sample', 'x_total 1\n'],
  ['a duplicate series', '# TYPE x counter\nx 1\nx 2\n'],
  ['a bad label', '# TYPE x gauge\nx{1a="b"} 1\n'],
  ['an unquoted label value', '# TYPE x gauge\nx{a=b} 1\n'],
  ['a bad value', '# TYPE x gauge\nx one\n'],
  ['a hex value', '# TYPE x gauge\nx 0x10\n'],
  ['no +Inf bucket', '# TYPE h histogram\nh_bucket{le="1"} 1\nh_sum 1\nh_count 1\n'],
  ['_count not equal to +Inf', '# TYPE h histogram\nh_bucket{le="+Inf"} 2\nh_sum 1\nh_count 1\n'],
  ['decreasing buckets', '# TYPE h histogram\nh_bucket{le="1"} 3\nh_bucket{le="+Inf"} 2\nh_sum 1\nh_count 2\n'],
  ['a second TYPE', '# TYPE x gauge\n# TYPE x gauge\n'],
  ['no final newline', '# TYPE x gauge\nx 1'],
];
for (const [what, text] of broken) check(`refuses ${what}`, () => assert.throws(() => parseExposition(text)));

check.run();

import { suite } from '../../../test/harness/suite.js';
import * as assert from 'uvu/assert';
import { formatTraceParent, normaliseTraceParent, parseTraceParent } from './traceparent.js';

const parse = suite('parseTraceParent');

parse('reads the W3C example', () => {
  assert.equal(parseTraceParent('00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01'), { traceId: '4bf92f3577b34da6a3ce929d0e0e4736', spanId: '00f067aa0ba902b7', flags: 1 });
});

parse('refuses what is not a trace context', () => {
  for (const bad of [
    undefined, null, '', 'garbage',
    '00-4BF92F3577B34DA6A3CE929D0E0E4736-00f067aa0ba902b7-01', // upper case
    '00-00000000000000000000000000000000-00f067aa0ba902b7-01', // zero trace id
    '00-4bf92f3577b34da6a3ce929d0e0e4736-0000000000000000-01', // zero parent id
    'ff-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01', // version ff
    '00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01-extra', // 00 ends at the flags
    '00-4bf92f3577b34da6a3ce929d0e0e473-00f067aa0ba902b7-01', // short trace id
    `00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01${' '.repeat(600)}`,
  ]) assert.is(parseTraceParent(bad), undefined, String(bad));
});

parse('reads a later version by its version-00 prefix', () => {
  assert.equal(parseTraceParent('01-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-00-more'), { traceId: '4bf92f3577b34da6a3ce929d0e0e4736', spanId: '00f067aa0ba902b7', flags: 0 });
});

parse.run();

const format = suite('formatTraceParent');

format('writes version 00 and round-trips', () => {
  const value = '00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01';
  assert.is(formatTraceParent(parseTraceParent(value)!), value);
  assert.is(normaliseTraceParent('01-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-03-x'), '00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-03');
  assert.is(normaliseTraceParent('nonsense'), null);
});

format.run();

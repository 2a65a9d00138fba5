import { suite } from '../../../test/harness/suite.js';
import * as assert from 'uvu/assert';
import type { KafkaRecord } from '@platformatic/kafka';
import { TypeFilter, typeHeaderOf } from './kafka-record-type.js';

const filter = suite('TypeFilter');

filter('admits the type headers it names, as bytes, and no other of the same length', () => {
  const f = new TypeFilter(['Command', 'Response']);
  assert.ok(f.admits(Buffer.from('Command')));
  assert.ok(f.admits(Buffer.from('Response')));
  assert.not.ok(f.admits(Buffer.from('Verdict')), 'same length as Command');
  assert.not.ok(f.admits(Buffer.from('Commands')), 'same length as Response');
  assert.not.ok(f.admits(Buffer.from('command')));
  assert.not.ok(f.admits(Buffer.alloc(0)));
});

filter('admits a record with no type header: its decoded event tells', () => {
  assert.ok(new TypeFilter(['Command']).admits(undefined));
  assert.not.ok(new TypeFilter([]).admits(Buffer.from('Command')));
});

filter.run();

const header = suite('typeHeaderOf');

const record = (headers: KafkaRecord['headers']): KafkaRecord => ({ length: 0, attributes: 0, timestampDelta: 0n, offsetDelta: 0, key: null, value: null, headers });

header('finds the agate-type header among others, by its exact name', () => {
  const traceparent: [Buffer, Buffer] = [Buffer.from('traceparent'), Buffer.from('00-x')];
  assert.equal(typeHeaderOf(record([traceparent, [Buffer.from('agate-type'), Buffer.from('Command')]]))?.toString(), 'Command');
  assert.is(typeHeaderOf(record([traceparent, [Buffer.from('agate-typo'), Buffer.from('Command')]])), undefined);
  assert.is(typeHeaderOf(record([[Buffer.from('Agate-Type'), Buffer.from('Command')]])), undefined);
  assert.is(typeHeaderOf(record([[null, Buffer.from('Command')], [Buffer.from('agate-type'), null]])), undefined);
});

header.run();

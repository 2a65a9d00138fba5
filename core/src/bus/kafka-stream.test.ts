import { suite } from '../../../test/harness/suite.js';
import * as assert from 'uvu/assert';
import { TypeFilter } from './kafka-stream.js';

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

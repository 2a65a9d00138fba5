import { suite } from '../test/harness/suite.js';
import * as assert from 'uvu/assert';
import { readOptions } from './options.js';

const spec = { numbers: { seconds: 10, 'stream-gb': 2 }, strings: { modes: 'simple,prepared' }, flags: ['no-proxy-alone'], repeated: ['env'] } as const;

const read = suite('readOptions');
read('defaults when nothing is given', () => {
  assert.equal(readOptions([], spec), { seconds: 10, 'stream-gb': 2, modes: 'simple,prepared', 'no-proxy-alone': false, env: [] });
});
read('numbers, strings, flags and repeated options, values taken as they are', () => {
  const o = readOptions(['--stream-gb', '0.5', '--no-proxy-alone', '--env', 'A=1 B=2', '--modes', 'prepared', '--env', '--flag=x', '--seconds', '3'], spec);
  assert.equal(o, { seconds: 3, 'stream-gb': 0.5, modes: 'prepared', 'no-proxy-alone': true, env: ['A=1 B=2', '--flag=x'] });
});
read('an unknown option, a missing value or a number that is not one stops the bench', () => {
  assert.throws(() => readOptions(['--secs', '3'], spec), /unknown option "--secs"; this bench takes --seconds/);
  assert.throws(() => readOptions(['3'], spec), /unknown option "3"/);
  assert.throws(() => readOptions(['--constructor'], spec), /unknown option/);
  assert.throws(() => readOptions(['--seconds'], spec), /--seconds needs a value/);
  assert.throws(() => readOptions(['--seconds', 'ten'], spec), /--seconds takes a number, not "ten"/);
  assert.throws(() => readOptions(['--seconds', ''], spec), /--seconds takes a number/);
});
read.run();

import { suite } from '../../../test/harness/suite.js';
import * as assert from 'uvu/assert';
import { tsvBytes, tsvText } from './tsv.js';

const bytes = suite('tsvBytes');

bytes('passes bytes that need no escape through unchanged', () => {
  const value = Buffer.from([0, 1, 0x41, 0xff, 0x5b, 0x5d]);
  assert.equal([...tsvBytes(value)], [...value]);
});

bytes('escapes backslash, tab, newline and carriage return, and only those', () => {
  const value = Buffer.from([0x5c, 0x09, 0x0a, 0x0d, 0x00, 0x41]);
  assert.equal(tsvBytes(value).toString('latin1'), '\\\\\\t\\n\\r\0A');
});

bytes('respects the view of a larger buffer', () => {
  const backing = Buffer.from('xx\tyy');
  assert.is(tsvBytes(backing.subarray(2, 4)).toString(), '\\ty');
});

bytes.run();

const text = suite('tsvText');

text('escapes the same four characters in text', () => {
  assert.is(tsvText('a\\b\tc\nd\re'), 'a\\\\b\\tc\\nd\\re');
});

text.run();

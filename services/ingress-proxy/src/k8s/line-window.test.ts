import { suite } from '../../../../test/harness/suite.js';
import * as assert from 'uvu/assert';
import { LineWindow } from './line-window.js';

const window = suite('LineWindow');
const text = (b: Buffer | undefined) => b?.toString('utf8');

window('holds bytes until a line end, then gives back through the last one', () => {
  const w = new LineWindow(100);
  assert.is(w.push(Buffer.from('AKIAQW'), 0), undefined);
  assert.is(text(w.push(Buffer.from('ERTY\nrm -f x\rec'), 0)), 'AKIAQWERTY\nrm -f x\r');
  assert.is(text(w.take()), 'ec');
  assert.is(w.take(), undefined);
  assert.is(w.push(Buffer.alloc(0), 0), undefined);
});

window('gives back all it holds at the bound, but a UTF-8 character cut short', () => {
  const w = new LineWindow(8);
  const euro = Buffer.from('€'); // three bytes
  assert.is(w.push(Buffer.from('abcdef'), 0), undefined);
  assert.is(text(w.push(Buffer.concat([Buffer.from('g'), euro.subarray(0, 2)]), 0)), 'abcdefg');
  assert.is(text(w.push(euro.subarray(2), 0)), undefined);
  assert.is(text(w.take()), '€');
  // A line end first, then more than the bound: both parts, in order.
  assert.is(text(w.push(Buffer.from('ab\ncdefghijk'), 0)), 'ab\ncdefghijk');
  // Binary data with no character to finish: all of it.
  assert.equal(w.push(Buffer.from([0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff]), 0)?.length, 8);
});

window('idle gives back what waited at least ms since its first byte', () => {
  const w = new LineWindow(100);
  w.push(Buffer.from('$ '), 10);
  w.push(Buffer.from('x'), 500);
  assert.is(w.idle(1009, 1000), undefined);
  assert.is(text(w.idle(1010, 1000)), '$ x');
  w.push(Buffer.from('a\nb'), 2000);
  assert.is(w.idle(2999, 1000), undefined);
  assert.is(text(w.idle(3000, 1000)), 'b');
});

window.run();

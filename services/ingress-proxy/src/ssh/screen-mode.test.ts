import { suite } from '../../../../test/harness/suite.js';
import * as assert from 'uvu/assert';
import { ScreenKeys, ScreenMode } from './screen-mode.js';

const test = suite('ssh/screen-mode');

test('the alternate screen is entered and left, also when a sequence is split across chunks', () => {
  const mode = new ScreenMode();
  assert.is(mode.output(Buffer.from('$ less f\r\n')), false);
  assert.is(mode.output(Buffer.from('x\x1b[?10')), false);
  assert.is(mode.output(Buffer.from('49h\x1b[H')), true);
  assert.is(mode.fullScreen, true);
  assert.is(mode.output(Buffer.from('\x1b[?1049l$ ')), true);
  assert.is(mode.fullScreen, false);
  mode.output(Buffer.from('\x1b[?47h'));
  assert.is(mode.fullScreen, true);
});

test('other private modes are not screen switches', () => {
  const mode = new ScreenMode();
  assert.is(mode.output(Buffer.from('\x1b[?25l\x1b[?2004h')), false);
  assert.is(mode.fullScreen, false);
});

test('the keys of a full-screen line read as typed, control keys spelt out, the end nearest the Enter kept', () => {
  const keys = new ScreenKeys();
  keys.add(Buffer.from('ihello\x1b:'));
  keys.add(Buffer.from('!rm -f V\x7f'));
  assert.is(keys.take(), 'ihello^[:!rm -f V^?');
  assert.is(keys.take(), '');
  keys.add(Buffer.from('x'.repeat(5000)));
  keys.add(Buffer.from(':!id'));
  const long = keys.take();
  assert.is(long.length, 4096);
  assert.ok(long.endsWith('x:!id'));
});

test.run();

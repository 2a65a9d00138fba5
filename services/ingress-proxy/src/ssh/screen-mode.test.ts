import { suite } from '../../../../test/harness/suite.js';
import * as assert from 'uvu/assert';
import { ScreenMode } from './screen-mode.js';

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

test.run();

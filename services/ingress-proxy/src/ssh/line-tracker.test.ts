import { suite } from '../../../../test/harness/suite.js';
import * as assert from 'uvu/assert';
import { LineTracker, type TypedLine } from './line-tracker.js';
import { parseSttyG, type PtyModes } from './terminal-modes.js';

function typed(input: string | Buffer, modes?: PtyModes | 'unknown'): TypedLine[] {
  const tracker = new LineTracker(16);
  if (modes !== undefined) tracker.setModes(modes);
  const lines: TypedLine[] = [];
  for (const b of Buffer.isBuffer(input) ? input : Buffer.from(input, 'latin1')) {
    const line = tracker.push(b);
    if (line !== undefined) lines.push(line);
  }
  return lines;
}

const test = suite('ssh/LineTracker');

test('CR or LF ends a line; empty lines are not reported', () => {
  assert.equal(typed('ls\r\r\npwd\n'), [{ text: 'ls', edited: false }, { text: 'pwd', edited: false }]);
});

test('backspace, ^W and ^U edit the line; ^C abandons it', () => {
  assert.equal(typed('lx\x7fs -l\r'), [{ text: 'ls -l', edited: false }]);
  assert.equal(typed('rm -rf\x17echo\r'), [{ text: 'rm echo', edited: false }]);
  assert.equal(typed('rm -rf /\x15id\r'), [{ text: 'id', edited: false }]);
  assert.equal(typed('rm -rf /\x03id\r'), [{ text: 'id', edited: false }]);
});

test('history, cursor keys and tab completion make the line inexact, and their bytes are dropped', () => {
  assert.equal(typed('\x1b[Aecho\r'), [{ text: 'echo', edited: true }]);
  assert.equal(typed('cat fi\tx\r'), [{ text: 'cat fi x', edited: true }]);
  // An arrow alone still reports, since the shell may run a recalled command.
  assert.equal(typed('\x1b[A\r'), [{ text: '', edited: true }]);
});

test('keys with which readline runs the line without an Enter end it too, marked inexact: ^O, ^X^E, vi mode\'s ESC Enter, ESC v and ^D', () => {
  assert.equal(typed('rm -f x\x04'), [{ text: 'rm -f x', edited: true }]);
  assert.equal(typed('\x04'), [], 'an empty line\'s ^D is EOF');
  assert.equal(typed('rm -f x\x0f'), [{ text: 'rm -f x', edited: true }]);
  assert.equal(typed('rm -f x\x18\x05'), [{ text: 'rm -f x', edited: true }]);
  assert.equal(typed('rm -f x\x1b\r'), [{ text: 'rm -f x', edited: true }]);
  assert.equal(typed('rm -f x\x1bv'), [{ text: 'rm -f x', edited: true }]);
  // ^X then another key is not edit-and-execute; ^E alone moves the cursor.
  assert.equal(typed('ls\x18a\x05\r'), [{ text: 'lsa', edited: true }]);
});

test('a line longer than the bound is cut and marked inexact', () => {
  assert.equal(typed('x'.repeat(40) + '\r'), [{ text: 'x'.repeat(16), edited: true }]);
});

test('UTF-8 survives', () => {
  assert.equal(typed(Buffer.from('echo héllo\r')), [{ text: 'echo héllo', edited: false }]);
});

const FRESH = '500:5:bf:8a3b:3:1c:7f:15:4:0:1:0:11:13:1a:0:12:f:17:16:0:0:0:0:0:0:0:0:0:0:0:0:0:0:0:0';

test('the terminal\'s modes: a key made a line end (stty eof ^A) ends the line, edited; one made an edit (stty kill #) marks it edited', () => {
  const eofCtrlA = parseSttyG(FRESH.replace(':15:4:', ':15:1:'))!;
  assert.equal(typed('rm -f f\x01\x01', eofCtrlA), [{ text: 'rm -f f', edited: true }, { text: '', edited: true }]);
  assert.equal(typed('rm\x1b[1\x01', eofCtrlA), [{ text: 'rm', edited: true }], 'inside what looked like an escape sequence too');
  const killHash = parseSttyG(FRESH.replace(':7f:15:', ':7f:23:'))!;
  assert.equal(typed('echo ok#rm\r', killHash), [{ text: 'echo ok#rm', edited: true }]);
  assert.equal(typed('echo ok\r', killHash), [{ text: 'echo ok', edited: false }], 'a line without the key is as typed');
  const noSignals = parseSttyG(FRESH.replace(':8a3b:', ':8a3a:'))!;
  assert.equal(typed('rm\x03id\r', noSignals), [{ text: 'id', edited: true }], '^C is no interrupt: what sh reads is not "id"');
});

test('modes that could not be read: every key ends a line', () => {
  assert.equal(typed('ab', 'unknown'), [{ text: 'a', edited: true }, { text: 'b', edited: true }]);
});

test.run();

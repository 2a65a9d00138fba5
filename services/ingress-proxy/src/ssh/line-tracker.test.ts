import { suite } from '../../../../test/harness/suite.js';
import * as assert from 'uvu/assert';
import { LineTracker, type TypedLine } from './line-tracker.js';

function typed(input: string | Buffer): TypedLine[] {
  const tracker = new LineTracker(16);
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

test('a line longer than the bound is cut and marked inexact', () => {
  assert.equal(typed('x'.repeat(40) + '\r'), [{ text: 'x'.repeat(16), edited: true }]);
});

test('UTF-8 survives', () => {
  assert.equal(typed(Buffer.from('echo héllo\r')), [{ text: 'echo héllo', edited: false }]);
});

test.run();

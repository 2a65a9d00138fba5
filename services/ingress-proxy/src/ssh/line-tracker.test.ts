import { suite } from 'uvu';
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
  assert.equal(typed('ls\r\r\npwd\n'), [{ text: 'ls', exact: true }, { text: 'pwd', exact: true }]);
});

test('backspace, ^W and ^U edit the line; ^C abandons it', () => {
  assert.equal(typed('lx\x7fs -l\r'), [{ text: 'ls -l', exact: true }]);
  assert.equal(typed('rm -rf\x17echo\r'), [{ text: 'rm echo', exact: true }]);
  assert.equal(typed('rm -rf /\x15id\r'), [{ text: 'id', exact: true }]);
  assert.equal(typed('rm -rf /\x03id\r'), [{ text: 'id', exact: true }]);
});

test('history, cursor keys and tab completion make the line inexact, and their bytes are dropped', () => {
  assert.equal(typed('\x1b[Aecho\r'), [{ text: 'echo', exact: false }]);
  assert.equal(typed('cat fi\tx\r'), [{ text: 'cat fi x', exact: false }]);
  // An arrow alone still reports, since the shell may run a recalled command.
  assert.equal(typed('\x1b[A\r'), [{ text: '', exact: false }]);
});

test('a line longer than the bound is cut and marked inexact', () => {
  assert.equal(typed('x'.repeat(40) + '\r'), [{ text: 'x'.repeat(16), exact: false }]);
});

test('UTF-8 survives', () => {
  assert.equal(typed(Buffer.from('echo héllo\r')), [{ text: 'echo héllo', exact: true }]);
});

test.run();

import { suite } from '../../../../../test/harness/suite.js';
import * as assert from 'uvu/assert';
import { ptsIndex, readsTerminal, type ShellProcess } from './helper.js';

const test = suite('ssh/capture readsTerminal');

const shell = (p: Partial<ShellProcess>): ShellProcess => ({ state: 'S', tty: 34816, tpgid: 40, wchan: 'poll_schedule_timeout.constprop.0', syscall: '270', ...p });

test('the shell has the terminal and sleeps for input: the next line is its own', () => {
  assert.ok(readsTerminal(shell({}), 40));
  assert.ok(readsTerminal(shell({ wchan: 'n_tty_read' }), 40));
  assert.ok(readsTerminal(shell({ wchan: 'wait_woken' }), 40));
});

test('a program holds the terminal, the shell waits for a child or runs: not the shell\'s line', () => {
  assert.not.ok(readsTerminal(shell({ tpgid: 77 }), 40), 'another process group in the foreground');
  assert.not.ok(readsTerminal(shell({ wchan: 'do_wait', syscall: '61' }), 40), 'waiting for a command (or the hook for its verdict)');
  assert.not.ok(readsTerminal(shell({ state: 'R', wchan: '0' }), 40), 'running');
  assert.not.ok(readsTerminal(shell({ wchan: 'pipe_read' }), 40), 'the hook reading its FIFO');
});

test('where wchan is hidden, the blocking system call decides', () => {
  assert.ok(readsTerminal(shell({ wchan: '0', syscall: '270' }), 40));
  assert.not.ok(readsTerminal(shell({ wchan: '0', syscall: '61' }), 40));
  assert.not.ok(readsTerminal(shell({ wchan: '', syscall: '' }), 40));
});

test('a tty_nr names /dev/pts/N only for the Unix 98 pty slaves (major 136), however large N', () => {
  assert.is(ptsIndex((136 << 8) | 3), 3);
  assert.is(ptsIndex((136 << 8) | 0x45 | (0x12 << 12 << 8)), 0x1245);
  assert.is(ptsIndex((4 << 8) | 1), undefined, '/dev/tty1');
  assert.is(ptsIndex(0), undefined, 'no terminal');
});

test.run();

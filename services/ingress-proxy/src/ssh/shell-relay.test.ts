import { suite } from '../../../../test/harness/suite.js';
import * as assert from 'uvu/assert';
import { createHash } from 'node:crypto';
import { EventEmitter } from 'node:events';
import { PassThrough, Writable } from 'node:stream';
import type { ClientChannel, ServerChannel } from 'ssh2';
import { Masker } from '../masking/masker.js';
import { CastRecorder, type CastChunk } from './asciicast.js';
import type { TypedLine } from './line-tracker.js';
import { relayShell, type LineDecision } from './shell-relay.js';

/** The client's channel: keystrokes typed in with `type`, what the relay writes collected in `screen` and `log`. */
function fakeClient() {
  const keys = new PassThrough();
  const screen: Buffer[] = [];
  const log: string[] = [];
  const out = new Writable({ write: (c: Buffer, _e, cb) => void (screen.push(c), cb()) });
  const channel = Object.assign(new EventEmitter(), {
    stderr: out,
    write: (c: Buffer | string, cb?: () => void) => out.write(c, cb),
    pause: () => keys.pause(),
    resume: () => keys.resume(),
    exit: (code: number | string) => log.push(`exit ${code}`),
    end: () => log.push('end'),
  });
  keys.on('data', (d) => channel.emit('data', d));
  keys.on('end', () => channel.emit('end'));
  return { channel: channel as unknown as ServerChannel, type: (s: string) => keys.write(Buffer.from(s)), endInput: () => keys.end(), text: () => Buffer.concat(screen).toString(), log };
}

/** The shell's channel: what it receives collected; `print` writes terminal output. */
function fakeShell() {
  const received: Buffer[] = [];
  const stream = Object.assign(new PassThrough(), { stderr: new PassThrough() });
  let ended = false;
  let closed = false;
  /** Signal requests, each with whether the channel was still open when it was sent. */
  const signals: string[] = [];
  Object.assign(stream, {
    write: (c: Buffer) => (received.push(c), true),
    end: () => void (ended = true),
    close: () => void (closed = true),
    signal: (name: string) => void signals.push(`${name}${closed ? ' after close' : ''}`),
  });
  return { stream, got: () => Buffer.concat(received).toString(), ended: () => ended, closed: () => closed, signals, print: (s: string) => stream.push(Buffer.from(s)) };
}

const tick = () => new Promise((r) => setImmediate(r));

function setup(decide: (line: TypedLine) => Promise<LineDecision>, terminal = true) {
  const client = fakeClient();
  const shell = fakeShell();
  const chunks: CastChunk[] = [];
  const recorder = new CastRecorder({ masker: new Masker('t', { columns: [], detectors: [] }), flush: (c) => chunks.push(c) });
  const lines: TypedLine[] = [];
  const done = relayShell(client.channel, shell.stream as unknown as ClientChannel, {
    recorder,
    terminal,
    onLine: (line) => (lines.push(line), decide(line)),
    recordingBacklog: () => undefined,
  });
  return { client, shell, lines, chunks, done };
}

const test = suite('ssh/relayShell');

test("a typed line is decided before its Enter reaches the shell", async () => {
  let allow: () => void = () => undefined;
  const s = setup(() => new Promise((r) => (allow = () => r({ run: true }))));
  s.client.type('ls -l\r');
  await tick();
  assert.equal(s.lines, [{ text: 'ls -l', edited: false }]);
  assert.is(s.shell.got(), 'ls -l', 'the line, but not its Enter, while the decision is pending');
  allow();
  await tick();
  assert.is(s.shell.got(), 'ls -l\r');
});

test('a refused line ends the shell: ^C in place of its Enter, a KILL signal request, the channel closed, the client told why, no key after it sent', async () => {
  const s = setup(async (line) => (/rm/.test(line.text) ? { run: false, message: 'Agate refused: rm -rf' } : { run: true }));
  s.client.type('rm -rf / #\r');
  s.client.type('\recho next\r');
  const outcome = await s.done;
  s.shell.print('late output while the target hangs up\r\n');
  await tick();
  assert.is(s.shell.got(), 'rm -rf / #\x03', 'the ^C, and nothing typed after the refused line');
  assert.ok(s.shell.closed(), 'the shell channel is closed: the target hangs up its terminal');
  assert.equal(s.shell.signals, ['KILL'], 'the shell is killed before its terminal hangs up (a hangup may run the line)');
  assert.is(s.client.text(), '\r\nAgate refused: rm -rf\r\nAgate ended the shell: keys of the refused line had already reached it and cannot be taken back\r\n');
  assert.equal(s.client.log, ['exit 255', 'end']);
  assert.is(outcome.error?.code, 'SHELL_LINE_NOT_RETRACTABLE');
  assert.match(outcome.error?.message ?? '', /^Agate refused: rm -rf; Agate ended the shell/);
});

test('keys to a full-screen program go up as typed; each Enter waits for the decision of the keys before it, and a refusal ends the shell', async () => {
  const s = setup(async (line) => (line.text.includes('!') ? { run: false, message: 'refused' } : { run: true }));
  s.shell.print('\x1b[?1049h');
  await tick();
  s.client.type('ihello\x1b:w');
  s.client.type('q\r');
  await tick();
  assert.equal(s.lines.map((l) => [l.text, l.screen, l.edited]), [['ihello^[:wq', true, true]]);
  assert.is(s.shell.got(), 'ihello\x1b:wq\r');
  // ed after the agent printed the switch itself: the line's keys went up, its Enter never does.
  s.client.type('!rm -f V\r');
  await tick();
  assert.is(s.lines.at(-1)?.text, '!rm -f V');
  assert.is(s.shell.got(), 'ihello\x1b:wq\r!rm -f V\x03');
});

test("the client's EOF reaches the shell after the line still being decided", async () => {
  let allow: () => void = () => undefined;
  const s = setup(() => new Promise((r) => (allow = () => r({ run: true }))));
  s.client.type('id\r');
  s.client.endInput();
  await tick();
  assert.not.ok(s.shell.ended(), 'not while the line waits');
  allow();
  await tick();
  await tick();
  assert.equal([s.shell.got(), s.shell.ended()], ['id\r', true]);
});

test('output is counted and digested; the exit status follows it; the recording ends', async () => {
  const s = setup(async () => ({ run: true }));
  s.shell.print('hello\r\n');
  s.shell.stream.stderr.push(Buffer.from('oops\r\n'));
  await tick();
  s.shell.stream.emit('exit', 2);
  s.shell.stream.emit('close');
  const outcome = await s.done;
  assert.equal([outcome.exitCode, outcome.signal, outcome.bytes, outcome.clientGone], [2, null, 13, false]);
  assert.is(outcome.digest, 'sha256:' + createHash('sha256').update('hello\r\noops\r\n').digest('hex'));
  assert.equal(s.client.log, ['exit 2', 'end']);
  assert.ok(s.chunks.length > 0, 'the recording was flushed at the end');
});

test('a shell killed by a signal passes the signal on; the client closing first is clientGone', async () => {
  const a = setup(async () => ({ run: true }));
  a.shell.stream.emit('exit', null, 'KILL');
  a.shell.stream.emit('close');
  assert.equal([(await a.done).signal, a.client.log], ['KILL', ['exit KILL', 'end']]);
  const b = setup(async () => ({ run: true }));
  (b.client.channel as unknown as EventEmitter).emit('close');
  assert.is((await b.done).clientGone, true);
  assert.ok(b.shell.closed(), 'the shell channel is closed after it');
});

const pipe = suite('ssh/relayShell without a terminal (stdin is a pipe)');

const refuseRm = async (line: TypedLine): Promise<LineDecision> => (/rm/.test(line.text) ? { run: false, message: 'Agate refused: rm' } : { run: true });

pipe('a line reaches the shell only once allowed, whole with its LF; a refused one never does, and the client reads why on stderr', async () => {
  let allow: () => void = () => undefined;
  const s = setup(() => new Promise((r) => (allow = () => r({ run: true }))), false);
  s.client.type('ls -l\n');
  await tick();
  assert.is(s.shell.got(), '', 'nothing of the line while the decision is pending');
  allow();
  await tick();
  assert.is(s.shell.got(), 'ls -l\n');
  const r = setup(refuseRm, false);
  r.client.type('rm -f /x \n\necho ok\n');
  await tick();
  await tick();
  assert.is(r.shell.got(), '\necho ok\n', 'the refused line is dropped whole; no ^C is sent');
  assert.is(r.client.text(), 'Agate refused: rm\n');
});

pipe('keys a terminal edits with are bytes of the line on a pipe: decided as the shell will read them', async () => {
  const s = setup(refuseRm, false);
  s.client.type('rm -f /x;\x15echo ok\n' + 'rm -f /y;\x7f\x7fecho ok\r\n' + 'rm -f /z\recho\n');
  for (let i = 0; i < 6; i += 1) await tick();
  assert.equal(s.lines.map((l) => l.text), ['rm -f /x;\x15echo ok', 'rm -f /y;\x7f\x7fecho ok\r', 'rm -f /z\recho']);
  assert.is(s.shell.got(), '');
});

pipe('the last line without LF is decided at EOF, before the shell sees the EOF', async () => {
  const s = setup(refuseRm, false);
  s.client.type('echo a\nrm -f /x');
  s.client.endInput();
  for (let i = 0; i < 6; i += 1) await tick();
  assert.equal(s.lines.map((l) => l.text), ['echo a', 'rm -f /x']);
  assert.equal([s.shell.got(), s.shell.ended()], ['echo a\n', true]);
});

pipe('a line too long to hold, or with a NUL, is refused whole without asking policy; the full-screen escape changes nothing', async () => {
  const s = setup(async () => ({ run: true }), false);
  s.shell.print('\x1b[?1049h');
  await tick();
  s.client.type(`echo ${'a'.repeat(70_000)}\n`);
  s.client.type('echo a\0b\n');
  for (let i = 0; i < 6; i += 1) await tick();
  assert.equal(s.lines.map((l) => l.unreadable), ['the line is longer than 65536 bytes', 'the line contains a NUL byte']);
  assert.is(s.shell.got(), '');
});

pipe.run();

test.run();

import { suite } from '../../../../test/harness/suite.js';
import * as assert from 'uvu/assert';
import { createHash } from 'node:crypto';
import { EventEmitter } from 'node:events';
import { PassThrough, Writable } from 'node:stream';
import type { ClientChannel, ServerChannel } from 'ssh2';
import { relayExec } from './exec-relay.js';

/** A client-side channel double: a duplex whose writes are collected, plus stderr and exit. */
function fakeClient(highWaterMark = 16 * 1024) {
  const stdin = new PassThrough();
  const stdout: Buffer[] = [];
  const stderr: Buffer[] = [];
  const log: string[] = [];
  let release: (() => void) | undefined;
  const sink = (into: Buffer[], name: string, hold: boolean) =>
    new Writable({
      highWaterMark,
      write(chunk: Buffer, _enc, cb) {
        into.push(chunk);
        log.push(name);
        if (hold && release === undefined) release = cb; // the first write waits: a slow consumer
        else cb();
      },
    });
  const out = sink(stdout, 'stdout', highWaterMark < 1024);
  const channel = Object.assign(new EventEmitter(), {
    stderr: sink(stderr, 'stderr', false),
    write: (chunk: Buffer, cb: () => void) => out.write(chunk, cb),
    pause: () => stdin.pause(),
    resume: () => stdin.resume(),
    exit: (code: number | string) => log.push(`exit ${code}`),
    end: () => log.push('end'),
  });
  out.on('drain', () => channel.emit('drain'));
  stdin.on('data', (d) => channel.emit('data', d));
  stdin.on('end', () => channel.emit('end'));
  return { channel: channel as unknown as ServerChannel, stdin, stdout, stderr, log, release: () => release?.() };
}

function fakeUpstream() {
  const stream = Object.assign(new PassThrough(), { stderr: new PassThrough(), received: [] as Buffer[] });
  stream.on('finish', () => undefined);
  return stream;
}

const relay = suite('ssh/relayExec');

relay('output, exit status and digest; the exit status follows every byte', async () => {
  const client = fakeClient();
  const upstream = fakeUpstream();
  const done = relayExec(client.channel, upstream as unknown as ClientChannel);
  upstream.push(Buffer.from('hello '));
  upstream.stderr.push(Buffer.from('warn\n'));
  upstream.push(Buffer.from('world\n'));
  await new Promise((r) => setImmediate(r));
  upstream.emit('exit', 3);
  upstream.emit('close');
  const outcome = await done;
  assert.is(Buffer.concat(client.stdout).toString(), 'hello world\n');
  assert.is(Buffer.concat(client.stderr).toString(), 'warn\n');
  assert.is(outcome.exitCode, 3);
  assert.is(outcome.bytes, 17);
  const expected = createHash('sha256').update('hello ').update('warn\n').update('world\n').digest('hex');
  assert.is(outcome.digest, `sha256:${expected}`);
  assert.equal(client.log.slice(-2), ['exit 3', 'end']);
});

relay('a slow client pauses the target, and the exit waits for the held write', async () => {
  const client = fakeClient(4); // tiny buffer: the first write fills it
  const upstream = fakeUpstream();
  const done = relayExec(client.channel, upstream as unknown as ClientChannel);
  upstream.write(Buffer.alloc(64, 1));
  await new Promise((r) => setImmediate(r));
  assert.ok(upstream.isPaused(), 'the target must be paused while the client is not draining');
  upstream.emit('exit', 0);
  upstream.emit('close');
  await new Promise((r) => setImmediate(r));
  assert.not.ok(client.log.includes('exit 0'), 'the exit status must not overtake buffered output');
  client.release();
  const outcome = await done;
  assert.is(outcome.exitCode, 0);
  assert.equal(client.log.slice(-2), ['exit 0', 'end']);
});

relay('stdin goes up and is counted; the client ending its input ends the target stdin', async () => {
  const client = fakeClient();
  const upstream = fakeUpstream();
  const received: Buffer[] = [];
  upstream.on('data', (d: Buffer) => received.push(d));
  const done = relayExec(client.channel, upstream as unknown as ClientChannel);
  client.stdin.end(Buffer.from('input'));
  await new Promise((r) => upstream.once('finish', r));
  upstream.emit('close');
  const outcome = await done;
  assert.is(outcome.bytesUp, 5);
  assert.is(outcome.exitCode, null);
  assert.ok(client.log.includes('exit 255'));
});

relay('a command killed by a signal: the signal is passed on, and digestUp covers what the client sent', async () => {
  const client = fakeClient();
  const upstream = fakeUpstream();
  const done = relayExec(client.channel, upstream as unknown as ClientChannel);
  client.stdin.write(Buffer.from('abc'));
  await new Promise((r) => setImmediate(r));
  upstream.emit('exit', null, 'TERM');
  upstream.emit('close');
  const outcome = await done;
  assert.equal([outcome.exitCode, outcome.signal], [null, 'TERM']);
  assert.is(outcome.digestUp, 'sha256:' + createHash('sha256').update('abc').digest('hex'));
  assert.equal(client.log.slice(-2), ['exit TERM', 'end']);
});

relay('a forwarded connection (no exit status): the target EOF is passed on, and a close after it is clean', async () => {
  const client = fakeClient();
  const upstream = Object.assign(fakeUpstream(), { close: () => undefined });
  const done = relayExec(client.channel, upstream as unknown as ClientChannel, { exitStatus: false });
  upstream.push(Buffer.from('pong'));
  upstream.push(null);
  await new Promise((r) => setImmediate(r));
  assert.equal(client.log, ['stdout', 'end'], 'EOF after the bytes, and no exit status');
  (client.channel as unknown as EventEmitter).emit('close');
  const outcome = await done;
  assert.equal([outcome.clientGone, outcome.bytes], [false, 4]);
});

relay.run();

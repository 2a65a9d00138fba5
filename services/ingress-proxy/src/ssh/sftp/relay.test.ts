import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import { createHash } from 'node:crypto';
import { EventEmitter } from 'node:events';
import { Duplex, PassThrough, Writable } from 'node:stream';
import type { ClientChannel, ServerChannel } from 'ssh2';
import { parseReply } from './parser.js';
import { relaySftp, type FileRequest, type FileResult } from './relay.js';

const u32 = (v: number) => {
  const b = Buffer.alloc(4);
  b.writeUInt32BE(v);
  return b;
};
const str = (s: string | Buffer) => Buffer.concat([u32(Buffer.byteLength(s)), Buffer.from(s)]);
const frame = (...parts: Buffer[]) => {
  const body = Buffer.concat(parts);
  return Buffer.concat([u32(body.length), body]);
};
const byte = (b: number) => Buffer.from([b]);
const openWrite = (id: number, path: string) => frame(byte(3), u32(id), str(path), u32(0x1a), u32(0));
const write = (id: number, data: string) => frame(byte(6), u32(id), str('h1'), Buffer.alloc(8), str(data)); // at offset 0
const close = (id: number) => frame(byte(4), u32(id), str('h1'));
const handle = (id: number) => frame(byte(102), u32(id), str('h1'));
const ok = (id: number) => frame(byte(101), u32(id), u32(0), str(''), str(''));

/** The client side: what the relay writes to it is collected; `send` types packets in. */
function fakeClient(highWaterMark = 1 << 20) {
  const input = new PassThrough();
  const received: Buffer[] = [];
  const out = new Writable({ highWaterMark, write: (c: Buffer, _e, cb) => void (received.push(c), highWaterMark < 64 ? undefined : cb()) });
  const channel = Object.assign(new EventEmitter(), {
    stderr: new PassThrough(),
    write: (c: Buffer, cb: () => void) => out.write(c, cb),
    pause: () => input.pause(),
    resume: () => input.resume(),
    isPaused: () => input.isPaused(),
    exit: () => undefined,
    end: () => undefined,
    close: () => channel.emit('close'),
  });
  out.on('drain', () => channel.emit('drain'));
  input.on('data', (d) => channel.emit('data', d));
  return { channel, send: (b: Buffer) => input.write(b), received };
}

/** The target side: what the relay forwards is collected; `reply` answers. */
function fakeUpstream() {
  const sent: Buffer[] = [];
  const stream = new Duplex({ read() {}, write: (c: Buffer, _e, cb) => void (sent.push(c), cb()) });
  return Object.assign(stream, { stderr: new PassThrough(), sent, reply: (b: Buffer) => stream.push(b) });
}

const tick = () => new Promise((r) => setImmediate(r));
const test = suite('ssh/relaySftp');

test('nothing reaches the target while an open is being decided; a refusal answers PERMISSION_DENIED', async () => {
  const client = fakeClient();
  const upstream = fakeUpstream();
  let decide: (refusal?: string) => void = () => undefined;
  const results: FileResult[] = [];
  const hooks = {
    decide: (r: FileRequest) => new Promise<{ token: FileRequest; refusal?: string }>((resolve) => (decide = (refusal) => resolve({ token: r, refusal }))),
    finished: (_t: FileRequest, r: FileResult) => void results.push(r),
  };
  void relaySftp(client.channel as unknown as ServerChannel, upstream as unknown as ClientChannel, hooks);
  client.send(Buffer.concat([openWrite(1, '/etc/x'), close(2)]));
  await tick();
  assert.is(upstream.sent.length, 0, 'held while the verdict is pending');
  assert.ok(client.channel.isPaused(), 'and the client is not read');
  decide('Agate refused: no');
  await tick();
  const reply = parseReply(client.received[0]!.subarray(4));
  assert.equal(reply, { kind: 'status', id: 1, code: 3, message: 'Agate refused: no' });
  assert.is(upstream.sent.length, 1, 'only the close went on');
  assert.is(results[0]!.refused, true);
});

test('an allowed write is forwarded; bytes and the digest are recorded at close', async () => {
  const client = fakeClient();
  const upstream = fakeUpstream();
  const results: FileResult[] = [];
  const hooks = { decide: async (r: FileRequest) => ({ token: r }), finished: (_t: FileRequest, r: FileResult) => void results.push(r) };
  void relaySftp(client.channel as unknown as ServerChannel, upstream as unknown as ClientChannel, hooks);
  client.send(openWrite(1, '/tmp/f'));
  await tick();
  upstream.reply(handle(1));
  await tick();
  client.send(Buffer.concat([write(2, 'hello'), close(3)]));
  await tick();
  upstream.reply(Buffer.concat([ok(2), ok(3)]));
  await tick();
  assert.is(upstream.sent.length, 3);
  assert.is(results.length, 1);
  assert.is(results[0]!.bytesWritten, 5);
  assert.is(results[0]!.digest, 'sha256:' + createHash('sha256').update('hello').digest('hex'));
});

test('a client that does not drain pauses the target', async () => {
  const client = fakeClient(16); // tiny buffer, and its first write never completes
  const upstream = fakeUpstream();
  const hooks = { decide: async (r: FileRequest) => ({ token: r }), finished: () => undefined };
  void relaySftp(client.channel as unknown as ServerChannel, upstream as unknown as ClientChannel, hooks);
  upstream.reply(frame(byte(103), u32(9), str('x'.repeat(100))));
  await tick();
  assert.ok(upstream.isPaused(), 'the target is paused until the client drains');
});

test.run();

import { suite } from '../../../../../test/harness/suite.js';
import * as assert from 'uvu/assert';
import { createHash } from 'node:crypto';
import { EventEmitter } from 'node:events';
import { Duplex, PassThrough, Writable } from 'node:stream';
import type { ClientChannel, ServerChannel } from 'ssh2';
import { ErrorCode } from '../../../../../core/src/errors.js';
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
const openRead = (id: number, path: string) => frame(byte(3), u32(id), str(path), u32(0x01), u32(0));
const read = (id: number, offset: number, length: number) => frame(byte(5), u32(id), str('h1'), u64(offset), u32(length));
const data = (id: number, bytes: Buffer) => frame(byte(103), u32(id), str(bytes));
const writeAt = (id: number, offset: number, bytes: Buffer) => frame(byte(6), u32(id), str('h1'), u64(offset), str(bytes));
function u64(v: number) {
  const b = Buffer.alloc(8);
  b.writeBigUInt64BE(BigInt(v));
  return b;
}
/** Sends `bytes` in pieces of `size`, a turn of the event loop apart. */
async function inPieces(send: (b: Buffer) => unknown, bytes: Buffer, size: number) {
  for (let at = 0; at < bytes.length; at += size) {
    send(bytes.subarray(at, at + size));
    await tick();
  }
}
const sha256 = (...parts: Buffer[]) => 'sha256:' + createHash('sha256').update(Buffer.concat(parts)).digest('hex');

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
type Decision = { token: FileRequest; refusal?: string };
const allow = async (r: FileRequest): Promise<Decision> => ({ token: r });

/** relaySftp between a fake client and target, each result it records collected; `decide` allows everything by default. */
function relay(decide: (r: FileRequest) => Promise<Decision> = allow, client = fakeClient()) {
  const upstream = fakeUpstream();
  const results: FileResult[] = [];
  const outcome = relaySftp(client.channel as unknown as ServerChannel, upstream as unknown as ClientChannel, { decide, finished: (_t, r) => void results.push(r) });
  return { client, upstream, results, outcome };
}
const test = suite('ssh/relaySftp');

test('nothing reaches the target while an open is being decided; a refusal answers PERMISSION_DENIED', async () => {
  let decide: (refusal?: string) => void = () => undefined;
  const { client, upstream, results } = relay((r) => new Promise((resolve) => (decide = (refusal) => resolve({ token: r, refusal }))));
  client.send(Buffer.concat([openWrite(1, '/etc/x'), close(2)]));
  await tick();
  assert.is(upstream.sent.length, 0, 'held while the verdict is pending');
  assert.ok(client.channel.isPaused(), 'and the client is not read');
  decide('Agate refused: no');
  await tick();
  const reply = parseReply(client.received[0]!.subarray(4));
  assert.equal(reply, { kind: 'status', id: 1, code: 3, message: 'Agate refused: no' });
  assert.ok(Buffer.concat(upstream.sent).equals(close(2)), 'only the close went on');
  assert.is(results[0]!.refused, true);
});

test('an allowed write is forwarded; bytes and the digest are recorded at close', async () => {
  const { client, upstream, results } = relay();
  client.send(openWrite(1, '/tmp/f'));
  await tick();
  upstream.reply(handle(1));
  await tick();
  client.send(Buffer.concat([write(2, 'hello'), close(3)]));
  await tick();
  upstream.reply(Buffer.concat([ok(2), ok(3)]));
  await tick();
  assert.ok(Buffer.concat(upstream.sent).equals(Buffer.concat([openWrite(1, '/tmp/f'), write(2, 'hello'), close(3)])), 'all three reached the target');
  assert.is(results.length, 1);
  assert.is(results[0]!.bytesWritten, 5);
  assert.is(results[0]!.digest, 'sha256:' + createHash('sha256').update('hello').digest('hex'));
});

test('a client that does not drain pauses the target', async () => {
  const { upstream } = relay(allow, fakeClient(16)); // tiny buffer, and its first write never completes
  upstream.reply(frame(byte(103), u32(9), str('x'.repeat(100))));
  await tick();
  assert.ok(upstream.isPaused(), 'the target is paused until the client drains');
});

test('a target that does not drain holds the client, through a large write, until it does', async () => {
  const client = fakeClient();
  const pending: (() => void)[] = [];
  const sent: Buffer[] = [];
  // A target channel with a small buffer whose writes complete only when released.
  const upstream = Object.assign(new Duplex({ highWaterMark: 1024, read() {}, write: (c: Buffer, _e, cb) => void (sent.push(c), pending.push(cb)) }), { stderr: new PassThrough() });
  const hooks = { decide: async (r: FileRequest) => ({ token: r }), finished: () => undefined };
  void relaySftp(client.channel as unknown as ServerChannel, upstream as unknown as ClientChannel, hooks);
  // The file is opened first: a write names a handle an open returned.
  const opened = openWrite(1, '/tmp/slow');
  client.send(opened);
  await tick();
  pending.shift()!();
  upstream.push(handle(1));
  await tick();
  const stream = writeAt(2, 0, Buffer.alloc(100_000, 6));
  client.send(stream.subarray(0, 32_768));
  await tick();
  assert.ok(client.channel.isPaused(), 'the client is not read while the target is behind');
  client.send(stream.subarray(32_768));
  await tick();
  assert.is(Buffer.concat(sent).length, opened.length + 32_768, 'nothing more was forwarded');
  while (pending.length > 0) {
    pending.shift()!();
    await tick();
  }
  assert.ok(!client.channel.isPaused(), 'read again once the target drained');
  assert.ok(Buffer.concat(sent).equals(Buffer.concat([opened, stream])), 'and the rest went on');
});

test('large writes move on piece by piece as they arrive; the target gets every byte, the digest covers the file', async () => {
  const { client, upstream, results } = relay();
  client.send(openWrite(1, '/tmp/big'));
  await tick();
  upstream.reply(handle(1));
  await tick();
  const a = Buffer.alloc(200_000, 1);
  const b = Buffer.alloc(100_000, 2);
  const stream = Buffer.concat([writeAt(2, 0, a), writeAt(3, a.length, b), close(4)]);
  const sentBefore = upstream.sent.length;
  await inPieces(client.send, stream.subarray(0, 32_768), 32_768);
  assert.ok(upstream.sent.length > sentBefore, 'the first write is forwarded before it has fully arrived');
  await inPieces(client.send, stream.subarray(32_768), 32_768);
  assert.ok(Buffer.concat(upstream.sent.slice(sentBefore)).equals(stream), 'the target gets the bytes unchanged');
  assert.is(upstream.sent.length - sentBefore, Math.ceil(stream.length / 32_768), 'each chunk leaves in one write, as it came');
  upstream.reply(Buffer.concat([ok(2), ok(3), ok(4)]));
  await tick();
  assert.equal([results[0]!.bytesWritten, results[0]!.digest], [a.length + b.length, sha256(a, b)]);
});

test('large data replies stream to the client; bytes read and the digest are recorded at close', async () => {
  const { client, upstream, results } = relay();
  client.send(openRead(1, '/tmp/big'));
  await tick();
  upstream.reply(handle(1));
  await tick();
  client.send(Buffer.concat([read(2, 0, 65_536), read(3, 65_536, 65_536)]));
  await tick();
  const a = Buffer.alloc(65_536, 3);
  const b = Buffer.alloc(40_000, 4);
  const replies = Buffer.concat([data(2, a), data(3, b)]);
  const before = client.received.length;
  await inPieces(upstream.reply, replies, 10_000);
  assert.ok(Buffer.concat(client.received.slice(before)).equals(replies), 'the client gets the replies unchanged');
  client.send(close(4));
  await tick();
  upstream.reply(ok(4));
  await tick();
  assert.equal([results[0]!.bytesRead, results[0]!.digest], [a.length + b.length, sha256(a, b)]);
});

test("Agate's refusal waits while a large data reply is half sent, then follows it", async () => {
  const { client, upstream } = relay(async (r) => (r.path === '/secret' ? { token: r, refusal: 'no' } : { token: r }));
  client.send(openRead(1, '/tmp/big'));
  await tick();
  upstream.reply(handle(1));
  client.send(read(2, 0, 65_536));
  await tick();
  const reply = data(2, Buffer.alloc(65_536, 5));
  const before = client.received.length;
  upstream.reply(reply.subarray(0, 30_000));
  await tick();
  client.send(openRead(3, '/secret'));
  await tick();
  await tick();
  upstream.reply(reply.subarray(30_000));
  await tick();
  const got = Buffer.concat(client.received.slice(before));
  assert.ok(got.subarray(0, reply.length).equals(reply), 'the data reply arrives whole');
  assert.equal(parseReply(got.subarray(reply.length + 4)), { kind: 'status', id: 3, code: 3, message: 'no' });
});

test('an unknown packet type goes to the target undecided and its answer comes back', async () => {
  const decided: FileRequest[] = [];
  const { client, upstream } = relay(async (r) => (decided.push(r), { token: r }));
  const unknown = frame(byte(99), u32(7), str('x'));
  client.send(unknown);
  await tick();
  upstream.reply(frame(byte(101), u32(7), u32(8), str('Operation unsupported'), str('')));
  await tick();
  assert.ok(Buffer.concat(upstream.sent).equals(unknown));
  assert.equal(parseReply(client.received[0]!.subarray(4)), { kind: 'status', id: 7, code: 8, message: 'Operation unsupported' });
  assert.is(decided.length, 0);
});

test('a malformed packet closes the channel with PROTOCOL_VIOLATION; nothing of it reaches the target', async () => {
  const { client, upstream, outcome } = relay();
  let closed = false;
  Object.assign(upstream, { close: () => void (closed = true) });
  const stderr: Buffer[] = [];
  client.channel.stderr.on('data', (c: Buffer) => stderr.push(c));
  client.send(frame(byte(3), u32(1), u32(500))); // an open whose path runs past the packet
  const result = await outcome;
  assert.is(result.error?.code, ErrorCode.PROTOCOL_VIOLATION);
  assert.is(result.clientGone, false, 'Agate closed it, the client did not go away');
  assert.ok(closed, 'the target channel is closed');
  assert.is(upstream.sent.length, 0);
  assert.match(Buffer.concat(stderr).toString(), /^Agate closed the sftp channel: sftp packet ends early/);
});

test('a violation found behind a pending decision is recorded at once: a paused ssh2 channel may never report its close', async () => {
  const { client, upstream, outcome, results } = relay();
  Object.assign(client.channel, { close: () => undefined }); // as ssh2 does for a paused channel: no 'close'
  Object.assign(upstream, { close: () => undefined });
  client.send(Buffer.concat([openRead(1, '/tmp/a'), read(2, 0, 10)])); // the read names a handle no open returned
  const result = await outcome;
  assert.is(result.error?.code, ErrorCode.PROTOCOL_VIOLATION);
  assert.match(result.error?.message ?? '', /names a handle that no open of this channel returned/);
  assert.equal(results.map((r) => r.message), ['the channel closed before the target answered'], 'the allowed open is recorded too');
});

test('streamed data replies answered out of order are counted; the digest is withheld', async () => {
  const { client, upstream, results } = relay();
  client.send(openRead(1, '/tmp/big'));
  await tick();
  upstream.reply(handle(1));
  client.send(Buffer.concat([read(2, 0, 65_536), read(3, 65_536, 65_536)]));
  await tick();
  await inPieces(upstream.reply, Buffer.concat([data(3, Buffer.alloc(65_536, 7)), data(2, Buffer.alloc(65_536, 8))]), 20_000);
  client.send(close(4));
  await tick();
  upstream.reply(ok(4));
  await tick();
  assert.equal([results[0]!.bytesRead, results[0]!.digest], [131_072, null]);
});

test.run();

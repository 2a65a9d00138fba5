import { suite } from '../../../../../test/harness/suite.js';
import * as assert from 'uvu/assert';
import { HEAD_BYTES, PacketFramer, type Frame } from './framer.js';
import { parseDataHead, parseReply, parseRequest, parseWriteHead } from './parser.js';
import { statusPacket } from './serializer.js';

const str = (s: string | Buffer) => {
  const b = Buffer.isBuffer(s) ? s : Buffer.from(s);
  const n = Buffer.alloc(4);
  n.writeUInt32BE(b.length);
  return Buffer.concat([n, b]);
};
const u32 = (v: number) => {
  const b = Buffer.alloc(4);
  b.writeUInt32BE(v);
  return b;
};
const frame = (body: Buffer) => Buffer.concat([u32(body.length), body]);
const open = frame(Buffer.concat([Buffer.from([3]), u32(7), str('/etc/passwd'), u32(0x1a), u32(0)]));
const write = frame(Buffer.concat([Buffer.from([6]), u32(8), str(Buffer.from('abcd', 'hex')), Buffer.alloc(8), str('hello')]));

const framer = suite('ssh/sftp PacketFramer');

framer('a packet split at the start, the middle and the end comes out whole; two in one chunk come out both', () => {
  for (const cut of [1, 3, 4, 10, open.length - 1]) {
    const f = new PacketFramer();
    assert.equal(f.push(open.subarray(0, cut)), []);
    assert.equal(f.push(open.subarray(cut)), [{ kind: 'packet', packet: open }]);
    assert.is(f.buffered, 0);
  }
  assert.equal(new PacketFramer().push(Buffer.concat([open, write])), [{ kind: 'packet', packet: open }, { kind: 'packet', packet: write }]);
});

const bigData = Buffer.alloc(100_000, 7);
const bigWrite = frame(Buffer.concat([Buffer.from([6]), u32(8), str(Buffer.from('abcd', 'hex')), Buffer.alloc(8), str(bigData)]));

framer('a large packet of a streamed type comes out as its head, then its bytes as they arrive, uncopied', () => {
  for (const cut of [1, 5, HEAD_BYTES - 1, HEAD_BYTES, HEAD_BYTES + 1, 40_000, bigWrite.length - 1]) {
    const f = new PacketFramer({ streamed: [6] });
    const frames: Frame[] = [...f.push(bigWrite.subarray(0, cut)), ...f.push(Buffer.concat([bigWrite.subarray(cut), open]))];
    const first = frames[0]!;
    assert.is(first.kind, 'head', `cut at ${cut}`);
    assert.is(first.kind === 'head' && first.length, bigWrite.length);
    const pieces = frames.slice(0, -1).map((x) => (x.kind === 'head' ? x.head : x.kind === 'rest' ? x.bytes : Buffer.alloc(0)));
    assert.ok(Buffer.concat(pieces).equals(bigWrite), 'the pieces are the packet');
    const lastRest = frames.at(-2)!;
    assert.ok(lastRest.kind === 'rest' && lastRest.last, 'the last piece says so');
    assert.equal(frames.at(-1), { kind: 'packet', packet: open }, 'and the next packet follows whole');
  }
  // The same packet, of a type that is not streamed, comes out whole.
  assert.equal(new PacketFramer({ streamed: [103] }).push(bigWrite), [{ kind: 'packet', packet: bigWrite }]);
});

framer('a length above the limit is refused before anything is buffered', () => {
  try {
    new PacketFramer({ maxPacket: 1000 }).push(u32(5000));
    assert.unreachable();
  } catch (err) {
    assert.is((err as { code: string }).code, 'PROTOCOL_FRAME_TOO_LARGE');
  }
});

const parser = suite('ssh/sftp parser');

parser('open, write, rename and the OpenSSH rename extension', () => {
  assert.equal(parseRequest(open.subarray(4)), { kind: 'open', id: 7, path: '/etc/passwd', flags: 0x1a });
  const w = parseRequest(write.subarray(4));
  assert.is(w.kind, 'write');
  assert.equal(w.kind === 'write' && [w.handle, w.offset, w.data.toString()], ['abcd', 0, 'hello']);
  assert.equal(parseRequest(Buffer.concat([Buffer.from([18]), u32(9), str('/a'), str('/b')])), { kind: 'change', id: 9, operation: 'rename', path: '/a', targetPath: '/b', name: 'rename' });
  assert.equal(parseRequest(Buffer.concat([Buffer.from([200]), u32(9), str('posix-rename@openssh.com'), str('/a'), str('/b')])), { kind: 'change', id: 9, operation: 'rename', path: '/a', targetPath: '/b', name: 'posix-rename@openssh.com' });
});

parser('the head of a streamed write or data reply, and a data length that overruns the packet', () => {
  const head = parseWriteHead(bigWrite.subarray(4, HEAD_BYTES), bigWrite.length - 4);
  assert.equal([head.id, head.handle, head.offset, head.dataLength], [8, 'abcd', 0, bigData.length]);
  assert.ok(head.data.equals(bigWrite.subarray(4 + 1 + 4 + 6 + 8 + 4, HEAD_BYTES)));
  const reply = Buffer.concat([Buffer.from([103]), u32(9), u32(50_000)]);
  assert.equal(parseDataHead(reply, reply.length + 50_000), { id: 9, dataLength: 50_000, data: Buffer.alloc(0) });
  try {
    parseDataHead(reply, reply.length + 49_999);
    assert.unreachable();
  } catch (err) {
    assert.is((err as { code: string }).code, 'PROTOCOL_VIOLATION');
  }
});

parser('a truncated packet is a typed protocol error', () => {
  try {
    parseRequest(open.subarray(4, 12));
    assert.unreachable();
  } catch (err) {
    assert.is((err as { code: string }).code, 'PROTOCOL_VIOLATION');
  }
});

parser('the status packet Agate sends round-trips', () => {
  assert.equal(parseReply(statusPacket(5, 3, 'refused by rule x').subarray(4)), { kind: 'status', id: 5, code: 3, message: 'refused by rule x' });
});

framer.run();
parser.run();

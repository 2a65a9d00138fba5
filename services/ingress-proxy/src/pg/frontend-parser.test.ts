import { suite } from '../../../../test/harness/suite.js';
import * as assert from 'uvu/assert';
import { serialize } from 'pg-protocol';
import { BufferWriter } from './buffer-writer.js';
import { FrontendParser, type FrontendParserOptions } from './frontend-parser.js';
import type { FrontendMessage } from './messages.js';

const STARTUP = serialize.startup({ user: 'alice', database: 'app' });

function make(options?: FrontendParserOptions, typed = false) {
  const msgs: FrontendMessage[] = [];
  const parser = new FrontendParser((m) => msgs.push(m), options);
  if (typed) {
    parser.push(STARTUP);
    msgs.length = 0;
  }
  return { parser, msgs };
}

function errorCode(fn: () => unknown): string | undefined {
  try { fn(); } catch (e) { return (e as { code?: string }).code; }
  return undefined;
}

const startup = suite('FrontendParser startup phase');
startup('StartupMessage: version and parameters, then typed phase', () => {
  const { parser, msgs } = make();
  assert.is(parser.phase, 'startup');
  parser.push(STARTUP);
  const m = msgs[0]!;
  assert.is(m.type, 'startup');
  if (m.type !== 'startup') return;
  assert.is(m.protocolVersion, 196608);
  assert.equal({ ...m.parameters }, { user: 'alice', database: 'app', client_encoding: 'UTF8' });
  assert.ok(m.raw.equals(STARTUP));
  assert.is(parser.phase, 'typed');
});
startup('SSLRequest then StartupMessage', () => {
  const { parser, msgs } = make();
  parser.push(serialize.requestSsl());
  assert.is(msgs[0]!.type, 'sslRequest');
  assert.is(parser.phase, 'startup');
  parser.push(STARTUP);
  assert.is(msgs[1]!.type, 'startup');
  assert.is(parser.phase, 'typed');
});
startup('GSSENCRequest, then SSLRequest, then StartupMessage', () => {
  const gss = Buffer.from([0, 0, 0, 8, 0x04, 0xd2, 0x16, 0x30]);
  const { parser, msgs } = make();
  parser.push(gss);
  parser.push(serialize.requestSsl());
  parser.push(STARTUP);
  assert.equal(msgs.map((m) => m.type), ['gssEncRequest', 'sslRequest', 'startup']);
});
startup('data pipelined behind an SSLRequest is refused', () => {
  const { parser } = make();
  assert.is(errorCode(() => parser.push(Buffer.concat([serialize.requestSsl(), STARTUP]))), 'PROTOCOL_VIOLATION');
});
startup('a second SSLRequest is refused', () => {
  const { parser } = make();
  parser.push(serialize.requestSsl());
  assert.is(errorCode(() => parser.push(serialize.requestSsl())), 'PROTOCOL_VIOLATION');
});
startup('CancelRequest carries process id and secret key; nothing may follow', () => {
  const { parser, msgs } = make();
  parser.push(serialize.cancel(4242, -7));
  assert.equal({ ...msgs[0]!, raw: undefined }, { type: 'cancelRequest', processId: 4242, secretKey: -7, raw: undefined });
  assert.is(parser.phase, 'ended');
  assert.is(errorCode(() => parser.push(Buffer.from([0]))), 'PROTOCOL_VIOLATION');
});
startup('protocol 2.0 is unsupported; a __proto__ parameter stays plain data', () => {
  const old = new BufferWriter().addInt32(0x20000).addByte(0).flush();
  assert.is(errorCode(() => make().parser.push(old)), 'PROTOCOL_UNSUPPORTED');
  const sneaky = new BufferWriter().addInt32(196608).addCString('__proto__').addCString('x').addByte(0).flush();
  const { parser, msgs } = make();
  parser.push(sneaky);
  const m = msgs[0]!;
  assert.ok(m.type === 'startup' && m.parameters['__proto__'] === 'x' && Object.getPrototypeOf(m.parameters) === null);
});
startup('startup packets over 10000 bytes or under 8 are refused from the header alone', () => {
  assert.is(errorCode(() => make().parser.push(Buffer.from([0, 0, 0x27, 0x11]))), 'PROTOCOL_FRAME_TOO_LARGE');
  assert.is(errorCode(() => make().parser.push(Buffer.from([0, 0, 0, 4]))), 'PROTOCOL_VIOLATION');
});
startup('a StartupMessage missing its terminator is truncated', () => {
  const bad = new BufferWriter().addInt32(196608).addCString('user').addCString('bob').flush();
  assert.is(errorCode(() => make().parser.push(bad)), 'PROTOCOL_VIOLATION');
});
startup('Terminate ends the stream', () => {
  const { parser } = make({}, true);
  parser.push(serialize.end());
  assert.is(parser.phase, 'ended');
});
startup.run();

const chunks = suite('FrontendParser chunking');
const stream = Buffer.concat([
  serialize.parse({ name: 's', text: 'select $1' }), serialize.bind({ statement: 's', values: ['x'] }),
  serialize.describe({ type: 'P' }), serialize.execute(), serialize.sync(), serialize.query('select now()'),
]);
const expected = ['parse', 'bind', 'describe', 'execute', 'sync', 'query'];
chunks('a message split at its start, middle and end', () => {
  const frame = serialize.query('select 1');
  for (const cut of [1, 3, 5, 8, frame.length - 1]) {
    const { parser, msgs } = make({}, true);
    parser.push(frame.subarray(0, cut));
    assert.is(msgs.length, 0, `nothing emitted after ${cut} bytes`);
    assert.is(parser.buffered, cut);
    parser.push(frame.subarray(cut));
    assert.is(msgs.length, 1);
    assert.ok(msgs[0]!.raw.equals(frame));
  }
});
chunks('two messages in one chunk', () => {
  const { parser, msgs } = make({}, true);
  parser.push(Buffer.concat([serialize.query('a'), serialize.query('b')]));
  assert.equal(msgs.map((m) => m.type === 'query' && m.text), ['a', 'b']);
});
chunks('many messages, startup included, fed one byte at a time', () => {
  const { parser, msgs } = make();
  const all = Buffer.concat([STARTUP, stream]);
  for (let i = 0; i < all.length; i++) parser.push(all.subarray(i, i + 1));
  assert.equal(msgs.map((m) => m.type), ['startup', ...expected]);
  assert.ok(Buffer.concat(msgs.map((m) => m.raw)).equals(all));
  assert.is(parser.buffered, 0);
});
chunks('a large CopyData arriving in small chunks; earlier messages stay intact', () => {
  const { parser, msgs } = make({}, true);
  const big = Buffer.alloc(200_000);
  for (let i = 0; i < big.length; i++) big[i] = i % 251;
  const all = Buffer.concat([serialize.query('copy t from stdin'), serialize.copyData(big), serialize.copyDone()]);
  for (let i = 0; i < all.length; i += 1000) parser.push(all.subarray(i, i + 1000));
  assert.equal(msgs.map((m) => m.type), ['query', 'copyData', 'copyDone']);
  const q = msgs[0]!;
  assert.ok(q.type === 'query' && q.text === 'copy t from stdin');
  const d = msgs[1]!;
  assert.ok(d.type === 'copyData' && d.data.equals(big));
});
chunks('the caller\'s chunk is neither kept nor modified', () => {
  const { parser, msgs } = make({}, true);
  const chunk = Buffer.concat([serialize.query('first'), serialize.query('sec')]);
  const copy = Buffer.from(chunk);
  parser.push(chunk.subarray(0, chunk.length - 2));
  chunk.fill(0, 0, chunk.length - 2); // the socket may reuse its buffer
  parser.push(chunk.subarray(chunk.length - 2));
  assert.ok(chunk.subarray(chunk.length - 2).equals(copy.subarray(copy.length - 2)));
  assert.equal(msgs.map((m) => m.type === 'query' && m.text), ['first', 'sec']);
});
chunks.run();

const errors = suite('FrontendParser errors');
errors('an oversize declared length is refused before the body arrives', () => {
  const { parser } = make({ maxMessageSize: 16 << 20 }, true);
  const header = Buffer.from([0x64, 0, 0, 0, 0]);
  header.writeUInt32BE((16 << 20) + 1, 1);
  assert.is(errorCode(() => parser.push(header)), 'PROTOCOL_FRAME_TOO_LARGE');
  assert.is(errorCode(() => make({}, true).parser.push(Buffer.from([0x51, 0xff, 0xff, 0xff, 0xff]))), 'PROTOCOL_FRAME_TOO_LARGE');
});
errors('a declared length under 4 is a violation', () => {
  assert.is(errorCode(() => make({}, true).parser.push(Buffer.from([0x51, 0, 0, 0, 3]))), 'PROTOCOL_VIOLATION');
});
errors('a body truncated inside its declared frame is a ProtocolError', () => {
  // Query whose frame ends before the string's NUL
  assert.is(errorCode(() => make({}, true).parser.push(Buffer.from([0x51, 0, 0, 0, 6, 0x61, 0x62]))), 'PROTOCOL_VIOLATION');
  // Bind whose parameter claims more bytes than the frame holds
  const bind = new BufferWriter().addCString('').addCString('').addInt16(0).addInt16(1).addInt32(100).addBytes(Buffer.from('x')).flush(0x42);
  assert.is(errorCode(() => make({}, true).parser.push(bind)), 'PROTOCOL_VIOLATION');
  // Sync with a stray body byte
  assert.is(errorCode(() => make({}, true).parser.push(Buffer.from([0x53, 0, 0, 0, 5, 0]))), 'PROTOCOL_VIOLATION');
});
errors('an unknown type byte is refused, and the parser stays failed', () => {
  const { parser, msgs } = make({}, true);
  assert.is(errorCode(() => parser.push(Buffer.from([0x5a, 0, 0, 0, 4]))), 'PROTOCOL_VIOLATION');
  assert.is(errorCode(() => parser.push(serialize.sync())), 'PROTOCOL_VIOLATION');
  assert.is(msgs.length, 0);
});
errors('a bad Describe target is refused', () => {
  const bad = new BufferWriter().addByte(0x58).addCString('').flush(0x44);
  assert.is(errorCode(() => make({}, true).parser.push(bad)), 'PROTOCOL_VIOLATION');
});
errors('an exception from the callback leaves later messages parseable', () => {
  let n = 0;
  const seen: string[] = [];
  const parser = new FrontendParser((m) => { if (n++ === 1) throw new Error('boom'); seen.push(m.type); });
  assert.throws(() => parser.push(Buffer.concat([STARTUP, serialize.sync(), serialize.flush()])), /boom/);
  parser.push(Buffer.alloc(0));
  assert.equal(seen, ['startup', 'flush']);
});
errors.run();

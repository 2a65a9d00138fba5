import { suite } from '../../../../test/harness/suite.js';
import * as assert from 'uvu/assert';
import { BackendFrameReader, type BackendFrame } from './backend-frames.js';
import { serialize } from './backend-serializer.js';

const frames = Buffer.concat([
  serialize.commandComplete('SELECT 1'),
  serialize.dataRow([Buffer.from('x'.repeat(300)), null]),
  serialize.readyForQuery('I'),
]);

function feed(chunks: Buffer[], max = 1 << 20): BackendFrame[] {
  const out: BackendFrame[] = [];
  const reader = new BackendFrameReader((f) => out.push({ code: f.code, raw: Buffer.from(f.raw) }), max);
  for (const c of chunks) reader.push(c);
  return out;
}

const reader = suite('BackendFrameReader');

reader('three frames in one chunk come out whole and unchanged', () => {
  const out = feed([frames]);
  assert.equal(out.map((f) => String.fromCharCode(f.code)), ['C', 'D', 'Z']);
  assert.is(Buffer.concat(out.map((f) => f.raw)).toString('hex'), frames.toString('hex'));
});

reader('frames split at the start, middle and end of a frame', () => {
  for (const cut of [1, 3, 5, 20, 200, frames.length - 1]) {
    const out = feed([frames.subarray(0, cut), frames.subarray(cut)]);
    assert.is(Buffer.concat(out.map((f) => f.raw)).toString('hex'), frames.toString('hex'), `cut at ${cut}`);
  }
});

reader('one byte at a time', () => {
  const out = feed([...frames].map((b) => Buffer.of(b)));
  assert.is(out.length, 3);
  assert.is(Buffer.concat(out.map((f) => f.raw)).toString('hex'), frames.toString('hex'));
});

reader('after a frame that spans chunks, the frames wholly in the next chunk are views of it, not copies', () => {
  // Its own memory, as a socket chunk has (small Buffer.concat results share Node's pool).
  const rows = Buffer.alloc(frames.length * 2);
  frames.copy(rows, 0);
  frames.copy(rows, frames.length);
  for (const cut of [2, 40]) {
    const raws: Buffer[] = [];
    const reader = new BackendFrameReader((f) => raws.push(f.raw), 1 << 20);
    const second = rows.subarray(cut);
    reader.push(rows.subarray(0, cut));
    reader.push(second);
    assert.is(Buffer.concat(raws).toString('hex'), rows.toString('hex'), `cut at ${cut}`);
    let start = 0;
    for (const raw of raws) {
      const spans = start < cut && start + raw.length > cut;
      if (start >= cut) assert.ok(raw.buffer === second.buffer, `cut at ${cut}: the frame at ${start} is a view of the chunk`);
      if (spans) assert.ok(raw.buffer !== second.buffer && raw.buffer.byteLength >= raw.length, `cut at ${cut}: the spanning frame is joined`);
      start += raw.length;
    }
  }
});

reader('a frame spread over many chunks, its header cut too, comes out whole', () => {
  const big = serialize.dataRow([Buffer.alloc(10_000, 7)]);
  const stream = Buffer.concat([big, frames]);
  const chunks: Buffer[] = [stream.subarray(0, 2), stream.subarray(2, 4)];
  for (let at = 4; at < stream.length; at += 999) chunks.push(stream.subarray(at, Math.min(stream.length, at + 999)));
  const out = feed(chunks);
  assert.equal(out.map((f) => String.fromCharCode(f.code)), ['D', 'C', 'D', 'Z']);
  assert.is(Buffer.concat(out.map((f) => f.raw)).toString('hex'), stream.toString('hex'));
});

reader('a declared length over the limit is refused before its body arrives', () => {
  const header = Buffer.from([0x44, 0, 0x10, 0, 0]); // DataRow claiming ~1 MiB
  try {
    feed([header], 64 * 1024);
    assert.unreachable();
  } catch (err) {
    assert.is((err as { code: string }).code, 'PROTOCOL_FRAME_TOO_LARGE');
  }
  try {
    feed([header.subarray(0, 2), header.subarray(2)], 64 * 1024);
    assert.unreachable();
  } catch (err) {
    assert.is((err as { code: string }).code, 'PROTOCOL_FRAME_TOO_LARGE');
  }
});

reader('a length below 4 is a protocol violation', () => {
  try {
    feed([Buffer.from([0x5a, 0, 0, 0, 2])]);
    assert.unreachable();
  } catch (err) {
    assert.is((err as { code: string }).code, 'PROTOCOL_VIOLATION');
  }
});

reader.run();

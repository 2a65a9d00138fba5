import { suite } from '../../../../test/harness/suite.js';
import * as assert from 'uvu/assert';
import { channelFrame, wsFrame } from '../../../../test/harness/ws-frame.js';
import { FrameReader } from './ws-frames.js';

const frames = suite('FrameReader');

frames('one masked frame split at the start, middle and end; two frames in one chunk', () => {
  const f = channelFrame(0, 'echo hi\n', { mask: true });
  for (const at of [1, 2, 7, f.length - 1]) {
    const r = new FrameReader(true, 1024);
    assert.equal(r.push(f.subarray(0, at)), []);
    const [got] = r.push(f.subarray(at));
    assert.is(got!.payload.toString('latin1'), '\x00echo hi\n');
    assert.equal(got!.raw, f, 'forwarded as it came');
  }
  const two = new FrameReader(false, 1024).push(Buffer.concat([channelFrame(1, 'a'), channelFrame(2, 'b')]));
  assert.equal(two.map((x) => x.payload.toString('latin1')), ['\x01a', '\x02b']);
});

frames('16- and 64-bit lengths', () => {
  for (const size of [200, 70_000]) {
    const [got] = new FrameReader(true, 100_000).push(wsFrame(2, Buffer.alloc(size, 7), { mask: true }));
    assert.is(got!.payload.length, size);
  }
});

frames('refuses what it cannot read: reserved bits, unknown opcodes, wrong masking, long control frames, oversize payloads', () => {
  const cases: Array<[fromClient: boolean, bytes: Buffer, code: string]> = [
    [true, wsFrame(2, Buffer.from('x'), { mask: true, rsv: 4 }), 'PROTOCOL_VIOLATION'],
    [true, wsFrame(3, Buffer.from('x'), { mask: true }), 'PROTOCOL_VIOLATION'],
    [true, wsFrame(2, Buffer.from('x')), 'PROTOCOL_VIOLATION'],
    [false, wsFrame(2, Buffer.from('x'), { mask: true }), 'PROTOCOL_VIOLATION'],
    [true, wsFrame(9, Buffer.alloc(126), { mask: true }), 'PROTOCOL_VIOLATION'],
    [true, wsFrame(9, Buffer.alloc(1), { mask: true, fin: false }), 'PROTOCOL_VIOLATION'],
    [true, wsFrame(2, Buffer.alloc(2000), { mask: true }), 'PROTOCOL_FRAME_TOO_LARGE'],
    // The length alone is enough: 2^63 bytes announced, none sent.
    [true, Buffer.from([0x82, 0xff, 0x7f, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff]), 'PROTOCOL_FRAME_TOO_LARGE'],
  ];
  for (const [fromClient, bytes, code] of cases) {
    const r = new FrameReader(fromClient, 1024);
    try {
      r.push(bytes);
      assert.unreachable(bytes.subarray(0, 4).toString('hex'));
    } catch (err) {
      assert.is((err as { code?: string }).code, code, String(err));
    }
    assert.throws(() => r.push(channelFrame(0, 'x', { mask: fromClient })), 'unusable after a failure');
  }
});

frames.run();

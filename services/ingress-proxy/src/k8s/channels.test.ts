import { suite } from '../../../../test/harness/suite.js';
import * as assert from 'uvu/assert';
import { channelFrame, wsFrame } from '../../../../test/harness/ws-frame.js';
import { ChannelReader, chosenProtocol } from './channels.js';

const reader = suite('ChannelReader');
const seen = (r: ChannelReader, bytes: Buffer) => r.push(bytes).data.map((d) => `${d.channel}:${d.data.toString()}`);

reader('the client\'s frames one by one, as the kubelet reads them: a continuation names its own channel; pings forwarded unrecorded', () => {
  const r = new ChannelReader(true, 1024);
  const bytes = Buffer.concat([
    channelFrame(0, 'id\n', { mask: true }),
    wsFrame(9, Buffer.from('p'), { mask: true }),
    // A resize message "continued" by a frame the kubelet reads as stdin.
    wsFrame(2, Buffer.from('\x04{}'), { mask: true, fin: false }),
    wsFrame(0, Buffer.from('\x00rm x\n'), { mask: true }),
    wsFrame(0, Buffer.alloc(0), { mask: true }),
    channelFrame(4, '{"Width":80,"Height":24}', { mask: true }),
  ]);
  const out = r.push(bytes);
  assert.equal(out.data.map((d) => `${d.channel}:${d.data.toString()}`), ['0:id\n', '4:{}', '0:rm x\n', '4:{"Width":80,"Height":24}']);
  assert.equal(out.forward, bytes);
});

reader('the server\'s fragments joined into one message, as kubectl reads them', () => {
  const r = new ChannelReader(false, 1024);
  assert.equal(seen(r, Buffer.concat([wsFrame(2, Buffer.from('\x01ec'), { fin: false }), wsFrame(0, Buffer.from('ho\n'))])), ['1:ec', '1:ho\n']);
});

reader('the channel byte in a later fragment; a close frame recorded', () => {
  const r = new ChannelReader(false, 1024);
  assert.equal(seen(r, Buffer.concat([wsFrame(2, Buffer.alloc(0), { fin: false }), wsFrame(0, Buffer.from('\x01out'))])), ['1:out']);
  const close = Buffer.concat([Buffer.from([0x03, 0xe8]), Buffer.from('bye')]);
  assert.is(r.push(wsFrame(8, close)).closed, '1000 bye');
});

reader('from the server, a continuation with no message, or a message inside another, is refused', () => {
  assert.throws(() => new ChannelReader(false, 1024).push(wsFrame(0, Buffer.from('x'))), /continuation/);
  assert.throws(() => new ChannelReader(false, 1024).push(Buffer.concat([wsFrame(2, Buffer.from('\x01a'), { fin: false }), channelFrame(1, 'b')])), /before the previous/);
});

const chosen = suite('chosenProtocol');

chosen('only a WebSocket with an offered subprotocol and no extension', () => {
  const head = (extra: string) => `HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade${extra}`;
  assert.equal(chosenProtocol(head('\r\nSec-WebSocket-Protocol: v5.channel.k8s.io'), ['v5.channel.k8s.io']), { ok: true, protocol: 'v5.channel.k8s.io' });
  assert.is(chosenProtocol(head(''), ['v5.channel.k8s.io']).ok, false);
  assert.is(chosenProtocol(head('\r\nSec-WebSocket-Protocol: base64.channel.k8s.io'), ['v5.channel.k8s.io']).ok, false);
  assert.is(chosenProtocol(head('\r\nSec-WebSocket-Protocol: v5.channel.k8s.io\r\nSec-WebSocket-Extensions: permessage-deflate'), ['v5.channel.k8s.io']).ok, false);
  assert.is(chosenProtocol('HTTP/1.1 101 Switching Protocols\r\nUpgrade: SPDY/3.1\r\nSec-WebSocket-Protocol: v5.channel.k8s.io', ['v5.channel.k8s.io']).ok, false);
});

reader.run();
chosen.run();

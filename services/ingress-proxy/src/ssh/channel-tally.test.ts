import { suite } from '../../../../test/harness/suite.js';
import * as assert from 'uvu/assert';
import { createHash } from 'node:crypto';
import { EventEmitter } from 'node:events';
import type { ClientChannel, ServerChannel } from 'ssh2';
import { ChannelTally } from './channel-tally.js';

const test = suite('ssh/ChannelTally');

const exits = () => {
  const sent: unknown[][] = [];
  return { client: { exit: (...args: unknown[]) => void sent.push(args) } as unknown as ServerChannel, sent };
};

test('output is counted and digested in order; no output, no digest', () => {
  const t = new ChannelTally();
  t.delivered(Buffer.from('ab'));
  t.delivered(Buffer.from('c'));
  assert.equal([t.bytes, t.digest()], [3, 'sha256:' + createHash('sha256').update('abc').digest('hex')]);
  assert.is(new ChannelTally().digest(), null);
});

test('the exit status, a signal, or 255 when the target gave neither', () => {
  const upstream = new EventEmitter();
  const t = new ChannelTally();
  t.watchExit(upstream as unknown as ClientChannel);
  const none = exits();
  t.sendExit(none.client);
  upstream.emit('exit', 7);
  const code = exits();
  t.sendExit(code.client);
  const killed = new ChannelTally();
  killed.watchExit(upstream as unknown as ClientChannel);
  upstream.emit('exit', null, 'HUP');
  const signal = exits();
  killed.sendExit(signal.client);
  assert.equal([none.sent, code.sent, signal.sent], [[[255]], [[7]], [['HUP', false, '']]]);
});

test.run();

import { suite } from '../../../../test/harness/suite.js';
import * as assert from 'uvu/assert';
import { Duplex } from 'node:stream';
import type { Connection, ServerChannel } from 'ssh2';
import { AgateError } from '../../../../core/src/errors.js';
import { AgentRelay, meterAgentChannel, openAgentChannel } from './agent-relay.js';

const relay = suite('ssh/agent-relay AgentRelay');

relay('hands each stream request to the session and never logs in or signs itself', () => {
  let asked = 0;
  const agent = new AgentRelay((cb) => {
    asked += 1;
    cb(new Error('refused'));
  });
  let streamErr: Error | null | undefined;
  agent.getStream((err) => (streamErr = err));
  assert.is(asked, 1);
  assert.is(streamErr?.message, 'refused');
  let identitiesErr: Error | null | undefined;
  agent.getIdentities((err) => (identitiesErr = err));
  assert.ok(identitiesErr instanceof Error);
});

const open = suite('ssh/agent-relay openAgentChannel');

open('an ssh2 connection without the internals it needs is an error with a code, not a crash', async () => {
  try {
    await openAgentChannel({} as Connection);
    assert.unreachable('must reject');
  } catch (err) {
    assert.instance(err, AgateError);
    assert.is((err as AgateError).code, 'PROTOCOL_UNSUPPORTED');
  }
});

open('asks the protocol for an auth-agent channel and resolves with what ssh2 calls back', async () => {
  const opened: { id: number; window: number; packet: number }[] = [];
  let handler: ((err: Error | undefined, channel: unknown) => void) & { type?: string } = () => undefined;
  const conn = {
    _chanMgr: { add: (h: typeof handler) => ((handler = h), 7) },
    _protocol: { openssh_authAgent: (id: number, window: number, packet: number) => opened.push({ id, window, packet }) },
  };
  const pending = openAgentChannel(conn as unknown as Connection);
  assert.equal(opened, [{ id: 7, window: 2 * 1024 * 1024, packet: 32 * 1024 }]);
  assert.is(handler.type, 'auth-agent@openssh.com');
  const channel = { fake: true };
  handler(undefined, channel);
  assert.is(await pending, channel);
});

const meter = suite('ssh/agent-relay meterAgentChannel');

/** A stand-in for an ssh2 channel: what is written to it is kept, what it "receives" is pushed. */
function fakeChannel(): Duplex & { written: Buffer[]; closeCalled: boolean; close(): void } {
  const written: Buffer[] = [];
  const d = new Duplex({
    read() {},
    write(chunk: Buffer, _enc, cb) {
      written.push(chunk);
      cb();
    },
  }) as Duplex & { written: Buffer[]; closeCalled: boolean; close(): void };
  d.written = written;
  d.closeCalled = false;
  d.close = () => {
    d.closeCalled = true;
    d.destroy();
  };
  return d;
}

meter('counts both ways once ssh2 pipes the target\'s channel through it, and closes the target\'s side with it', async () => {
  const client = fakeChannel();
  const target = fakeChannel();
  let traffic: { up: number; down: number } | undefined;
  const stream = meterAgentChannel(client as unknown as ServerChannel, (t) => (traffic = t));
  // What ssh2's client does with the stream it is given.
  target.pipe(stream).pipe(target);
  target.push(Buffer.from('request!')); // 8 bytes from the target to the client's agent
  client.push(Buffer.from('answer')); // 6 bytes back
  await new Promise((r) => setImmediate(r));
  assert.is(Buffer.concat(client.written).toString(), 'request!');
  assert.is(Buffer.concat(target.written).toString(), 'answer');
  client.close();
  await new Promise((r) => setImmediate(r));
  assert.equal(traffic, { up: 6, down: 8 });
  assert.ok(target.closeCalled, 'the target\'s channel is closed too');
});

relay.run();
open.run();
meter.run();

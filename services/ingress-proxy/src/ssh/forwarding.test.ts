import { suite } from '../../../../test/harness/suite.js';
import * as assert from 'uvu/assert';
import type { AgateEvent, Command, Identity, Response, Verdict } from '../../../../schemas/src/events.js';
import { FakeConnection, FakeReply, FakeUpstream } from '../../../../test/harness/fake-ssh2.js';
import { PolicyBus } from '../../../../test/harness/policy-bus.js';
import { APP, gateOn, notingBus, SSH_UNIT_POLICY, TUNNELER } from '../../../../test/harness/ssh-gate-fixture.js';
import { CANCEL_FORWARD_RULE, Forwarding } from './forwarding.js';
import type { SshGate } from './gate.js';
import type { SessionEvents } from '../session-events.js';

/* Forwarding through the real gate and policy service; the client and the target are fakes. */
interface Ctx {
  pb: PolicyBus;
  client: FakeConnection;
  upstream: FakeUpstream;
  timeline: string[];
  gate: SshGate;
  events: SessionEvents;
  forwarding: Forwarding;
}

const f = suite<Ctx>('ssh/forwarding');
f.before.each(async (ctx) => {
  ctx.pb = await PolicyBus.start(SSH_UNIT_POLICY);
  ctx.client = new FakeConnection();
  ctx.upstream = new FakeUpstream();
  ctx.timeline = [];
  ctx.upstream.onCall = (call) => ctx.timeline.push(`upstream ${call.method}`);
});
f.after.each(async (ctx) => ctx.pb.stop());

function as(ctx: Ctx, identity: Identity, maxChannels?: number): void {
  const options = { maxChannels, bus: notingBus(ctx.pb, ctx.timeline), client: ctx.client.asConnection(), upstream: Promise.resolve(ctx.upstream.asClient()) };
  ({ gate: ctx.gate, events: ctx.events } = gateOn(ctx.pb, identity, options));
  ctx.forwarding = new Forwarding({ gate: ctx.gate, events: ctx.events, closed: () => false });
}

const tunnel = { srcIP: '127.0.0.1', srcPort: 50000, destIP: '10.0.0.1', destPort: 5432 };
const commandNamed = (ctx: Ctx, text: string) => ctx.pb.waitFor((es) => es.find((e): e is Command => e.type === 'Command' && e.text === text));
const answerTo = <T extends 'Verdict' | 'Response'>(ctx: Ctx, type: T, c: Command) =>
  ctx.pb.waitFor((es) => es.find((e) => e.type === type && (e as Verdict | Response).command_id === c.event_id) as (T extends 'Verdict' ? Verdict : Response) | undefined);
const settle = async (ctx: Ctx) => {
  await ctx.events.drained();
  await new Promise((r) => setTimeout(r, 50));
};

f('a refused -L never connects upstream; the channel is refused, its slot freed and the refusal recorded', async (ctx) => {
  as(ctx, APP);
  const reply = new FakeReply();
  await ctx.forwarding.directTcpip(reply.accept, reply.reject, tunnel);
  assert.equal([reply.accepted, reply.rejected, ctx.gate.channels], [0, 1, 0]);
  assert.equal(ctx.upstream.calls, []);
  const command = await commandNamed(ctx, 'direct-tcpip 10.0.0.1:5432');
  assert.is((await answerTo(ctx, 'Verdict', command)).rule_id, 'agate.forwarding-needs-rule');
  assert.is((await answerTo(ctx, 'Response', command)).status, 'refused');
});

f('an allowed -L is decided at the gate before the target is asked to connect', async (ctx) => {
  as(ctx, TUNNELER);
  const reply = new FakeReply();
  await ctx.forwarding.directTcpip(reply.accept, reply.reject, tunnel);
  assert.equal(ctx.timeline, ['asked direct-tcpip 10.0.0.1:5432', 'verdict allow', 'upstream forwardOut']);
  assert.equal(ctx.upstream.calls[0]?.args, ['127.0.0.1', 50000, '10.0.0.1', 5432]);
  // The fake target cannot connect: the channel is refused and the error recorded.
  assert.equal([reply.accepted, reply.rejected, ctx.gate.channels], [0, 1, 0]);
  const response = await answerTo(ctx, 'Response', await commandNamed(ctx, 'direct-tcpip 10.0.0.1:5432'));
  assert.match(response.error_message ?? '', 'the target could not open 10.0.0.1:5432');
});

f('a -L past the channel cap is refused before any command is built or decided', async (ctx) => {
  as(ctx, TUNNELER, 1);
  assert.ok(ctx.gate.admit());
  const reply = new FakeReply();
  await ctx.forwarding.directTcpip(reply.accept, reply.reject, tunnel);
  await settle(ctx);
  assert.equal([reply.rejected, ctx.gate.commands, ctx.timeline], [1, 0, []]);
});

f('a refused -R: the target is never asked to listen', async (ctx) => {
  as(ctx, APP);
  const reply = new FakeReply();
  await ctx.forwarding.remoteForward(reply.accept, reply.reject, { bindAddr: '127.0.0.1', bindPort: 0 });
  assert.equal([reply.accepted, reply.rejected, ctx.upstream.calls], [0, 1, []]);
  assert.is((await answerTo(ctx, 'Response', await commandNamed(ctx, 'tcpip-forward 127.0.0.1:0'))).status, 'refused');
});

f('an allowed -R listens; a connection there is decided before it reaches the client; a cancel stops the listener', async (ctx) => {
  as(ctx, TUNNELER);
  ctx.upstream.answers = { forwardIn: [undefined, 40001], unforwardIn: [undefined] };
  let bound: number | undefined;
  await ctx.forwarding.remoteForward((port) => (bound = port), () => assert.unreachable('refused'), { bindAddr: '127.0.0.1', bindPort: 0 });
  assert.is(bound, 40001);
  assert.equal(ctx.timeline, ['asked tcpip-forward 127.0.0.1:0', 'verdict allow', 'upstream forwardIn']);
  const listen = await commandNamed(ctx, 'tcpip-forward 127.0.0.1:0');
  assert.is((await answerTo(ctx, 'Response', listen)).command_tag, 'listening on 127.0.0.1:40001 on the target');

  let rejected = 0;
  const details = { srcIP: '127.0.0.1', srcPort: 41000, destIP: '127.0.0.1', destPort: 40001 };
  await ctx.forwarding.forwardedConnection(details, () => assert.unreachable('accepted') as never, () => void (rejected += 1));
  assert.equal(ctx.client.forwardOuts, [{ destIP: '127.0.0.1', destPort: 40001 }], 'handed to the client once allowed');
  assert.equal([rejected, ctx.gate.channels], [1, 0], 'the fake client refuses it; the slot is freed');
  const connection = await commandNamed(ctx, 'forwarded-tcpip 127.0.0.1:40001 from 127.0.0.1:41000');
  assert.is(connection.attributes.forward_command_id, listen.event_id);

  let cancelled = 0;
  await ctx.forwarding.cancelRemoteForward(() => void (cancelled += 1), () => assert.unreachable('refused'), { bindAddr: '127.0.0.1', bindPort: 40001 });
  assert.is(cancelled, 1);
  assert.equal(ctx.upstream.calls.at(-1), { method: 'unforwardIn', args: ['127.0.0.1', 40001] });
  const cancel = await commandNamed(ctx, 'cancel-tcpip-forward 127.0.0.1:0');
  assert.is((await answerTo(ctx, 'Response', cancel)).command_tag, 'stopped listening on 127.0.0.1:40001');
  assert.not.ok(ctx.timeline.includes('asked cancel-tcpip-forward 127.0.0.1:0'), 'a cancel only takes access away: recorded, not decided');
  // Its one verdict is the built-in allow: policy (on this bus, deciding each command as it is written) gives none.
  const verdicts = ctx.pb.events.filter((e): e is Verdict => e.type === 'Verdict' && e.command_id === cancel.event_id);
  assert.equal(verdicts.map((v) => [v.decision, v.rule_id]), [['allow', CANCEL_FORWARD_RULE]]);
});

f('connections to no listener, and cancels of none, are refused without a record', async (ctx) => {
  as(ctx, TUNNELER);
  let rejected = 0;
  await ctx.forwarding.forwardedConnection({ srcIP: '127.0.0.1', srcPort: 1, destIP: '127.0.0.1', destPort: 40009 }, () => assert.unreachable() as never, () => void (rejected += 1));
  const reply = new FakeReply();
  await ctx.forwarding.cancelRemoteForward(reply.accept, reply.reject, { bindAddr: '127.0.0.1', bindPort: 40009 });
  await settle(ctx);
  assert.equal([rejected, reply.rejected, ctx.gate.commands, ctx.pb.events.filter((e: AgateEvent) => e.type === 'Command')], [1, 1, 0, []]);
});

f('refused agent forwarding: the request is refused, and the target gets no agent channel', async (ctx) => {
  as(ctx, APP);
  const reply = new FakeReply();
  assert.is(await ctx.forwarding.agentForwarding(reply.accept, reply.reject), false);
  assert.equal([reply.accepted, reply.rejected], [0, 1]);
  const failed = await new Promise<Error | undefined>((resolve) => ctx.forwarding.agent().getStream((err) => resolve(err ?? undefined)));
  assert.is(failed?.message, 'agent forwarding was not granted');
  await settle(ctx);
  assert.is(ctx.gate.commands, 1, 'only the request was built; the channel never reached the gate\'s decision');
});

f('granted agent forwarding: each agent channel the target opens is decided at the gate before the client\'s agent is asked', async (ctx) => {
  as(ctx, TUNNELER);
  const reply = new FakeReply();
  assert.is(await ctx.forwarding.agentForwarding(reply.accept, reply.reject), true);
  const failed = await new Promise<Error | undefined>((resolve) => ctx.forwarding.agent().getStream((err) => resolve(err ?? undefined)));
  // The fake client has no agent channel to open: the use is recorded as an error, never relayed.
  assert.match(failed?.message ?? '', 'cannot open an agent channel');
  assert.equal(ctx.timeline, ['asked auth-agent', 'verdict allow', 'asked auth-agent channel', 'verdict allow']);
  const use = await commandNamed(ctx, 'auth-agent channel');
  assert.is((await answerTo(ctx, 'Response', use)).status, 'error');
  assert.is(ctx.gate.channels, 0);
});

f.run();

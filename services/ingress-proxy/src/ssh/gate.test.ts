import { suite } from '../../../../test/harness/suite.js';
import * as assert from 'uvu/assert';
import type { Command, Response, Verdict } from '../../../../schemas/src/events.js';
import { FakeConnection, FakeServerChannel, FakeUpstream } from '../../../../test/harness/fake-ssh2.js';
import { PolicyBus } from '../../../../test/harness/policy-bus.js';
import { APP, gateOn, SSH_UNIT_POLICY, TUNNELER } from '../../../../test/harness/ssh-gate-fixture.js';
import { UNASKED_RULE } from '../decide.js';
import { MAX_CHANNELS, Pass, REFUSED_EXIT_STATUS } from './gate.js';

/* The gate over the real LocalBus and the real policy service; the ssh2 channel is a fake. */

const of = <T extends 'Verdict' | 'Response'>(pb: PolicyBus, type: T, command: Command) =>
  pb.waitFor((es) => es.find((e) => e.type === type && (e as Verdict | Response).command_id === command.event_id) as (T extends 'Verdict' ? Verdict : Response) | undefined);

interface Ctx { pb: PolicyBus }
const cap = suite<Ctx>('ssh/gate admit');
cap.before.each(async (ctx) => void (ctx.pb = await PolicyBus.start(null)));
cap.after.each(async (ctx) => ctx.pb.stop());

cap('the cap refuses the 17th channel, and a released slot is given again once', ({ pb }) => {
  const { gate } = gateOn(pb, APP);
  const slots = Array.from({ length: MAX_CHANNELS }, () => gate.admit());
  assert.ok(slots.every((s) => s !== undefined));
  assert.is(gate.channels, 16);
  assert.is(gate.admit(), undefined, 'the 17th is refused');
  slots[3]!();
  slots[3]!(); // a second release of the same slot frees nothing more
  assert.is(gate.channels, 15);
  assert.ok(gate.admit() !== undefined, 'the freed slot is given again');
  assert.is(gate.admit(), undefined, 'and only that one');
});

cap('a configured cap replaces the default', ({ pb }) => {
  const { gate } = gateOn(pb, APP, { maxChannels: 2 });
  assert.ok(gate.admit() && gate.admit());
  assert.is(gate.admit(), undefined);
});

cap('refuseUnasked records the command and its refusal without waiting for a verdict', async ({ pb }) => {
  const { gate, events } = gateOn(pb, APP);
  gate.refuseUnasked('(unreadable captured command)', { request: 'shell-line' }, 'the report was cut');
  await events.drained();
  const command = await pb.waitFor((es) => es.find((e): e is Command => e.type === 'Command'));
  const response = await of(pb, 'Response', command);
  assert.is(response.error_message, 'Agate refused the request: the report was cut');
});

const decisions = suite<Ctx>('ssh/gate decide');
decisions.before.each(async (ctx) => void (ctx.pb = await PolicyBus.start(SSH_UNIT_POLICY)));
decisions.after.each(async (ctx) => ctx.pb.stop());

decisions('a request refused before policy is asked has one verdict: the deny of the built-in rule, none from policy', async ({ pb }) => {
  const { gate, events } = gateOn(pb, APP);
  gate.refuseUnasked('(unreadable captured command)', { request: 'shell-line' }, 'the report was cut');
  // A command decided after it: policy, which reads commands in order, has passed the first by then.
  const next = gate.command('ls', { request: 'exec' });
  await gate.decide(next);
  await events.drained();
  const command = await pb.waitFor((es) => es.find((e): e is Command => e.type === 'Command' && e.text === '(unreadable captured command)'));
  await of(pb, 'Response', command);
  await of(pb, 'Verdict', next);
  const verdicts = pb.events.filter((e): e is Verdict => e.type === 'Verdict' && e.command_id === command.event_id);
  assert.equal(verdicts.map((v) => [v.decision, v.rule_id]), [['deny', UNASKED_RULE]]);
});

decisions('commands carry the identity, the target, a rising sequence and masked text', ({ pb }) => {
  const { gate } = gateOn(pb, APP);
  const token = 'eyJhbGciOiJFUzI1NiJ9.eyJzdWIiOiJ4In0.c2lnbmF0dXJlc2lnbmF0dXJl';
  const a = gate.command(`echo ${token}`, { request: 'exec' });
  const b = gate.command('ls', { request: 'exec' });
  assert.equal([a.identity, a.target, a.sequence, b.sequence, gate.commands], [APP, 'box', 1, 2, 2]);
  assert.not.match(a.text, token, 'a token typed on a command line never reaches the bus');
});

decisions('allow runs; check records nothing more than the command and its verdict', async ({ pb }) => {
  const { gate, events } = gateOn(pb, APP);
  const command = gate.command('ls -l', { request: 'exec' });
  const decision = await gate.check(command);
  assert.equal(decision.kind === 'run' ? [decision.rule, decision.pass.command] : decision, [null, command]);
  assert.is((await of(pb, 'Verdict', command)).decision, 'allow');
  await events.drained();
  assert.not.ok(pb.events.some((e) => e.type === 'Response'));
});

decisions('a deny refuses with the rule\'s reason; check records the refusal as the command\'s Response', async ({ pb }) => {
  const { gate } = gateOn(pb, APP);
  const command = gate.command('rm -rf /srv', { request: 'exec' });
  const decision = await gate.check(command);
  assert.equal(decision, { kind: 'refuse', message: 'Agate refused the command by rule "no-rm": deleting files needs a human' });
  const response = await of(pb, 'Response', command);
  assert.equal([response.status, response.error_message], ['refused', 'Agate refused the command by rule "no-rm": deleting files needs a human']);
});

decisions('a masking verdict refuses: shell output cannot be masked reliably', async ({ pb }) => {
  const { gate } = gateOn(pb, APP);
  const decision = await gate.decide(gate.command('cat /etc/people', { request: 'exec' }));
  assert.is(decision.kind, 'refuse');
  assert.match(decision.kind === 'refuse' ? decision.message : '', 'rule "mask-cat" asks for masked output, which the SSH proxy cannot provide');
});

decisions('forwarding is refused without a rule naming it, and runs with one', async ({ pb }) => {
  const app = gateOn(pb, APP).gate;
  const refused = await app.decide(app.command('direct-tcpip 10.0.0.1:22', { request: 'direct-tcpip', path: '10.0.0.1:22' }));
  assert.is(refused.kind, 'refuse');
  const tunneler = gateOn(pb, TUNNELER).gate;
  const allowed = await tunneler.decide(tunneler.command('direct-tcpip 10.0.0.1:22', { request: 'direct-tcpip', path: '10.0.0.1:22' }));
  assert.equal(allowed.kind === 'run' ? allowed.rule : allowed, 'tunnel-for-tunnelers');
});

decisions('only an allowed command\'s pass opens the connections, and only its own session\'s', async ({ pb }) => {
  const target = new FakeUpstream().asClient();
  const client = new FakeConnection().asConnection();
  const { gate } = gateOn(pb, APP, { upstream: Promise.resolve(target), client });
  const decision = await gate.decide(gate.command('ls', { request: 'exec' }));
  assert.ok(decision.kind === 'run');
  if (decision.kind !== 'run') return;
  assert.is(await gate.upstream(decision.pass), target);
  assert.is(gate.client(decision.pass), client);
  const other = gateOn(pb, APP).gate;
  assert.throws(() => other.upstream(decision.pass), /only its own session/);
  assert.throws(() => new Pass(Symbol('ssh gate'), decision.pass.command), /only the ssh gate issues a pass/);
});

decisions('refuseOn tells the client on stderr, exits 126 and ends the channel, and records the refusal', async ({ pb }) => {
  const { gate } = gateOn(pb, APP);
  const channel = new FakeServerChannel();
  const command = gate.command('rm x', { request: 'exec' });
  gate.refuseOn(channel.asChannel(), command, 'refused', 'Agate refused the command: no');
  assert.equal([channel.stderr.written, channel.exitStatus, channel.ended], [['Agate refused the command: no\n'], REFUSED_EXIT_STATUS, true]);
  assert.is((await of(pb, 'Response', command)).status, 'refused');
});

cap.run();
decisions.run();

import { suite } from '../../../../test/harness/suite.js';
import * as assert from 'uvu/assert';
import { AgateError, ErrorCode } from '../../../../core/src/errors.js';
import { silentLogger } from '../../../../core/src/log.js';
import type { Command, Identity, Response } from '../../../../schemas/src/events.js';
import { FakeReply, FakeSession, FakeUpstream } from '../../../../test/harness/fake-ssh2.js';
import { PolicyBus } from '../../../../test/harness/policy-bus.js';
import { APP, auditMasker, gateOn, notingBus, SSH_UNIT_POLICY, TUNNELER } from '../../../../test/harness/ssh-gate-fixture.js';
import type { ChannelContext } from './channel-context.js';
import { serveSessionChannel } from './channels.js';
import { Forwarding } from './forwarding.js';
import { REFUSED_EXIT_STATUS } from './gate.js';

/* The requests on a session channel, through the real gate and policy service; client and target are fakes. */
interface Ctx {
  pb: PolicyBus;
  upstream: FakeUpstream;
  /** When set, the connection to the target failed with this. */
  unreachable?: Error;
  timeline: string[];
  session: FakeSession;
}

const c = suite<Ctx>('ssh/channels');
c.before.each(async (ctx) => {
  ctx.pb = await PolicyBus.start(SSH_UNIT_POLICY);
  ctx.upstream = new FakeUpstream();
  ctx.unreachable = undefined;
  ctx.timeline = [];
  ctx.upstream.onCall = (call) => ctx.timeline.push(`upstream ${call.method}`);
  ctx.session = new FakeSession();
});
c.after.each(async (ctx) => ctx.pb.stop());

function serve(ctx: Ctx, identity: Identity): void {
  const upstream = ctx.unreachable === undefined ? Promise.resolve(ctx.upstream.asClient()) : Promise.reject(ctx.unreachable);
  upstream.catch(() => undefined); // as the session does: a failed connection is reported where it is used
  const { gate, events } = gateOn(ctx.pb, identity, { bus: notingBus(ctx.pb, ctx.timeline), upstream });
  const channels: ChannelContext = { gate, events, log: silentLogger, audit: auditMasker(), connectTimeoutMs: 1_000 };
  const forwarding = new Forwarding({ gate, events, closed: () => false });
  serveSessionChannel(channels, ctx.session.asSession(), (a, r) => forwarding.agentForwarding(a, r));
}

async function request(ctx: Ctx, name: string, info: Record<string, unknown> = {}): Promise<FakeReply> {
  const reply = new FakeReply();
  ctx.session.emit(name, reply.accept, reply.reject, info);
  return reply;
}

/** Until the channel has been given an exit status (the fake target never runs anything). */
async function exited(reply: FakeReply): Promise<void> {
  for (let i = 0; i < 500 && reply.channel.exitStatus === undefined; i++) await new Promise((r) => setTimeout(r, 10));
  assert.ok(reply.channel.exitStatus !== undefined, 'the channel was given an exit status');
}

const responseTo = (ctx: Ctx, text: string) => ctx.pb.waitFor((es) => {
  const command = es.find((e): e is Command => e.type === 'Command' && e.text === text);
  return command && es.find((e): e is Response => e.type === 'Response' && e.command_id === command.event_id);
});

c('a pty is accepted; environment variables and X11 are refused, X11 recorded', async (ctx) => {
  serve(ctx, APP);
  const [pty, env, x11] = [await request(ctx, 'pty', { term: 'xterm', cols: 80, rows: 24 }), await request(ctx, 'env', { key: 'A', val: 'b' }), await request(ctx, 'x11')];
  assert.equal([pty.accepted, env.rejected, x11.rejected], [1, 1, 1]);
  assert.equal(ctx.upstream.calls, []);
  assert.is((await responseTo(ctx, 'x11-req')).status, 'refused');
});

c('the names of refused environment variables are recorded on the command that runs without them', async (ctx) => {
  serve(ctx, APP);
  await request(ctx, 'env', { key: 'LD_PRELOAD', val: '/x.so' });
  await request(ctx, 'env', { key: 'BASH_ENV', val: '/y' });
  await request(ctx, 'exec', { command: 'ls -l' });
  await responseTo(ctx, 'ls -l').catch(() => undefined);
  const command = ctx.pb.events.find((e): e is Command => e.type === 'Command' && e.text === 'ls -l');
  assert.is(command?.attributes.refused_env, 'LD_PRELOAD,BASH_ENV');
});

c('a second exec, shell or subsystem on a channel that runs a program is refused and recorded; only the first reaches the target', async (ctx) => {
  serve(ctx, APP);
  const first = await request(ctx, 'exec', { command: 'ls -l' });
  const [exec, shell, sftp] = [await request(ctx, 'exec', { command: 'rm -rf /srv' }), await request(ctx, 'shell'), await request(ctx, 'subsystem', { name: 'sftp' })];
  assert.equal([first.accepted, exec.accepted, shell.accepted, sftp.accepted], [1, 0, 0, 0]);
  for (const text of ['rm -rf /srv', 'shell', '(subsystem sftp)']) assert.is((await responseTo(ctx, text)).status, 'refused', text);
  await responseTo(ctx, 'ls -l').catch(() => undefined);
  assert.equal(ctx.upstream.calls.map((c) => c.method), ['exec']);
});

c('a refused exec never reaches the target: stderr names the rule, exit status 126', async (ctx) => {
  serve(ctx, APP);
  const exec = await request(ctx, 'exec', { command: 'rm -rf /srv' });
  await exited(exec);
  assert.equal([exec.channel.paused, exec.channel.exitStatus, exec.channel.ended], [true, REFUSED_EXIT_STATUS, true]);
  assert.equal(exec.channel.stderr.written, ['Agate refused the command by rule "no-rm": deleting files needs a human\n']);
  assert.equal(ctx.upstream.calls, []);
  assert.is((await responseTo(ctx, 'rm -rf /srv')).status, 'refused');
});

c('an allowed exec runs on the target only once its verdict is in, with the pty the client asked for', async (ctx) => {
  serve(ctx, APP);
  await request(ctx, 'pty', { term: 'xterm', cols: 80, rows: 24, width: 0, height: 0, modes: {} });
  const exec = await request(ctx, 'exec', { command: 'ls -l' });
  await exited(exec);
  assert.equal(ctx.timeline, ['asked ls -l', 'verdict allow', 'upstream exec']);
  const [text, options] = ctx.upstream.calls[0]!.args as [string, { pty?: { term: string } }];
  assert.equal([text, options.pty?.term], ['ls -l', 'xterm']);
  // The fake target cannot run it: reported to the client as the target's failure.
  assert.is(exec.channel.exitStatus, 255);
  assert.match(exec.channel.stderr.written.join(''), 'the target could not run the command');
});

c('agent forwarding on a channel is asked at the gate first; the exec forwards the agent only when it was granted', async (ctx) => {
  serve(ctx, TUNNELER);
  const agent = await request(ctx, 'auth-agent');
  const exec = await request(ctx, 'exec', { command: 'ssh-add -l' });
  await exited(exec);
  assert.is(agent.rejected, 0);
  assert.equal(ctx.timeline, ['asked auth-agent', 'asked ssh-add -l', 'verdict allow', 'verdict allow', 'upstream exec']);
  assert.equal(ctx.upstream.calls[0]!.args[1], { agentForward: true });
});

c('refused agent forwarding: the exec still runs, without the agent', async (ctx) => {
  serve(ctx, APP);
  const agent = await request(ctx, 'auth-agent');
  const exec = await request(ctx, 'exec', { command: 'ssh-add -l' });
  await exited(exec);
  assert.is(agent.rejected, 1);
  assert.equal(ctx.upstream.calls[0]!.args[1], {});
});

c('shell and sftp are decided before the target is asked for them', async (ctx) => {
  serve(ctx, APP);
  const shell = await request(ctx, 'shell');
  await exited(shell);
  // A channel runs one program: sftp on a channel of its own.
  ctx.session = new FakeSession();
  serve(ctx, APP);
  const sftp = await request(ctx, 'subsystem', { name: 'sftp' });
  await exited(sftp);
  // Agate's own sftp channel (for resolving paths) is the first thing asked of the target.
  assert.equal(ctx.timeline, ['asked shell', 'verdict allow', 'upstream shell', 'asked (subsystem sftp)', 'verdict allow', 'upstream sftp']);
  assert.match(sftp.channel.stderr.written.join(''), 'the target refused the sftp subsystem');
});

c('another subsystem is recorded and refused without asking policy', async (ctx) => {
  serve(ctx, APP);
  const other = await request(ctx, 'subsystem', { name: 'netconf' });
  await exited(other);
  assert.equal([other.channel.exitStatus, ctx.timeline], [REFUSED_EXIT_STATUS, []]);
  assert.is((await responseTo(ctx, '(subsystem netconf)')).error_message, 'Agate refused the request: the netconf subsystem is not available through Agate');
});

c('an allowed exec with no connection to the target gets the connection\'s error, exit status 255', async (ctx) => {
  ctx.unreachable = new AgateError(ErrorCode.UPSTREAM_UNREACHABLE, 'cannot reach target "box": connection refused');
  serve(ctx, APP);
  const exec = await request(ctx, 'exec', { command: 'ls' });
  await exited(exec);
  assert.equal([exec.channel.exitStatus, exec.channel.stderr.written], [255, ['cannot reach target "box": connection refused\n']]);
  const response = await responseTo(ctx, 'ls');
  assert.equal([response.status, response.error_code], ['error', ErrorCode.UPSTREAM_UNREACHABLE]);
});

c.run();

import type { ClientChannel, ExecOptions, PseudoTtyInfo, ServerChannel } from 'ssh2';
import { ErrorCode } from '../../../../core/src/errors.js';
import { nowMicros, type Command } from '../../../../schemas/src/events.js';
import { upstreamOr, type AgentForward, type ChannelContext } from './channel-context.js';
import { relayExec } from './exec-relay.js';
import { streamRecorder } from './exec-recorders.js';
import { gitInvocation } from './git/invocation.js';
import { pushCommand } from './git/push-command.js';
import { PushGate, type PushVerdict, type RefUpdate } from './git/push-gate.js';
import { targetAncestry } from './git/target-ancestry.js';
import { execResponse, grantedResponse } from './responses.js';

/**
 * `exec`: the command is recorded and decided, and only then run on the target over Agate's own
 * connection; its output and exit status go back to the client and are recorded as a Response.
 * git's services run in one canonical spelling, and a push's ref updates are decided as one
 * `git-push` command before any reach the target.
 */
export async function execChannel(ctx: ChannelContext, accept: () => ServerChannel | undefined, clientText: string, pty: PseudoTtyInfo | undefined, onLive: (c: ClientChannel) => void, agent?: Promise<boolean>): Promise<void> {
  const { gate, events } = ctx;
  // Accepted at once: ssh2 drops a deferred accept when the client's stdin EOF arrives first.
  // Paused, so no stdin is read (and no window granted) while the verdict is pending.
  const channel = accept();
  if (channel === undefined) return;
  channel.pause();
  // git's services are run (and decided) in one canonical spelling, whatever the client sent.
  const git = gitInvocation(clientText);
  const text = git?.kind === 'git' ? git.canonical : clientText;
  const attributes: Record<string, string> = pty === undefined ? { request: 'exec' } : { request: 'exec', pty: 'true', term: pty.term };
  if (text !== clientText) attributes.client_text = ctx.audit.maskText(clientText).text;
  const command = gate.command(text, attributes);
  if (git?.kind === 'unclear') {
    await events.emitLogged(command);
    return gate.refuseOn(channel, command, 'refused', `Agate refused the command: ${git.reason}, so the refs it would update cannot be read`);
  }
  const decision = await gate.decide(command, (note) => channel.stderr.write(`${note}\n`));
  if (decision.kind === 'refuse') return gate.refuseOn(channel, command, 'refused', decision.message);
  const upstream = await upstreamOr(ctx, channel, decision.pass);
  if (upstream === undefined) return;
  const options: ExecOptions & AgentForward = pty === undefined ? {} : { pty: { term: pty.term, cols: pty.cols, rows: pty.rows, width: pty.width, height: pty.height, modes: pty.modes } };
  if ((await agent) === true) options.agentForward = true;
  const started = nowMicros();
  upstream.exec(text, options, (err, stream) => {
    if (err) return void gate.refuseOn(channel, command, 'error', `the target could not run the command: ${err.message}`, ErrorCode.UPSTREAM_UNREACHABLE, 255);
    onLive(stream);
    const tapped = streamRecorder(text);
    const taps = { ...tapped?.taps };
    if (git?.kind === 'git' && git.service === 'receive-pack') {
      const note = (t: string) => channel.stderr.write(`${t}\n`);
      taps.gate = (to, reply) => new PushGate(to, {
        decide: (updates) => push(ctx, command, git.repo, updates, note),
        unreadable: (reason) => unreadablePush(ctx, command, git.repo, reason),
        ancestry: targetAncestry(upstream, git.repo),
        reply,
        notice: note,
      });
    }
    void relayExec(channel, stream, taps).then((outcome) => {
      const response = execResponse(command, outcome, started);
      if (tapped !== undefined) Object.assign(response, tapped.recorded());
      return events.emitLogged(response);
    });
  });
}

/** A push's ref updates: recorded and decided as one `git-push` Command before any reach the target. */
async function push(ctx: ChannelContext, exec: Command, repo: string, updates: RefUpdate[], note: (text: string) => void): Promise<PushVerdict> {
  const { text, attributes } = pushCommand(repo, updates);
  const command = ctx.gate.command(text, { ...attributes, exec_command_id: exec.event_id });
  const decision = await ctx.gate.check(command, note);
  if (decision.kind === 'refuse') return { run: false, message: decision.message };
  void ctx.events.emitLogged(grantedResponse(command, 'push forwarded'));
  return { run: true };
}

/** A push whose commands Agate cannot read: recorded and refused without asking policy. */
function unreadablePush(ctx: ChannelContext, exec: Command, repo: string, reason: string): string {
  const message = `Agate refused the push: ${reason}`;
  ctx.gate.refuseUnasked(`git push '${repo}' (unreadable)`, { request: 'git-push', git_repo: repo, exec_command_id: exec.event_id }, message);
  return message;
}

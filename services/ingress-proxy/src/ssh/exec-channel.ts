import type { Client, ClientChannel, ExecOptions, PseudoTtyInfo, ServerChannel } from 'ssh2';
import { ErrorCode, describeError } from '../../../../core/src/errors.js';
import { nowMicros, type Command } from '../../../../schemas/src/events.js';
import { upstreamOr, type AgentForward, type ChannelContext } from './channel-context.js';
import { relayExec } from './exec-relay.js';
import { streamRecorder } from './exec-recorders.js';
import { gitInvocation } from './git/invocation.js';
import { pushCommand } from './git/push-command.js';
import { PushGate, type PushVerdict, type RefUpdate } from './git/push-gate.js';
import { targetAncestry } from './git/target-ancestry.js';
import { execResponse, grantedResponse } from './responses.js';
import { scpTransfer, type ScpTransfer } from './scp-stream.js';
import { TargetPaths } from './sftp/target-paths.js';

/**
 * `exec`: the command is recorded and decided, and only then run on the target over Agate's own
 * connection; its output and exit status go back to the client and are recorded as a Response.
 * git's services run in one canonical spelling, and a push's ref updates are decided as one
 * `git-push` command before any reach the target. Legacy scp's server side (`scp -t|-f PATH`)
 * is a file transfer: once the line is allowed, the path it writes or reads is decided as an
 * sftp operation, where it leads on the target, before it runs.
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
  const command = gate.command(text, { ...attributes, ...ctx.refused?.() });
  // A shell reads a command as a C string: it would run less than what policy read, and sshd
  // drops the whole connection rather than take it. Refused here, with a reason.
  const unasked = async (message: string) => {
    await gate.recordUnasked(command, message);
    gate.refuseOn(channel, command, 'refused', message);
  };
  if (clientText.includes('\0')) return unasked('Agate refused the command: it contains a NUL byte, which no shell on the target can receive');
  if (git?.kind === 'unclear') return unasked(`Agate refused the command: ${git.reason}, so the refs it would update cannot be read`);
  const scp = scpTransfer(text);
  if (scp?.kind === 'unclear') return unasked(`Agate refused the command: ${scp.reason}, so the path it would write or read cannot be decided`);
  const decision = await gate.decide(command, (note) => channel.stderr.write(`${note}\n`));
  if (decision.kind === 'refuse') return gate.refuseOn(channel, command, 'refused', decision.message);
  const upstream = await upstreamOr(ctx, channel, decision.pass);
  if (upstream === undefined) return;
  if (scp !== undefined) {
    const refusal = await scpFile(ctx, command, upstream, scp, (note) => channel.stderr.write(`${note}\n`));
    if (refusal !== undefined) return gate.refuseOn(channel, command, 'refused', refusal);
  }
  const options: ExecOptions & AgentForward = pty === undefined ? {} : { pty: { term: pty.term, cols: pty.cols, rows: pty.rows, width: pty.width, height: pty.height } };
  if ((await agent) === true) options.agentForward = true;
  const started = nowMicros();
  const failed = (why: string) => void gate.refuseOn(channel, command, 'error', `the target could not run the command: ${why}`, ErrorCode.UPSTREAM_UNREACHABLE, 255);
  // ssh2 throws rather than call back once the target connection closed (the client left while
  // the command was decided): recorded and refused like any failure, never a crash of the proxy.
  try {
    upstream.exec(text, options, (err, stream) => {
      if (err) return failed(err.message);
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
  } catch (err) {
    failed(describeError(err));
  }
}

/**
 * The file a legacy scp exec writes (`-t`: into PATH, or `PATH/` when it is a directory) or reads
 * (`-f`): decided as an sftp operation (`scp write PATH`, attributes request=sftp, operation,
 * path, resolved_path, scp, exec_command_id), so the rules on sftp paths hold for it too.
 * Resolves to the refusal's message, or undefined when allowed.
 */
async function scpFile(ctx: ChannelContext, exec: Command, upstream: Client, scp: Extract<ScpTransfer, { kind: 'scp' }>, note: (text: string) => void): Promise<string | undefined> {
  let paths: TargetPaths;
  try {
    paths = await TargetPaths.open(upstream);
  } catch (err) {
    return `Agate refused the command: the target could not tell where ${scp.path} leads (${(err as Error).message})`;
  }
  try {
    const real = await paths.resolve(scp.path);
    const into = scp.mode === 'sink' && (await paths.isDirectory(real));
    const operation = scp.mode === 'sink' ? 'write' : 'read';
    const mask = (p: string) => ctx.audit.maskText(p).text;
    const attributes = { request: 'sftp', operation, path: mask(scp.path), resolved_path: mask(into && !real.endsWith('/') ? `${real}/` : real), scp: scp.mode, exec_command_id: exec.event_id };
    const command = ctx.gate.command(`scp ${operation} ${scp.path}`, attributes);
    const decision = await ctx.gate.check(command, note);
    if (decision.kind === 'refuse') return decision.message;
    void ctx.events.emitLogged(grantedResponse(command, 'scp transfer allowed'));
    return undefined;
  } finally {
    paths.close();
  }
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

import type { PseudoTtyInfo, ServerChannel, Session } from 'ssh2';
import { describeError } from '../../../../core/src/errors.js';
import type { ChannelContext } from './channel-context.js';
import { execChannel } from './exec-channel.js';
import { sftpChannel } from './sftp-channel.js';
import { shellChannel, type LiveShell } from './shell-channel.js';

/** Asks for agent forwarding on a channel; resolves whether it was granted (forwarding.ts). */
export type AgentRequest = (accept: (() => void) | undefined, reject: (() => void) | undefined) => Promise<boolean>;

/**
 * The requests on one session channel (its slot already taken at the gate). A pty, a window
 * change and a signal are kept for, or passed to, what runs; `exec`, `shell` and the sftp
 * subsystem are each decided at the gate before anything runs on the target; agent forwarding
 * is a forwarding request. X11, environment variables and other subsystems are refused.
 */
export function serveSessionChannel(ctx: ChannelContext, session: Session, agentRequest: AgentRequest): void {
  // The pty the client asked for; the same is requested on the target for the shell or exec.
  let pty: PseudoTtyInfo | undefined;
  let live: LiveShell | undefined;
  session.on('pty', (accept, _reject, info) => {
    pty = info;
    accept?.();
  });
  session.on('window-change', (accept, _reject, info) => {
    if (pty !== undefined) Object.assign(pty, { cols: info.cols, rows: info.rows, width: info.width, height: info.height });
    live?.upstream.setWindow(info.rows, info.cols, info.height, info.width);
    live?.recorder?.resize(info.cols, info.rows);
    accept?.();
  });
  session.on('signal', (accept, _reject, info) => {
    live?.upstream.signal(info.name);
    accept?.();
  });
  session.on('x11', (_accept, reject) => reject?.());
  // Whether this channel's exec or shell forwards the client's agent (the request comes first).
  let agent: Promise<boolean> | undefined;
  session.on('auth-agent', (accept, reject) => void (agent = agentRequest(accept, reject)));
  session.on('env', (_accept, reject) => reject?.());
  const settle = settled(ctx);
  session.on('exec', (accept, _reject, info) => settle(execChannel(ctx, accept, info.command, pty, (c) => (live = { upstream: c }), agent)));
  session.on('shell', (accept) => settle(shellChannel(ctx, accept, pty, (l) => (live = l), agent)));
  // With no 'sftp' listener, ssh2 hands sftp (and so modern scp) to 'subsystem' too.
  session.on('subsystem', (accept, _reject, info) => {
    if (info.name === 'sftp') return settle(sftpChannel(ctx, accept));
    settle(refuseSubsystem(ctx, accept, info.name));
  });
}

/**
 * The last guard on a request's handler: an error none of its own paths caught is logged, never
 * left to reject unhandled (which would end the whole process, every other session with it).
 */
export function settled(ctx: Pick<ChannelContext, 'log'>): (work: Promise<unknown>) => void {
  return (work) => void work.catch((err: unknown) => ctx.log.error('a request failed unexpectedly', { error: describeError(err) }));
}

/** A subsystem other than sftp: recorded, then refused before policy is asked (the proxy cannot audit it). */
async function refuseSubsystem(ctx: ChannelContext, accept: () => ServerChannel | undefined, name: string): Promise<void> {
  const channel = accept(); // at once, for the same reason as in execChannel
  if (channel === undefined) return;
  const command = ctx.gate.command(`(subsystem ${name})`, { request: 'subsystem', subsystem: name });
  const message = `Agate refused the request: the ${name} subsystem is not available through Agate`;
  await ctx.gate.recordUnasked(command, message);
  ctx.gate.refuseOn(channel, command, 'refused', message);
}

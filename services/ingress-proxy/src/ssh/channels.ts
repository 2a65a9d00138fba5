import type { PseudoTtyInfo, ServerChannel, Session } from 'ssh2';
import { describeError } from '../../../../core/src/errors.js';
import type { ChannelContext } from './channel-context.js';
import { execChannel } from './exec-channel.js';
import { sftpChannel } from './sftp-channel.js';
import { shellChannel, type LiveShell } from './shell-channel.js';

/** Asks for agent forwarding on a channel; resolves whether it was granted (forwarding.ts). */
type AgentRequest = (accept: (() => void) | undefined, reject: (() => void) | undefined) => Promise<boolean>;

/** Refused environment variable names recorded per channel; a client may send any number. */
const MAX_ENV_NAMES = 32;
const MAX_ENV_NAME_LENGTH = 128;

/**
 * The requests on one session channel (its slot already taken at the gate). A pty, a window
 * change and a signal are kept for, or passed to, what runs; `exec`, `shell` and the sftp
 * subsystem are each decided at the gate before anything runs on the target; agent forwarding
 * is a forwarding request. The channel runs one program: a second `exec`, `shell` or
 * `subsystem` is refused and recorded (RFC 4254 §6.5). X11 is refused and recorded; other
 * subsystems too. Environment variables are refused, and their names recorded on the command
 * that runs without them (`refused_env`), or on a refusal of their own once it runs.
 */
export function serveSessionChannel(shared: ChannelContext, session: Session, agentRequest: AgentRequest): void {
  // The pty the client asked for; the same is requested on the target for the shell or exec, but
  // without the client's terminal modes: a line end or erase key set there (VEOF, VEOL, VLNEXT,
  // ICANON) would end a line the line tracker does not know. The target's defaults stay.
  let pty: PseudoTtyInfo | undefined;
  let live: LiveShell | undefined;
  const refusedEnv: string[] = [];
  const refused = (): Record<string, string> => (refusedEnv.length === 0 ? {} : { refused_env: refusedEnv.join(',') });
  const ctx: ChannelContext = { ...shared, refused };
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
  session.on('signal', (accept, reject, info) => {
    try {
      live?.upstream.signal(info.name);
    } catch {
      // A name outside RFC 4254 §6.10 (ssh2 throws rather than send it): refused, or the throw
      // would end the client's whole connection, the commands in flight with it.
      return void reject?.();
    }
    accept?.();
  });
  // X11 forwarding would let programs on the target open windows on the client, outside the audit.
  session.on('x11', (_accept, reject) => {
    ctx.gate.refuseUnasked('x11-req', { request: 'x11' }, 'X11 forwarding is not available through Agate');
    reject?.();
  });
  // Whether this channel's exec or shell forwards the client's agent (the request comes first).
  let agent: Promise<boolean> | undefined;
  session.on('auth-agent', (accept, reject) => void (agent = agentRequest(accept, reject)));
  // ssh2 emits a second request of these too, but drops its accept: the one program stays.
  let program: string | undefined;
  // LD_PRELOAD, BASH_ENV and the like would change what runs: never passed on. Once the program
  // has started (its command recorded), the name is recorded as a refusal of its own. Both bounded.
  let lateEnv = 0;
  session.on('env', (_accept, reject, info) => {
    const name = ctx.audit.maskText(String(info.key).slice(0, MAX_ENV_NAME_LENGTH)).text;
    if (program === undefined && refusedEnv.length < MAX_ENV_NAMES) refusedEnv.push(name);
    else if (program !== undefined && lateEnv++ < MAX_ENV_NAMES) ctx.gate.refuseUnasked(`(env ${name})`, { request: 'env' }, 'environment variables are not passed on through Agate');
    reject?.();
  });
  const settle = settled(ctx);
  const first = (kind: string, text: string, attributes: Record<string, string>): boolean => {
    if (program === undefined) {
      program = kind;
      return true;
    }
    ctx.gate.refuseUnasked(text, { ...attributes, channel_busy: 'true' }, `the channel already runs ${program === 'exec' ? 'a command' : `a ${program}`}; a session channel runs one program`);
    return false;
  };
  session.on('exec', (accept, _reject, info) => {
    if (!first('exec', info.command, { request: 'exec' })) return;
    settle(execChannel(ctx, accept, info.command, pty, (c) => (live = { upstream: c }), agent));
  });
  session.on('shell', (accept) => {
    if (!first('shell', 'shell', { request: 'shell' })) return;
    settle(shellChannel(ctx, accept, pty, (l) => (live = l), agent));
  });
  // With no 'sftp' listener, ssh2 hands sftp (and so modern scp) to 'subsystem' too.
  session.on('subsystem', (accept, _reject, info) => {
    if (!first('subsystem', `(subsystem ${info.name})`, { request: info.name === 'sftp' ? 'sftp' : 'subsystem', subsystem: info.name })) return;
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
  const command = ctx.gate.command(`(subsystem ${name})`, { request: 'subsystem', subsystem: name, ...ctx.refused?.() });
  const message = `Agate refused the request: the ${name} subsystem is not available through Agate`;
  await ctx.gate.recordUnasked(command, message);
  ctx.gate.refuseOn(channel, command, 'refused', message);
}

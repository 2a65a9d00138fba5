import type { Client, ServerChannel } from 'ssh2';
import { AgateError, ErrorCode } from '../../../../core/src/errors.js';
import type { Logger } from '../../../../core/src/log.js';
import type { Masker } from '../masking/masker.js';
import type { SessionEvents } from '../session-events.js';
import type { Pass, SshGate } from './gate.js';

/** What the handlers of a session channel's requests (exec, shell, sftp) share. */
export interface ChannelContext {
  gate: SshGate;
  events: SessionEvents;
  log: Logger;
  /** Applied to text recorded beside a command (a client's own spelling, sftp paths, shell recordings). */
  audit: Masker;
  /** Deadline for the target to start the shell capture hook. */
  connectTimeoutMs: number;
  /**
   * What the client asked of this session channel and Agate refused (the names of environment
   * variables, `refused_env`): added to the attributes of the command the channel runs.
   */
  refused?: () => Record<string, string>;
}

/** The upstream connection for what `pass` allows, or the refusal the client gets on `channel` when there is none. */
export async function upstreamOr(ctx: ChannelContext, channel: ServerChannel, pass: Pass): Promise<Client | undefined> {
  const { command } = pass;
  try {
    return await ctx.gate.upstream(pass);
  } catch (err) {
    const code = err instanceof AgateError ? err.code : ErrorCode.UPSTREAM_UNREACHABLE;
    const message = err instanceof AgateError ? err.message : `cannot reach target "${ctx.gate.target}"`;
    ctx.gate.refuseOn(channel, command, 'error', message, code, 255);
    return undefined;
  }
}

/** ssh2 runs agent forwarding with these (its types omit the option). */
export type AgentForward = { agentForward?: boolean };

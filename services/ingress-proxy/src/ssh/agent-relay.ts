import ssh2 from 'ssh2';
import type { Connection, GetStreamCallback, IdentityCallback, ParsedKey, ServerChannel, SignCallback } from 'ssh2';
import type { Duplex, Readable } from 'node:stream';
import { AgateError, ErrorCode } from '../../../../core/src/errors.js';

/**
 * The agent Agate hands its upstream connection: ssh2 asks it for a stream each time the target
 * opens an `auth-agent@openssh.com` channel (someone on the target used the forwarded agent).
 * `open` decides that use and answers with a channel to the client's own agent, or an error
 * (ssh2 then refuses the target's channel). It holds no keys: it never signs or logs in.
 */
export class AgentRelay extends ssh2.BaseAgent<ParsedKey> {
  readonly #open: (cb: GetStreamCallback) => void;

  constructor(open: (cb: GetStreamCallback) => void) {
    super();
    this.#open = open;
  }

  getIdentities(cb: IdentityCallback<ParsedKey>): void {
    cb(new Error('the agent relay holds no identities'));
  }

  sign(_key: ParsedKey, _data: Buffer, optionsOrCb: unknown, cb?: SignCallback): void {
    const done = (typeof optionsOrCb === 'function' ? optionsOrCb : cb) as SignCallback | undefined;
    done?.(new Error('the agent relay does not sign'));
  }

  override getStream(cb: GetStreamCallback): void {
    this.#open(cb);
  }
}

/** The window and packet size ssh2's server assumes for a channel it opened (lib/Channel.js). */
const MAX_WINDOW = 2 * 1024 * 1024;
const PACKET_SIZE = 32 * 1024;

/** The parts of ssh2's server-side connection that open a channel towards the client. */
interface ConnectionInternals {
  _chanMgr?: { add(handler: unknown): number };
  _protocol?: { openssh_authAgent?: (id: number, window: number, packetSize: number) => void };
}

/**
 * Opens an `auth-agent@openssh.com` channel to the client, whose end is its ssh-agent. ssh2's
 * server has the protocol message but no public method for it (ssh2 1.17), so this does what
 * its own `forwardOut` does for `forwarded-tcpip`; a missing internal is an error, never a crash.
 */
export function openAgentChannel(conn: Connection): Promise<ServerChannel> {
  return new Promise((resolve, reject) => {
    const { _chanMgr: channels, _protocol: protocol } = conn as unknown as ConnectionInternals;
    if (channels === undefined || typeof protocol?.openssh_authAgent !== 'function') {
      return reject(new AgateError(ErrorCode.PROTOCOL_UNSUPPORTED, 'this ssh2 version cannot open an agent channel to the client'));
    }
    // ssh2 calls this back on the client's CHANNEL_OPEN_CONFIRMATION or _FAILURE.
    const opened = Object.assign((err: Error | undefined, channel: ServerChannel) => (err ? reject(err) : resolve(channel)), { type: 'auth-agent@openssh.com' });
    const id = channels.add(opened);
    if (id === -1) return reject(new AgateError(ErrorCode.PROTOCOL_UNSUPPORTED, 'no free channel towards the client'));
    protocol.openssh_authAgent(id, MAX_WINDOW, PACKET_SIZE);
  });
}

/** Bytes each way over one forwarded agent channel. */
interface AgentTraffic {
  /** From the target's side to the client's agent (requests). */
  down: number;
  /** From the client's agent back to the target (answers, signatures). */
  up: number;
}

/**
 * Counts what crosses the client's agent channel once ssh2 pipes the target's channel into it
 * (`upstream.pipe(channel).pipe(upstream)`), and calls `closed` once when it closes. Closing
 * the client's side closes the target's too, so neither is left half open.
 */
export function meterAgentChannel(channel: ServerChannel, closed: (traffic: AgentTraffic) => void): Duplex {
  const traffic: AgentTraffic = { down: 0, up: 0 };
  let upstream: (Readable & { close?: () => void }) | undefined;
  channel.on('data', (chunk: Buffer) => (traffic.up += chunk.length));
  // 'pipe' fires on the destination with the source: the target's channel.
  channel.once('pipe', (source: Readable) => {
    upstream = source;
    source.on('data', (chunk: Buffer) => (traffic.down += chunk.length));
  });
  channel.once('close', () => {
    upstream?.close?.();
    closed(traffic);
  });
  return channel;
}

import { randomUUID } from 'node:crypto';
import type { Client, ClientInfo, Connection } from 'ssh2';
import type { Bus } from '../../../../core/src/bus/bus.js';
import { withLease } from '../../../../core/src/bus/leases.js';
import { describeError } from '../../../../core/src/errors.js';
import type { TokenVerifier } from '../../../../core/src/identity/oidc.js';
import type { LoginGuard, PendingLogin } from '../../../../core/src/logins/pending.js';
import { sourceAddress } from '../../../../core/src/logins/throttle.js';
import type { Logger } from '../../../../core/src/log.js';
import { nowMicros } from '../../../../schemas/src/events.js';
import type { Masker } from '../masking/masker.js';
import { SessionEvents } from '../session-events.js';
import { SshAuth, type Login } from './auth.js';
import type { AuthorizedKeys } from './authorized-keys.js';
import type { ChannelContext } from './channel-context.js';
import { serveSessionChannel, settled } from './channels.js';
import { dropListeners, Forwarding } from './forwarding.js';
import { SshGate } from './gate.js';
import { connectUpstream, type SshUpstreamTarget } from './upstream.js';
import { endAtTokenExpiry } from '../token-expiry.js';

export interface SshSessionDeps {
  bus: Bus;
  verifier: TokenVerifier;
  /** Target name (the SSH user name the client logs in as) → upstream, credential resolved. */
  resolveTarget: (name: string) => SshUpstreamTarget | undefined;
  proxyId: string;
  verdictTimeoutMs: number;
  /** Deadline for the upstream handshake. */
  connectTimeoutMs: number;
  logger: Logger;
  /** Applied to every command line before it is recorded. */
  audit: Masker;
  /** The listener's connections still logging in (their deadline), and the failed-login throttle. */
  logins: LoginGuard;
  /** Channels open at once per connection (default 16, gate.ts). */
  maxChannels?: number;
  /** Public keys registered to identities; without any, only tokens log in. */
  authorizedKeys?: AuthorizedKeys;
}

/**
 * One client connection through the SSH proxy, composed of four parts: the login (auth.ts), the
 * gate every channel and request passes (gate.ts: the channel cap, the decision, the record of
 * refusals), the session channels' requests (channels.ts: exec, shell, sftp) and forwarding
 * (forwarding.ts: `-L`, `-R`, agent). This class wires the client's connection to them, opens
 * Agate's own connection to the target once the login succeeded, and records the session's
 * start and end. Unix-socket forwards are refused and recorded; other global requests but `-R`
 * are refused.
 */
export class SshSession {
  readonly id = randomUUID();
  readonly #conn: Connection;
  readonly #deps: SshSessionDeps;
  readonly #log: Logger;
  readonly #clientAddress: string;
  readonly #events: SessionEvents;
  readonly #gate: SshGate;
  readonly #forwarding: Forwarding;
  #upstream: Promise<Client> | undefined;
  /** Pending until ssh2 reports the login complete ('ready'); its deadline is the listener's. */
  readonly #pending: PendingLogin;
  #opened = false;
  #closed = false;
  #closeReason = CLIENT_GONE;
  #stopExpiry: (() => void) | undefined;
  readonly #startedAt = nowMicros();
  #done!: () => void;
  readonly finished = new Promise<void>((r) => (this.#done = r));

  constructor(conn: Connection, info: ClientInfo, deps: SshSessionDeps, login: PendingLogin) {
    this.#conn = conn;
    this.#deps = deps;
    this.#pending = login;
    this.#log = deps.logger.child({ session_id: this.id, component: 'ssh-proxy' });
    this.#events = new SessionEvents(deps.bus, this.#log);
    this.#clientAddress = `${info.ip}:${info.port}`;
    const events = this.#events;
    const gate = (this.#gate = new SshGate({
      client: conn, sessionId: this.id, proxyId: deps.proxyId, bus: deps.bus, verdictTimeoutMs: deps.verdictTimeoutMs,
      events, log: this.#log, audit: deps.audit, maxChannels: deps.maxChannels,
    }));
    new SshAuth(conn, login, {
      sessionId: this.id, proxyId: deps.proxyId, clientAddress: this.#clientAddress, sourceAddress: sourceAddress(info.ip),
      verifier: deps.verifier, resolveTarget: deps.resolveTarget, logins: deps.logins, authorizedKeys: deps.authorizedKeys,
      events, log: this.#log, opened: (l) => this.#open(l), terminate: (why) => this.terminate(why),
    });
    const forwarding = (this.#forwarding = new Forwarding({ gate, events, closed: () => this.#closed }));
    const channels: ChannelContext = { gate, events, log: this.#log, audit: deps.audit, connectTimeoutMs: deps.connectTimeoutMs };
    conn.on('session', (accept, reject) => {
      const release = gate.admit();
      if (release === undefined) return void reject();
      const session = accept();
      session.once('close', release);
      serveSessionChannel(channels, session, (a, r) => forwarding.agentForwarding(a, r));
    });
    // Forwarding lets traffic past the command audit: -L and -R need a rule that allows them by
    // name; unix-socket forwards are refused and recorded.
    const settle = settled(channels);
    const refuseSocket = (request: string, socketPath: string, message: string) => {
      if (gate.identity !== undefined) gate.refuseUnasked(`${request} ${socketPath}`, { request, path: deps.audit.maskText(socketPath).text }, message);
    };
    conn.on('tcpip', (accept, reject, info) => settle(forwarding.directTcpip(accept, reject, info)));
    conn.on('openssh.streamlocal', (_accept, reject, info) => {
      refuseSocket('direct-streamlocal', info.socketPath, 'forwarding to a unix socket on the target is not available through Agate');
      reject();
    });
    conn.on('request', (accept, reject, name, info) => {
      if (gate.identity === undefined) return void reject?.();
      if (name === 'tcpip-forward') return settle(forwarding.remoteForward(accept, reject, info));
      if (name === 'cancel-tcpip-forward') return settle(forwarding.cancelRemoteForward(accept, reject, info));
      if (name === 'streamlocal-forward@openssh.com') refuseSocket('streamlocal-forward', (info as unknown as { socketPath: string }).socketPath, 'a unix socket listener on the target is not available through Agate');
      reject?.();
    });
    conn.on('error', (err) => {
      this.#log.debug('client connection error', { error: err.message });
      const reason = clientErrorReason(err);
      if (reason !== undefined && this.#closeReason === CLIENT_GONE) this.#closeReason = reason;
    });
    conn.on('close', () => void this.#end());
  }

  /** No channel open: no command, shell, transfer or tunnel in progress (a drain closes idle sessions first). */
  get idle(): boolean {
    return this.#gate.channels === 0;
  }

  /** Ends the session from the proxy's side (shutdown). */
  terminate(reason: string): void {
    this.#closeReason = reason;
    this.#conn.end();
  }

  /** A verified login: records the session's start, then opens Agate's connection to the target. */
  async #open({ identity, target, username }: Login): Promise<boolean> {
    try {
      await this.#events.emit({
        type: 'SessionOpened', event_id: randomUUID(), time: nowMicros(), session_id: this.id, proxy_id: this.#deps.proxyId,
        protocol: 'ssh', target: target.name, client_address: this.#clientAddress, identity, attributes: withLease({ upstream_user: target.user }, this.#deps.bus),
      });
    } catch (err) {
      this.#log.error('cannot record session start; refusing the session', { error: describeError(err) });
      return false;
    }
    this.#opened = true;
    this.#stopExpiry = endAtTokenExpiry(this.#deps.verifier, identity, () => this.terminate('token expired'));
    // The agent relay answers the agent channels the target opens once a channel forwards the agent.
    const upstream = (this.#upstream = connectUpstream(target, this.#deps.connectTimeoutMs, this.#forwarding.agent()));
    this.#gate.open(identity, username, upstream);
    upstream.then(
      (client) => {
        client.on('close', () => this.terminate('the target closed the connection'));
        client.on('tcp connection', (details, accept, reject) => settled({ log: this.#log })(this.#forwarding.forwardedConnection(details, accept, reject)));
      },
      (err: unknown) => this.#log.warn('cannot open the upstream connection', { target: target.name, error: describeError(err) }),
    );
    return true;
  }

  async #end(): Promise<void> {
    if (this.#closed) return;
    this.#closed = true;
    this.#stopExpiry?.();
    this.#pending.done();
    const forwards = this.#forwarding.takeListeners();
    this.#upstream?.then((c) => {
      dropListeners(c, forwards);
      c.end();
    }, () => undefined);
    if (this.#opened) {
      await this.#events.emitLogged({
        type: 'SessionClosed', event_id: randomUUID(), time: nowMicros(), session_id: this.id, reason: this.#closeReason,
        commands: this.#gate.commands, duration_us: nowMicros() - this.#startedAt,
      });
    }
    await this.#events.drained();
    this.#done();
  }
}

const CLIENT_GONE = 'client disconnected';

/**
 * Why the client's connection ended, when ssh2 ended it for what the client sent (a socket error
 * is the client going away). ssh2 reads packets up to 35,000 bytes, the size RFC 4253 §6.1 asks of
 * every implementation; OpenSSH sends up to 256 KiB (an exec request with a command line that
 * long): the connection ends before the request is read, so no Command can say so.
 */
function clientErrorReason(err: Error & { level?: string }): string | undefined {
  if (err.level === 'socket') return undefined;
  if (err.message === 'Bad packet length') return 'protocol error: the client sent an SSH packet longer than 35,000 bytes, the largest Agate reads (an exec request this long is refused); nothing in it ran';
  return `protocol error: ${err.message}`;
}

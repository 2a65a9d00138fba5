import type { AcceptConnection, Client, ClientChannel, GetStreamCallback, RejectConnection, ServerChannel, TcpConnectionDetails, TcpipBindInfo } from 'ssh2';
import { AgateError, ErrorCode, describeError } from '../../../../core/src/errors.js';
import { nowMicros, type Command } from '../../../../schemas/src/events.js';
import { decideHere } from '../decide.js';
import type { SessionEvents } from '../session-events.js';
import { AgentRelay, meterAgentChannel, openAgentChannel } from './agent-relay.js';
import { relayExec } from './exec-relay.js';
import { canonicalBindHost, canonicalTcpHost } from './tcp-host.js';
import type { SshGate } from './gate.js';
import { MAX_REMOTE_FORWARDS, RemoteForwards, type RemoteForward } from './remote-forwards.js';
import { failureResponse, forwardResponse, grantedResponse } from './responses.js';

/** The built-in rule that allows cancelling a remote forward without asking policy. */
export const CANCEL_FORWARD_RULE = 'agate.ssh-forward-cancel';

interface ForwardingDeps {
  /** The channel cap, the decisions, and (for an allowed command's pass) both ends of the connection. */
  gate: SshGate;
  events: SessionEvents;
  /** Whether the client's connection has closed. */
  closed: () => boolean;
}

/** Where a `-L` tunnel goes, and from where the client says it comes. */
interface TunnelInfo {
  srcIP: string;
  srcPort: number;
  destIP: string;
  destPort: number;
}

/**
 * Port and agent forwarding of one connection. Forwarding lets traffic past the command audit,
 * so each kind opens only by a policy rule that names it (policy refuses it otherwise: engine.ts,
 * sshEnforceable) and each connection through it is decided and recorded on its own: `-L`
 * tunnels (`direct-tcpip`), `-R` listeners on the target (`tcpip-forward`, and the connections
 * made there), and agent forwarding (`auth-agent`, and each use of the agent on the target).
 * Every channel takes its slot and every request its decision from the gate, before anything
 * is opened on either side.
 */
export class Forwarding {
  readonly #deps: ForwardingDeps;
  readonly #remoteForwards = new RemoteForwards();
  /** The first allowed agent-forwarding request; each agent channel the target opens refers to it. */
  #agentRequest: Command | undefined;

  constructor(deps: ForwardingDeps) {
    this.#deps = deps;
  }

  /** The agent Agate's upstream connection offers: it answers the agent channels the target opens. */
  agent(): AgentRelay {
    return new AgentRelay((cb) => void this.#agentChannel(cb));
  }

  /** Removes every `-R` listener from the record (the session is ending); see `dropListeners`. */
  takeListeners(): RemoteForward[] {
    return this.#remoteForwards.takeAll();
  }

  /**
   * `ssh -L`: a TCP connection from the target's side to host:port. Decided as the command
   * `direct-tcpip host:port` (attributes request=direct-tcpip, path=host:port with the host in
   * its canonical spelling, tcp-host.ts, and client_path as the client spelt it), and allowed
   * only by a rule that names it: the policy default never opens a tunnel. The Response records
   * the bytes each way.
   */
  async directTcpip(accept: () => ServerChannel, rejectChannel: () => void, info: TunnelInfo): Promise<void> {
    const { gate, events } = this.#deps;
    // Tunnels count against the same per-connection cap as sessions: each may hold a verdict.
    const release = gate.admit();
    if (release === undefined) return rejectChannel();
    const reject = () => {
      release();
      rejectChannel();
    };
    // Decided on, and connected to, one spelling of the host: `127.1` is 127.0.0.1 to the target.
    const host = canonicalTcpHost(info.destIP);
    const where = `${host}:${info.destPort}`;
    const attributes: Record<string, string> = { request: 'direct-tcpip', path: where };
    if (host !== info.destIP) attributes.client_path = `${info.destIP}:${info.destPort}`;
    const command = gate.command(`direct-tcpip ${where}`, attributes);
    const decision = await gate.check(command);
    if (decision.kind === 'refuse') return reject();
    let upstream: Client;
    try {
      upstream = await gate.upstream(decision.pass);
    } catch (err) {
      void events.emitLogged(failureResponse(command, 'error', ErrorCode.UPSTREAM_UNREACHABLE, describeError(err)));
      return reject();
    }
    const started = nowMicros();
    const failed = (why: string) => {
      void events.emitLogged(failureResponse(command, 'error', ErrorCode.UPSTREAM_UNREACHABLE, `the target could not open ${where}: ${why}`));
      reject();
    };
    try {
      // ssh2 throws rather than call back once the target connection closed: refused, not a crash.
      upstream.forwardOut(info.srcIP, info.srcPort, host, info.destPort, (err, stream) => {
        if (err) return failed(err.message);
        const channel = accept();
        channel.pause();
        channel.once('close', release);
        void relayExec(channel, stream, { exitStatus: false }).then((outcome) => events.emitLogged(forwardResponse(command, outcome, started)));
      });
    } catch (err) {
      failed(describeError(err));
    }
  }

  /**
   * `ssh -R`: the client asks the target to listen on bindAddr:bindPort and hand it each
   * connection made there. Decided as `tcpip-forward host:port` (attributes
   * request=tcpip-forward, path=host:port as asked) and, like -L, allowed only by a rule that
   * names it. Each connection made on the target is then decided and recorded in turn.
   */
  async remoteForward(accept: ((port?: number) => void) | undefined, reject: (() => void) | undefined, bind: TcpipBindInfo): Promise<void> {
    const { gate, events } = this.#deps;
    // Decided on, and bound with, one spelling: `*`, `` and `[::]` all listen on every interface.
    const host = canonicalBindHost(bind.bindAddr);
    const where = `${host}:${bind.bindPort}`;
    const attributes: Record<string, string> = { request: 'tcpip-forward', path: where };
    if (host !== bind.bindAddr) attributes.client_path = `${bind.bindAddr}:${bind.bindPort}`;
    if (this.#remoteForwards.full) {
      gate.refuseUnasked(`tcpip-forward ${where}`, attributes, `a connection may hold at most ${MAX_REMOTE_FORWARDS} remote forwards`);
      return reject?.();
    }
    const release = this.#remoteForwards.reserve();
    const command = gate.command(`tcpip-forward ${where}`, attributes);
    const decision = await gate.check(command);
    if (decision.kind === 'refuse') {
      release();
      return reject?.();
    }
    let upstream: Client;
    try {
      upstream = await gate.upstream(decision.pass);
      upstream.forwardIn(host, bind.bindPort, (err, boundPort) => {
        release();
        if (err) {
          void events.emitLogged(failureResponse(command, 'error', ErrorCode.UPSTREAM_UNREACHABLE, `the target could not listen on ${where}: ${err.message}`));
          return reject?.();
        }
        if (this.#deps.closed()) return unforward(upstream, host, boundPort); // the client left meanwhile
        this.#remoteForwards.add({ bindAddr: host, clientBindAddr: bind.bindAddr, bindPort: bind.bindPort, boundPort, command });
        void events.emitLogged(grantedResponse(command, `listening on ${host}:${boundPort} on the target`));
        accept?.(boundPort);
      });
    } catch (err) {
      release();
      void events.emitLogged(failureResponse(command, 'error', ErrorCode.UPSTREAM_UNREACHABLE, describeError(err)));
      reject?.();
    }
  }

  /**
   * `cancel-tcpip-forward`: the target stops listening. Recorded, not decided by policy: it only
   * takes access away, and a refusal would leave the listener open. Its one verdict is the allow
   * of the built-in rule CANCEL_FORWARD_RULE.
   */
  async cancelRemoteForward(accept: (() => void) | undefined, reject: (() => void) | undefined, bind: TcpipBindInfo): Promise<void> {
    const { gate, events } = this.#deps;
    const forward = this.#remoteForwards.take(canonicalBindHost(bind.bindAddr), bind.bindPort);
    if (forward === undefined) return reject?.();
    const where = `${forward.bindAddr}:${forward.bindPort}`;
    const command = gate.command(`cancel-tcpip-forward ${where}`, { request: 'tcpip-forward', path: where, cancel: 'true', forward_command_id: forward.command.event_id });
    const verdict = decideHere(command, 'allow', CANCEL_FORWARD_RULE, 'taking a remote forward away opens nothing; allowed by the built-in rule'); // before it is published
    void events.emitLogged(command);
    void events.emitLogged(verdict);
    const upstream = await gate.upstreamToRevoke(); // resolved: the listener was bound through it
    const done = (err?: Error | null) => {
      if (err) void events.emitLogged(failureResponse(command, 'error', ErrorCode.UPSTREAM_UNREACHABLE, `the target could not stop listening on ${where}: ${err.message}`));
      else void events.emitLogged(grantedResponse(command, `stopped listening on ${forward.bindAddr}:${forward.boundPort}`));
      (err ? reject : accept)?.();
    };
    try {
      upstream.unforwardIn(forward.bindAddr, forward.boundPort, done);
    } catch (err) {
      done(err as Error);
    }
  }

  /**
   * A connection made on the target to a `-R` listener. Decided as `forwarded-tcpip host:port
   * from origin` with the listener's request and path (a rule that allowed the listener allows
   * its connections), then handed to the client; the Response records the bytes each way.
   */
  async forwardedConnection(details: TcpConnectionDetails, acceptUpstream: AcceptConnection<ClientChannel>, rejectUpstream: RejectConnection): Promise<void> {
    const { gate, events } = this.#deps;
    const forward = this.#remoteForwards.receiving(details.destIP, details.destPort);
    if (forward === undefined) return rejectUpstream(); // cancelled meanwhile
    const release = gate.admit();
    if (release === undefined) return rejectUpstream();
    const reject = () => {
      release();
      rejectUpstream();
    };
    const origin = `${details.srcIP}:${details.srcPort}`;
    const attributes = { request: 'tcpip-forward', path: `${forward.bindAddr}:${forward.bindPort}`, channel: 'forwarded-tcpip', origin, forward_command_id: forward.command.event_id };
    const command = gate.command(`forwarded-tcpip ${details.destIP}:${details.destPort} from ${origin}`, attributes);
    const decision = await gate.check(command);
    if (decision.kind === 'refuse') return reject();
    const started = nowMicros();
    // Named as the client asked for the listener: that is how it finds its own forward.
    gate.client(decision.pass).forwardOut(forward.clientBindAddr, details.destPort, details.srcIP, details.srcPort, (err, channel) => {
      if (err) {
        void events.emitLogged(failureResponse(command, 'error', null, `the client did not take the connection: ${err.message}`));
        return reject();
      }
      const stream = acceptUpstream();
      channel.once('close', release);
      void relayExec(channel, stream, { exitStatus: false }).then((outcome) => events.emitLogged(forwardResponse(command, outcome, started)));
    });
  }

  /**
   * `ssh -A` on a session channel: decided as `auth-agent` (request=auth-agent) and allowed only
   * by a rule that names it. When allowed, the channel's exec or shell asks the target for agent
   * forwarding; each use of the agent there is decided and recorded on its own (#agentChannel).
   * Resolves whether it was granted.
   */
  async agentForwarding(accept: (() => void) | undefined, reject: (() => void) | undefined): Promise<boolean> {
    const { gate, events } = this.#deps;
    const command = gate.command('auth-agent', { request: 'auth-agent' });
    // Refused, the agent would sign for the client on the target's behalf, outside the audit.
    if ((await gate.check(command)).kind === 'refuse') {
      reject?.();
      return false;
    }
    this.#agentRequest ??= command;
    void events.emitLogged(grantedResponse(command, 'agent forwarding granted'));
    accept?.();
    return true;
  }

  /**
   * The target opened an `auth-agent@openssh.com` channel (a program there uses the forwarded
   * agent). Decided as `auth-agent channel` (request=auth-agent), then joined to a new agent
   * channel to the client; the Response records the bytes each way (up: the agent's answers).
   */
  async #agentChannel(cb: GetStreamCallback): Promise<void> {
    const { gate, events } = this.#deps;
    const granted = this.#agentRequest;
    if (granted === undefined || this.#deps.closed()) return cb(new Error('agent forwarding was not granted'));
    const release = gate.admit();
    if (release === undefined) return cb(new Error('too many channels open'));
    const command = gate.command('auth-agent channel', { request: 'auth-agent', channel: 'auth-agent@openssh.com', agent_request_id: granted.event_id });
    const decision = await gate.check(command);
    if (decision.kind === 'refuse') {
      release();
      return cb(new Error(decision.message));
    }
    let channel: ServerChannel;
    try {
      channel = await openAgentChannel(gate.client(decision.pass));
    } catch (err) {
      void events.emitLogged(failureResponse(command, 'error', err instanceof AgateError ? err.code : null, `the client's agent could not be reached: ${describeError(err)}`));
      release();
      return cb(err as Error);
    }
    const started = nowMicros();
    cb(undefined, meterAgentChannel(channel, (traffic) => {
      release();
      const outcome = { exitCode: 0, signal: null, bytes: traffic.down, bytesUp: traffic.up, digest: null, clientGone: false };
      void events.emitLogged(forwardResponse(command, outcome, started, 'agent'));
    }));
  }
}

/** Asks the target to stop listening on each of `forwards`, without waiting: the connection may be closing. */
export function dropListeners(upstream: Client, forwards: readonly RemoteForward[]): void {
  for (const f of forwards) unforward(upstream, f.bindAddr, f.boundPort);
}

function unforward(upstream: Client, bindAddr: string, port: number): void {
  try {
    upstream.unforwardIn(bindAddr, port);
  } catch {
    // Not connected any more: the target dropped the listener with the connection.
  }
}

import { randomUUID } from 'node:crypto';
import type { Client, Connection, ServerChannel } from 'ssh2';
import type { Bus } from '../../../../core/src/bus/bus.js';
import type { Logger } from '../../../../core/src/log.js';
import { nowMicros, type Command, type Identity, type Verdict } from '../../../../schemas/src/events.js';
import { decide, decideHere, refusalText, UNASKED_RULE } from '../decide.js';
import { holdNotice } from '../hold-notice.js';
import type { Masker } from '../masking/masker.js';
import type { SessionEvents } from '../session-events.js';
import { failureResponse } from './responses.js';

/** Session channels, tunnels and agent channels open at once per connection; each may hold a pending verdict. */
export const MAX_CHANNELS = 16;
/** Refusals reach the client as stderr and this exit status (the shell's "cannot execute"). */
export const REFUSED_EXIT_STATUS = 126;

/** Only the gate holds this, so only the gate issues a Pass. */
const ISSUER = Symbol('ssh gate');

/**
 * What the gate gives a command it allowed: the only key to either end of the connection for
 * opening something (a channel or a listener on the target, a channel towards the client).
 */
export class Pass {
  // A private field makes the type nominal: no object literal passes for one.
  readonly #command: Command;

  constructor(issuer: symbol, command: Command) {
    if (issuer !== ISSUER) throw new TypeError('only the ssh gate issues a pass');
    this.#command = command;
  }

  /** The allowed command. */
  get command(): Command {
    return this.#command;
  }
}

/** `rule`: the rule that allowed it; null when the policy default did. */
type Decision = { kind: 'run'; rule: string | null; pass: Pass } | { kind: 'refuse'; message: string };

/** Frees one slot of the channel cap; calling it again does nothing. */
type Release = () => void;

interface GateDeps {
  /** The client's connection: `-R` connections and agent channels are opened towards it. */
  client: Connection;
  sessionId: string;
  proxyId: string;
  bus: Bus;
  verdictTimeoutMs: number;
  events: SessionEvents;
  log: Logger;
  /** Applied to every command text before it is recorded. */
  audit: Masker;
  maxChannels?: number;
}

/**
 * The one gate of an SSH connection: every channel the client or the target opens takes a slot
 * of the per-connection cap here, and every request (exec, shell, sftp and each file operation,
 * typed and captured lines, pushes, tunnels, listeners, agent use) becomes a Command built here,
 * published write-ahead and decided here (decide.ts, fail closed). Refusals are recorded here.
 * An allowed command gets a Pass, and only a Pass opens anything on Agate's connection to the
 * target or towards the client, so no path opens a channel or a forward without the gate.
 */
export class SshGate {
  readonly #deps: GateDeps;
  readonly #maxChannels: number;
  #channels = 0;
  #sequence = 0;
  #identity: Identity | undefined;
  #target = '';
  #upstream: Promise<Client> | undefined;

  constructor(deps: GateDeps) {
    this.#deps = deps;
    this.#maxChannels = deps.maxChannels ?? MAX_CHANNELS;
  }

  /** The identity that logged in; commands are built only after it is known. */
  get identity(): Identity | undefined {
    return this.#identity;
  }

  /** The target's name as the client spelt it ('' before the login). */
  get target(): string {
    return this.#target;
  }

  /** Channels open now. */
  get channels(): number {
    return this.#channels;
  }

  /** Commands built so far (the session's count in SessionClosed). */
  get commands(): number {
    return this.#sequence;
  }

  /**
   * Called once the login succeeded: the commands from now on carry this identity and target,
   * and what they are allowed to open is opened over `upstream`.
   */
  open(identity: Identity, target: string, upstream: Promise<Client>): void {
    this.#identity = identity;
    this.#target = target;
    this.#upstream = upstream;
  }

  /** Agate's connection to the target, for what `pass` allows. */
  upstream(pass: Pass): Promise<Client> {
    this.#ours(pass);
    return this.#upstream!;
  }

  /** The client's connection, to open what `pass` allows towards it. */
  client(pass: Pass): Connection {
    this.#ours(pass);
    return this.#deps.client;
  }

  #ours(pass: Pass): void {
    if (pass.command.session_id !== this.#deps.sessionId) throw new TypeError('a pass opens only its own session\'s connections');
  }

  /**
   * Agate's connection to the target for taking access away (a `-R` listener cancelled): it
   * opens nothing, so it is recorded but needs no pass.
   */
  upstreamToRevoke(): Promise<Client> {
    return this.#upstream!;
  }

  /** Takes a slot of the per-connection channel cap, or undefined when all are taken. */
  admit(): Release | undefined {
    if (this.#channels >= this.#maxChannels) return undefined;
    this.#channels += 1;
    let released = false;
    return () => {
      if (!released) this.#channels -= 1;
      released = true;
    };
  }

  command(text: string, attributes: Record<string, string>): Command {
    const { sessionId, proxyId, audit } = this.#deps;
    return {
      type: 'Command', event_id: randomUUID(), time: nowMicros(), session_id: sessionId, proxy_id: proxyId,
      sequence: ++this.#sequence, protocol: 'ssh', target: this.#target, identity: this.#identity!,
      // Tokens or keys typed on a command line must never reach the bus.
      text: audit.maskText(text).text, parameters: [], attributes,
    };
  }

  /**
   * Publishes the command (write-ahead) and waits for its verdict; fails closed. `note` hears
   * what a client is told while a hold keeps the command waiting. The caller records a refusal.
   */
  async decide(command: Command, note?: (text: string) => void): Promise<Decision> {
    const { bus, verdictTimeoutMs, events, log } = this.#deps;
    const onHold = note === undefined ? undefined : (v: Verdict) => note(holdNote(v));
    const d = await decide(command, { bus, verdictTimeoutMs, events, log }, { onHold });
    if (d.kind !== 'run') return { kind: 'refuse', message: refusalText(d, 'command') };
    // Shell output cannot be masked reliably, so a masking verdict refuses rather than leaks.
    if (d.verdict.decision === 'mask') return { kind: 'refuse', message: `Agate refused the command: rule "${d.verdict.rule_id}" asks for masked output, which the SSH proxy cannot provide` };
    return { kind: 'run', rule: d.verdict.rule_id, pass: new Pass(ISSUER, command) };
  }

  /** Decides the command and, when refused, records the refusal as its Response. */
  async check(command: Command, note?: (text: string) => void): Promise<Decision> {
    const decision = await this.decide(command, note);
    if (decision.kind === 'refuse') void this.#deps.events.emitLogged(failureResponse(command, 'refused', null, decision.message));
    return decision;
  }

  /** A request refused before policy is asked (the proxy cannot audit it): recorded with its refusal. */
  refuseUnasked(text: string, attributes: Record<string, string>, message: string): void {
    const command = this.command(text, attributes);
    const refusal = `Agate refused the request: ${message}`;
    void this.recordUnasked(command, refusal);
    void this.#deps.events.emitLogged(failureResponse(command, 'refused', null, refusal));
  }

  /**
   * Records `command`, refused before policy is asked, with the deny of the built-in rule as
   * its only verdict (policy leaves a command so marked to it); resolves once the command is
   * recorded (or given up on, logged). The caller records the refusal (its Response).
   */
  recordUnasked(command: Command, message: string): Promise<void> {
    const verdict = decideHere(command, 'deny', UNASKED_RULE, message); // marks the command: before it is published
    const recorded = this.#deps.events.emitLogged(command);
    void this.#deps.events.emitLogged(verdict);
    return recorded;
  }

  /** Refuses a request on a session channel: recorded, then stderr and an exit status, and the channel ends. */
  refuseOn(channel: ServerChannel, command: Command, status: 'refused' | 'error', message: string, code: string | null = null, exitStatus = REFUSED_EXIT_STATUS): void {
    void this.#deps.events.emitLogged(failureResponse(command, status, code, message));
    channel.stderr.write(`${message}\n`);
    channel.exit(exitStatus);
    channel.end();
  }
}

/** What a client is told while its command waits for approval. */
function holdNote(v: Verdict): string {
  const { headline, secondsLeft } = holdNotice(v, 'command');
  return `${headline}. It runs once approved (agate approve ${v.approval_id}), or is refused in ${secondsLeft} s.`;
}

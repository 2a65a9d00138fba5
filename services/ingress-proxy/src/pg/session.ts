import { randomInt, randomUUID } from 'node:crypto';
import type { Socket } from 'node:net';
import { Parser } from 'pg-protocol/dist/parser.js';
import type { Bus } from '../../../../core/src/bus/bus.js';
import { AgateError, AuthenticationError, ErrorCode, describeError } from '../../../../core/src/errors.js';
import { TokenVerifier } from '../../../../core/src/identity/oidc.js';
import type { Logger } from '../../../../core/src/log.js';
import { analyzeSql } from '../../../../core/src/sql/analyze.js';
import { nowMicros, type AgateEvent, type Command, type Identity } from '../../../../schemas/src/events.js';
import { serialize } from './backend-serializer.js';
import { BackendFrameReader, type BackendFrame } from './backend-frames.js';
import { FrontendParser } from './frontend-parser.js';
import type { FrontendMessage, Query, StartupMessage } from './messages.js';
import { decodePassword } from './password-message.js';
import { ResultRecorder } from './result-recorder.js';
import { connectUpstream, type UpstreamTarget } from './upstream.js';

export interface PgSessionDeps {
  bus: Bus;
  verifier: TokenVerifier;
  /** Target name (the database name the client asks for) → upstream, with the credential resolved. */
  resolveTarget: (name: string) => UpstreamTarget | undefined;
  proxyId: string;
  verdictTimeoutMs: number;
  maxMessageSize: number;
  logger: Logger;
}

type TxStatus = 'I' | 'T' | 'E';
/** Work the client waits on, in the order its replies must reach it. */
type Pending = { kind: 'upstream'; recorder: ResultRecorder } | { kind: 'local'; reply: (tx: TxStatus) => Buffer[] };
type Refusal = { sqlstate: string; message: string };

/** SQLSTATEs Agate answers with. */
const SQLSTATE = {
  insufficientPrivilege: '42501',
  invalidPassword: '28P01',
  unknownTarget: '3D000',
  cannotConnect: '08001',
  protocolViolation: '08P01',
  featureNotSupported: '0A000',
  systemError: '58000',
  adminShutdown: '57P01',
} as const;

/**
 * One client connection through the PostgreSQL proxy: authenticate the client by its OIDC token,
 * open the upstream session with Agate's own credential, then for every statement emit a command
 * event, wait for its verdict, and forward or refuse; every result is recorded.
 *
 * Flow control: the client socket is paused while a message is being handled (so no frame is
 * read while a verdict is pending), and each direction pauses its source when the destination's
 * write buffer is full.
 */
export class PgSession {
  readonly id = randomUUID();
  readonly #client: Socket;
  readonly #deps: PgSessionDeps;
  readonly #log: Logger;
  readonly #parser: FrontendParser;
  readonly #inbox: FrontendMessage[] = [];
  readonly #pending: Pending[] = [];
  readonly #backendParser = new Parser();
  #upstream: Socket | undefined;
  #startup: StartupMessage | undefined;
  #identity: Identity | undefined;
  #target = '';
  #opened = false;
  #closed = false;
  #processing = false;
  #sequence = 0;
  #tx: TxStatus = 'I';
  #discardUntilSync = false;
  #upstreamBlocked = false;
  #emitChain: Promise<void> = Promise.resolve();
  readonly #startedAt = nowMicros();
  #done!: () => void;
  readonly finished = new Promise<void>((r) => (this.#done = r));

  constructor(client: Socket, deps: PgSessionDeps) {
    this.#client = client;
    this.#deps = deps;
    this.#log = deps.logger.child({ session_id: this.id });
    this.#parser = new FrontendParser((m) => this.#inbox.push(m), { maxMessageSize: deps.maxMessageSize });
    client.setNoDelay(true);
    client.on('data', (chunk: Buffer) => this.#onClientData(chunk));
    client.on('error', (err) => this.#log.debug('client socket error', { error: err.message }));
    client.on('close', () => void this.#end('client disconnected'));
  }

  /** Ends the session from the proxy's side (shutdown), telling the client why. */
  terminate(reason: string): void {
    void this.#fatal(SQLSTATE.adminShutdown, reason, reason);
  }

  // ---- client side ---------------------------------------------------------------------------

  #onClientData(chunk: Buffer): void {
    try {
      this.#parser.push(chunk);
    } catch (err) {
      return void this.#fatal(SQLSTATE.protocolViolation, `invalid message from the client: ${(err as Error).message}`, 'protocol violation');
    }
    if (this.#inbox.length > 0 && !this.#processing) void this.#drainInbox();
  }

  async #drainInbox(): Promise<void> {
    this.#processing = true;
    this.#client.pause();
    try {
      while (this.#inbox.length > 0 && !this.#closed) await this.#handle(this.#inbox.shift()!);
    } catch (err) {
      this.#log.error('session failed', { error: describeError(err) });
      await this.#fatal(SQLSTATE.systemError, 'Agate could not process the message; the session is closed', 'internal error');
    } finally {
      this.#processing = false;
      this.#resumeClient();
    }
  }

  async #handle(msg: FrontendMessage): Promise<void> {
    switch (msg.type) {
      case 'sslRequest':
      case 'gssEncRequest':
        // TLS termination arrives with the full protocol issue; clients fall back to plain text.
        this.#client.write(serialize.sslRefused());
        return;
      case 'cancelRequest':
        this.#client.end();
        return;
      case 'startup':
        this.#startup = msg;
        this.#client.write(serialize.authenticationCleartextPassword());
        return;
      case 'password':
        return this.#authenticate(decodePassword(msg));
    }
    if (this.#upstream === undefined) {
      return this.#fatal(SQLSTATE.protocolViolation, `unexpected ${msg.type} message before authentication`, 'protocol violation');
    }
    switch (msg.type) {
      case 'query':
        return this.#onQuery(msg);
      case 'terminate':
        this.#upstream.write(msg.raw);
        this.#client.end();
        return;
      case 'copyData':
      case 'copyDone':
      case 'copyFail':
        // Part of a COPY FROM STDIN whose statement was already decided.
        this.#toUpstream(msg.raw);
        return;
      case 'sync':
        this.#discardUntilSync = false;
        this.#reply(() => []);
        return;
      default:
        return this.#refuseExtended(msg.type);
    }
  }

  async #authenticate(token: string): Promise<void> {
    const startup = this.#startup;
    if (startup === undefined || this.#identity !== undefined) {
      return this.#fatal(SQLSTATE.protocolViolation, 'unexpected password message', 'protocol violation');
    }
    const targetName = startup.parameters.database ?? startup.parameters.user ?? '';
    this.#target = targetName;
    try {
      this.#identity = await this.#deps.verifier.verify(token);
    } catch (err) {
      const e = err instanceof AuthenticationError ? err : new AuthenticationError(ErrorCode.AUTH_TOKEN_MALFORMED, 'the token could not be verified', { cause: err });
      await this.#recordAuthFailure(token, e.code, e.message);
      return this.#fatal(SQLSTATE.invalidPassword, `Agate authentication failed: ${e.message}`, `authentication failed (${e.code})`);
    }
    const target = this.#deps.resolveTarget(targetName);
    if (target === undefined) {
      await this.#recordAuthFailure(token, ErrorCode.TARGET_UNKNOWN, `no target named "${targetName}"`);
      return this.#fatal(SQLSTATE.unknownTarget, `Agate has no target named "${targetName}" (connect with dbname=<target name>)`, 'unknown target');
    }
    try {
      await this.#emit({
        type: 'SessionOpened', event_id: randomUUID(), time: nowMicros(), session_id: this.id, proxy_id: this.#deps.proxyId,
        protocol: 'postgres', target: targetName, client_address: this.#clientAddress(), identity: this.#identity,
        attributes: pick(startup.parameters, ['user', 'application_name', 'client_encoding']),
      });
      this.#opened = true;
    } catch (err) {
      this.#log.error('cannot record session start; refusing the session', { error: describeError(err) });
      return this.#fatal(SQLSTATE.systemError, 'Agate cannot record this session (audit log unavailable); refused', 'audit unavailable');
    }
    let upstream;
    try {
      upstream = await connectUpstream(target, pick(startup.parameters, ['application_name', 'client_encoding', 'DateStyle', 'TimeZone']), this.#deps.maxMessageSize);
    } catch (err) {
      this.#log.warn('cannot open upstream session', { target: targetName, error: describeError(err) });
      const code = err instanceof AgateError ? err.code : 'UPSTREAM_UNREACHABLE';
      return this.#fatal(SQLSTATE.cannotConnect, `Agate cannot open a session on target "${targetName}" (${code})`, `upstream failed: ${code}`);
    }
    if (this.#closed) return void upstream.socket.destroy();
    this.#attachUpstream(upstream.socket);
    const hello = [serialize.authenticationOk(), ...upstream.ready.parameters.map(([k, v]) => serialize.parameterStatus(k, v))];
    // The client never learns the upstream backend key; cancel routing maps Agate's own.
    hello.push(serialize.backendKeyData(randomInt(1, 2 ** 31 - 1), randomInt(0, 2 ** 31 - 1)), serialize.readyForQuery('I'));
    this.#client.write(Buffer.concat(hello));
  }

  async #onQuery(msg: Query): Promise<void> {
    const analysis = analyzeSql(msg.text);
    const texts = analysis.ok ? analysis.statements.map((s) => s.text) : [msg.text];
    const commands = texts.map((text) => this.#command(text));
    // Every statement is decided (and recorded) before any of them runs.
    const refusals: (Refusal | undefined)[] = [];
    for (const command of commands) refusals.push(await this.#decide(command));
    const refused = refusals.find((r) => r !== undefined);
    if (refused === undefined) {
      this.#pending.push({ kind: 'upstream', recorder: new ResultRecorder(commands, (e) => void this.#emitLogged(e)) });
      this.#toUpstream(msg.raw);
      return;
    }
    for (const [i, command] of commands.entries()) {
      const r = refusals[i] ?? { sqlstate: refused.sqlstate, message: 'not run: another statement in the same query was refused' };
      void this.#emitLogged(ResultRecorder.refusedResponse(command, r.sqlstate, r.message));
    }
    this.#reply((tx) => [serialize.errorResponse({ severity: 'ERROR', code: refused.sqlstate, message: refused.message }), serialize.readyForQuery(tx)]);
  }

  /** Publishes the command (write-ahead) and waits for its verdict; undefined means allowed. */
  async #decide(command: Command): Promise<Refusal | undefined> {
    const { bus, verdictTimeoutMs } = this.#deps;
    let outcome;
    try {
      outcome = await bus.requestVerdict(command, verdictTimeoutMs);
    } catch (err) {
      this.#log.error('cannot record a command; refusing it', { command_id: command.event_id, error: describeError(err) });
      return { sqlstate: SQLSTATE.systemError, message: 'Agate refused the statement: the audit log is unavailable, so it cannot be recorded' };
    }
    if (outcome.kind === 'timeout') {
      const reason = `no verdict within ${verdictTimeoutMs} ms; refused (fail closed)`;
      void this.#emitLogged({
        type: 'Verdict', event_id: randomUUID(), time: nowMicros(), session_id: this.id, command_id: command.event_id,
        decision: 'deny', rule_id: 'agate.verdict-deadline', reason, source: 'deadline', policy_revision: '',
      });
      return { sqlstate: SQLSTATE.insufficientPrivilege, message: `Agate refused the statement: ${reason}` };
    }
    const v = outcome.verdict;
    if (v.decision === 'allow') return undefined;
    const rule = v.rule_id === null ? 'the policy default' : `rule "${v.rule_id}"`;
    return { sqlstate: SQLSTATE.insufficientPrivilege, message: `Agate refused the statement by ${rule}: ${v.reason}` };
  }

  #refuseExtended(kind: string): void {
    if (this.#discardUntilSync) return;
    // After an error the server ignores extended-protocol messages until Sync; Agate does the same.
    this.#discardUntilSync = true;
    this.#reply(() => [serialize.errorResponse({ severity: 'ERROR', code: SQLSTATE.featureNotSupported, message: `Agate does not support the extended query protocol yet (${kind}); use simple queries` })]);
  }

  #command(text: string): Command {
    return {
      type: 'Command', event_id: randomUUID(), time: nowMicros(), session_id: this.id, proxy_id: this.#deps.proxyId,
      sequence: ++this.#sequence, protocol: 'postgres', target: this.#target, identity: this.#identity!, text, parameters: [], attributes: {},
    };
  }

  /** Sends a proxy-made reply in order: after every upstream result the client is still owed. */
  #reply(reply: (tx: TxStatus) => Buffer[]): void {
    if (this.#pending.length === 0) this.#toClient(Buffer.concat(reply(this.#tx)));
    else this.#pending.push({ kind: 'local', reply });
  }

  // ---- upstream side -------------------------------------------------------------------------

  #attachUpstream(socket: Socket): void {
    this.#upstream = socket;
    const reader = new BackendFrameReader((f) => this.#onUpstreamFrame(f), this.#deps.maxMessageSize);
    socket.on('data', (chunk: Buffer) => {
      try {
        reader.push(chunk);
      } catch (err) {
        this.#log.error('invalid data from the target', { error: describeError(err) });
        void this.#fatal(SQLSTATE.protocolViolation, 'the target sent an invalid message; the session is closed', 'upstream protocol violation');
      }
    });
    socket.on('error', (err) => this.#log.warn('upstream socket error', { error: err.message }));
    socket.on('close', () => void this.#fatal(SQLSTATE.adminShutdown, 'the target closed the connection', 'upstream closed'));
    socket.resume();
  }

  #onUpstreamFrame(frame: BackendFrame): void {
    const head = this.#pending[0];
    if (head?.kind === 'upstream') head.recorder.observe(frame, this.#backendParser);
    this.#toClient(frame.raw);
    if (frame.code === 0x5a /* Z: ReadyForQuery */ && head?.kind === 'upstream') {
      this.#tx = String.fromCharCode(frame.raw[5]!) as TxStatus;
      this.#pending.shift();
      while (this.#pending[0]?.kind === 'local') {
        const local = this.#pending.shift() as Extract<Pending, { kind: 'local' }>;
        this.#toClient(Buffer.concat(local.reply(this.#tx)));
      }
    }
  }

  #toClient(bytes: Buffer): void {
    if (this.#client.write(bytes) || this.#upstream === undefined) return;
    this.#upstream.pause();
    this.#client.once('drain', () => this.#upstream?.resume());
  }

  #toUpstream(bytes: Buffer): void {
    if (this.#upstream!.write(bytes)) return;
    this.#upstreamBlocked = true;
    this.#client.pause();
    this.#upstream!.once('drain', () => {
      this.#upstreamBlocked = false;
      this.#resumeClient();
    });
  }

  /** Reads from the client again unless a message is in hand or the target is not draining. */
  #resumeClient(): void {
    if (!this.#processing && !this.#upstreamBlocked && !this.#closed) this.#client.resume();
  }

  // ---- recording and teardown ----------------------------------------------------------------

  /** Publishes in session order; resolves when durable. */
  #emit(event: AgateEvent): Promise<void> {
    const next = this.#emitChain.then(() => this.#deps.bus.publish(event));
    this.#emitChain = next.catch(() => undefined);
    return next;
  }

  async #emitLogged(event: AgateEvent): Promise<void> {
    try {
      await this.#emit(event);
    } catch (err) {
      this.#log.error('cannot record an event', { event_type: event.type, event_id: event.event_id, error: describeError(err) });
    }
  }

  async #recordAuthFailure(token: string, code: string, message: string): Promise<void> {
    const claimed = TokenVerifier.peek(token);
    await this.#emitLogged({
      type: 'AuthenticationFailed', event_id: randomUUID(), time: nowMicros(), session_id: this.id, proxy_id: this.#deps.proxyId,
      protocol: 'postgres', target: this.#target, client_address: this.#clientAddress(), reason_code: code, message,
      claimed_issuer: claimed.issuer, claimed_subject: claimed.subject,
    });
  }

  async #fatal(sqlstate: string, message: string, reason: string): Promise<void> {
    if (this.#closed) return;
    if (!this.#client.destroyed) this.#client.end(serialize.errorResponse({ severity: 'FATAL', code: sqlstate, message }));
    await this.#end(reason);
  }

  async #end(reason: string): Promise<void> {
    if (this.#closed) return;
    this.#closed = true;
    this.#upstream?.destroy();
    if (!this.#client.destroyed) this.#client.end();
    for (const p of this.#pending) if (p.kind === 'upstream') p.recorder.abandon('the session ended before the statement completed');
    if (this.#opened) {
      await this.#emitLogged({
        type: 'SessionClosed', event_id: randomUUID(), time: nowMicros(), session_id: this.id, reason,
        commands: this.#sequence, duration_us: nowMicros() - this.#startedAt,
      });
    }
    await this.#emitChain;
    this.#done();
  }

  #clientAddress(): string {
    return `${this.#client.remoteAddress ?? 'unknown'}:${this.#client.remotePort ?? 0}`;
  }
}

function pick(params: Record<string, string>, keys: readonly string[]): Record<string, string> {
  const out: Record<string, string> = {};
  for (const k of keys) if (params[k] !== undefined) out[k] = params[k];
  return out;
}


import { randomUUID } from 'node:crypto';
import { holdNotice } from '../hold-notice.js';
import { SessionEvents } from '../session-events.js';
import type { Socket } from 'node:net';
import type { SecureContext } from 'node:tls';
import type { Bus } from '../../../../core/src/bus/bus.js';
import { AgateError, AuthenticationError, ErrorCode, describeError } from '../../../../core/src/errors.js';
import { TokenVerifier } from '../../../../core/src/identity/oidc.js';
import type { Logger } from '../../../../core/src/log.js';
import { analyzeSql } from '../../../../core/src/sql/analyze.js';
import { nowMicros, type Command, type Identity, type Verdict } from '../../../../schemas/src/events.js';
import type { Column } from './backend-decode.js';
import { serialize } from './backend-serializer.js';
import { BackendFrameReader, type BackendFrame } from './backend-frames.js';
import { sendCancel, type CancelRegistry } from './cancel.js';
import { answerSslRequest } from './client-tls.js';
import { ExtendedState, parameterTexts } from './extended-state.js';
import { FrontendParser } from './frontend-parser.js';
import { MaskingError } from './masking/data-row.js';
import type { Masker } from './masking/masker.js';
import { maskSqlText } from './masking/sql-text.js';
import type { Bind, CancelRequest, Execute, FrontendMessage, FunctionCall, Parse, Query, StartupMessage } from './messages.js';
import { decodePassword } from './password-message.js';
import { describePortal, refusalParse, syncMessage } from './refusal.js';
import { MAX_EXPECTED, ReplyRouter } from './replies.js';
import { StatementResult, unranResponse, type RecordingOptions } from './result-recorder.js';
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
  /** Sample size and the audit mask set, applied to everything recorded. */
  recording: RecordingOptions;
  /** Every configured mask set by name (verdicts and targets name them). */
  maskers: ReadonlyMap<string, Masker>;
  cancel: CancelRegistry;
  /** Present when TLS termination is configured; SSLRequest is declined otherwise. */
  tls?: SecureContext;
}

/** What the proxy does with one command once its verdict is known. */
type Decision = { kind: 'run'; client: Masker | undefined } | { kind: 'refuse'; sqlstate: string; message: string };

/** SQLSTATEs Agate answers with. */
const SQLSTATE = {
  insufficientPrivilege: '42501',
  invalidPassword: '28P01',
  unknownTarget: '3D000',
  cannotConnect: '08001',
  protocolViolation: '08P01',
  systemError: '58000',
  adminShutdown: '57P01',
  invalidStatementName: '26000',
  invalidCursorName: '34000',
} as const;

/**
 * One client connection through the PostgreSQL proxy: authenticate the client by its OIDC token,
 * open the upstream session with Agate's own credential, then emit a command event for every
 * statement about to run (a simple Query's statements, an Execute with its bound parameters, a
 * FunctionCall), wait for its verdict, and forward or refuse it. Replies are followed by the
 * {@link ReplyRouter}, which records a Response per statement and applies masking.
 *
 * Flow control: while a message is in hand (a verdict pending) the client socket is paused, so
 * no further frame is read; each direction pauses its source while the destination's write
 * buffer is full; at most {@link MAX_EXPECTED} replies may be outstanding.
 */
export class PgSession {
  readonly id = randomUUID();
  #client: Socket;
  readonly #deps: PgSessionDeps;
  readonly #log: Logger;
  readonly #parser: FrontendParser;
  readonly #inbox: FrontendMessage[] = [];
  readonly #state = new ExtendedState();
  readonly #router: ReplyRouter;
  #upstream: Socket | undefined;
  #upstreamOut: Buffer[] = [];
  #clientOut: Buffer[] = [];
  #startup: StartupMessage | undefined;
  #identity: Identity | undefined;
  #target: UpstreamTarget | undefined;
  #targetName = '';
  #releaseCancelKey: (() => void) | undefined;
  #opened = false;
  #closed = false;
  #processing = false;
  #discardUntilSync = false;
  #upstreamBlocked = false;
  #repliesDrained: (() => void) | undefined;
  #sequence = 0;
  readonly #events: SessionEvents;
  readonly #startedAt = nowMicros();
  #done!: () => void;
  readonly finished = new Promise<void>((r) => (this.#done = r));

  constructor(client: Socket, deps: PgSessionDeps) {
    this.#client = client;
    this.#deps = deps;
    this.#log = deps.logger.child({ session_id: this.id });
    this.#events = new SessionEvents(deps.bus, this.#log);
    this.#parser = new FrontendParser((m) => this.#inbox.push(m), { maxMessageSize: deps.maxMessageSize });
    this.#router = new ReplyRouter((r) => void this.#events.emitLogged(r), () => this.#state.endTransaction(), () => {
      const set = this.#target?.maskClient;
      return set == null ? undefined : deps.maskers.get(set);
    });
    client.setNoDelay(true);
    this.#bindClient(client);
    client.on('close', () => void this.#end('client disconnected'));
  }

  /** No statement in flight: none being decided or forwarded, no reply outstanding (a drain closes idle sessions first). */
  get idle(): boolean {
    return !this.#processing && this.#inbox.length === 0 && this.#router.pending === 0;
  }

  /** Ends the session from the proxy's side (shutdown), telling the client why. */
  terminate(reason: string): void {
    void this.#fatal(SQLSTATE.adminShutdown, reason, reason);
  }

  // ---- client side ---------------------------------------------------------------------------

  #bindClient(socket: Socket): void {
    socket.on('data', (chunk: Buffer) => this.#onClientData(chunk));
    socket.on('error', (err) => this.#log.debug('client socket error', { error: err.message }));
  }

  #onClientData(chunk: Buffer): void {
    try {
      this.#parser.push(chunk);
    } catch (err) {
      const message = err instanceof AgateError ? err.message : 'unreadable message';
      return void this.#fatal(SQLSTATE.protocolViolation, `invalid message from the client: ${message}`, 'protocol violation');
    }
    if (this.#inbox.length > 0 && !this.#processing) void this.#drainInbox();
  }

  async #drainInbox(): Promise<void> {
    this.#processing = true;
    this.#client.pause();
    try {
      while (this.#inbox.length > 0 && !this.#closed) {
        if (this.#router.pending >= MAX_EXPECTED) await this.#repliesBelowLimit();
        await this.#handle(this.#inbox.shift()!);
      }
    } catch (err) {
      this.#log.error('session failed', { error: describeError(err) });
      await this.#fatal(SQLSTATE.systemError, 'Agate could not process the message; the session is closed', 'internal error');
    } finally {
      this.#flushUpstream();
      this.#processing = false;
      this.#resumeClient();
    }
  }

  async #handle(msg: FrontendMessage): Promise<void> {
    switch (msg.type) {
      case 'sslRequest':
        return this.#startTls();
      case 'gssEncRequest':
        this.#client.write(serialize.sslRefused()); // 'N': no GSSAPI encryption; the client goes on in clear
        return;
      case 'cancelRequest':
        return this.#cancel(msg);
      case 'startup':
        this.#startup = msg;
        this.#client.write(serialize.authenticationCleartextPassword());
        return;
      case 'password':
        if (this.#upstream === undefined) return this.#authenticate(decodePassword(msg));
    }
    if (this.#upstream === undefined) {
      return this.#fatal(SQLSTATE.protocolViolation, `unexpected ${msg.type} message before authentication`, 'protocol violation');
    }
    // After an error the server ignores extended-protocol messages until Sync; Agate does the same.
    if (this.#discardUntilSync && msg.type !== 'sync') return;
    switch (msg.type) {
      case 'query':
        return this.#onQuery(msg);
      case 'parse':
        return this.#onParse(msg);
      case 'bind':
        return this.#onBind(msg);
      case 'describe': {
        const portal = msg.kind === 'P' ? this.#state.portals.get(msg.name) : undefined;
        if (portal !== undefined) portal.described = true;
        this.#sendUpstream(msg.raw);
        this.#router.expect({ kind: 'describe', swallow: false, portal, statement: msg.kind === 'S' ? this.#state.statements.get(msg.name) : undefined });
        return;
      }
      case 'execute':
        return this.#onExecute(msg);
      case 'close':
        this.#router.expect({ kind: 'close', undo: this.#state.close(msg) });
        this.#sendUpstream(msg.raw);
        return;
      case 'sync':
        this.#discardUntilSync = false;
        this.#router.expect({ kind: 'sync' });
        this.#sendUpstream(msg.raw);
        return;
      case 'flush':
        this.#sendUpstream(msg.raw);
        return;
      case 'functionCall':
        return this.#onFunctionCall(msg);
      case 'copyData':
      case 'copyDone':
      case 'copyFail':
        // Part of a COPY FROM STDIN whose statement was already decided.
        if (msg.type === 'copyData') this.#router.copyTarget?.copyData(msg.raw, false);
        this.#sendUpstream(msg.raw);
        return;
      case 'terminate':
        this.#sendUpstream(msg.raw);
        this.#flushUpstream();
        this.#client.end();
        return;
      case 'password':
        return this.#fatal(SQLSTATE.protocolViolation, 'unexpected password message', 'protocol violation');
    }
  }

  // ---- statements ----------------------------------------------------------------------------

  async #onQuery(msg: Query): Promise<void> {
    // One statement needs no splitting (policy parses it anyway); a lone trailing ';' is common.
    const trimmed = msg.text.trim();
    const single = trimmed.endsWith(';') ? trimmed.slice(0, -1).trimEnd() : trimmed;
    let texts = [single];
    if (single.includes(';')) {
      const analysis = analyzeSql(msg.text);
      if (analysis.ok) texts = analysis.statements.map((s) => s.text);
    }
    if (texts.length === 1 && texts[0] === '') texts = [];
    const commands = texts.map((text) => this.#command(text, [], {}));
    // Every statement is decided (and recorded) before any of them runs.
    const decisions: Decision[] = [];
    for (const command of commands) decisions.push(await this.#decide(command));
    const refused = decisions.find((d) => d.kind === 'refuse');
    if (refused === undefined) {
      const results = commands.map((c, i) => this.#result(c, decisions[i] as Extract<Decision, { kind: 'run' }>));
      this.#router.expect({ kind: 'query', results, index: 0 });
      this.#sendUpstream(msg.raw);
      return;
    }
    for (const [i, command] of commands.entries()) {
      const d = decisions[i]!;
      const message = d.kind === 'refuse' ? d.message : 'not run: another statement in the same query was refused';
      void this.#events.emitLogged(unranResponse(command, 'refused', refused.sqlstate, message));
    }
    this.#refuse(refused.sqlstate, refused.message, true);
  }

  #onParse(msg: Parse): void {
    const outcome = this.#state.parse(msg);
    if (!outcome.ok) return this.#refuse(outcome.sqlstate, outcome.message, false);
    this.#router.expect({ kind: 'parse', undo: outcome.undo });
    this.#sendUpstream(msg.raw);
  }

  #onBind(msg: Bind): void {
    const undo = this.#state.bind(msg);
    if (typeof undo !== 'function') return this.#refuse(undo.sqlstate, undo.message, false);
    this.#router.expect({ kind: 'bind', undo });
    this.#sendUpstream(msg.raw);
  }

  async #onExecute(msg: Execute): Promise<void> {
    const portal = this.#state.portals.get(msg.portal);
    if (portal?.statement === undefined) {
      // The server would fail too; Agate never runs what it cannot name.
      const what = portal === undefined ? `portal "${msg.portal}" does not exist` : 'the portal was bound to a statement that does not exist';
      return this.#refuse(portal === undefined ? SQLSTATE.invalidCursorName : SQLSTATE.invalidStatementName, what, false);
    }
    const command = this.#command(portal.statement.text, parameterTexts(portal), msg.portal === '' ? {} : { portal: msg.portal });
    const decision = await this.#decide(command);
    if (decision.kind === 'refuse') {
      void this.#events.emitLogged(unranResponse(command, 'refused', decision.sqlstate, decision.message));
      return this.#refuse(decision.sqlstate, decision.message, false);
    }
    if (!portal.described) {
      // Column names are needed to mask and record the rows; the client did not ask, Agate does.
      portal.described = true;
      this.#router.expect({ kind: 'describe', portal, swallow: true });
      this.#sendUpstream(describePortal(msg.portal));
    }
    this.#router.expect({ kind: 'execute', result: this.#result(command, decision, () => portal.columns) });
    this.#sendUpstream(msg.raw);
  }

  async #onFunctionCall(msg: FunctionCall): Promise<void> {
    const params = msg.args.map((a) => (a === null ? null : '\\x' + a.toString('hex')));
    // Not SQL: policy cannot parse it, so only a rule that ignores statement kinds can allow it.
    const command = this.#command(`FunctionCall ${msg.oid}`, params, { message: 'FunctionCall' });
    const decision = await this.#decide(command);
    if (decision.kind === 'refuse') {
      void this.#events.emitLogged(unranResponse(command, 'refused', decision.sqlstate, decision.message));
      return this.#refuse(decision.sqlstate, decision.message, true);
    }
    this.#router.expect({ kind: 'call', result: this.#result(command, decision) });
    this.#sendUpstream(msg.raw);
  }

  /**
   * Refuses in order with the client's other messages (see refusal.ts). `simple` adds the Sync a
   * simple Query or FunctionCall implies; otherwise the client's own Sync ends the error.
   */
  #refuse(sqlstate: string, message: string, simple: boolean): void {
    this.#router.expect({ kind: 'refusal', error: serialize.errorResponse({ severity: 'ERROR', code: sqlstate, message }) });
    this.#sendUpstream(refusalParse());
    if (simple) {
      this.#router.expect({ kind: 'sync' });
      this.#sendUpstream(syncMessage());
    } else {
      this.#discardUntilSync = true;
    }
  }

  #command(text: string, parameters: (string | null)[], attributes: Record<string, string>): Command {
    const { audit, valueChars } = this.#deps.recording;
    // A credential must never reach the bus: SQL text and parameters are masked before recording.
    const masked = maskSqlText(text, audit);
    const params = parameters.map((p) => (p === null ? null : cut(audit.maskText(p).text, valueChars)));
    return {
      type: 'Command', event_id: randomUUID(), time: nowMicros(), session_id: this.id, proxy_id: this.#deps.proxyId,
      sequence: ++this.#sequence, protocol: 'postgres', target: this.#targetName, identity: this.#identity!, text: masked.text,
      parameters: params, attributes,
    };
  }

  #result(command: Command, decision: Extract<Decision, { kind: 'run' }>, columns?: () => readonly Column[] | undefined): StatementResult {
    return new StatementResult(command, this.#deps.recording, decision.client, columns);
  }

  /** Publishes the command (write-ahead) and waits for its verdict. */
  async #decide(command: Command): Promise<Decision> {
    const { bus, verdictTimeoutMs } = this.#deps;
    let outcome;
    try {
      outcome = await bus.requestVerdict(command, verdictTimeoutMs, { onHold: (v) => this.#notifyHold(v) });
    } catch (err) {
      this.#log.error('cannot record a command; refusing it', { command_id: command.event_id, error: describeError(err) });
      return { kind: 'refuse', sqlstate: SQLSTATE.systemError, message: 'Agate refused the statement: the audit log is unavailable, so it cannot be recorded' };
    }
    if (outcome.kind === 'timeout') {
      const reason = `no verdict within ${verdictTimeoutMs} ms; refused (fail closed)`;
      void this.#events.emitLogged({
        type: 'Verdict', event_id: randomUUID(), time: nowMicros(), session_id: this.id, command_id: command.event_id,
        decision: 'deny', rule_id: 'agate.verdict-deadline', reason, source: 'deadline', policy_revision: '', mask_set: null, approval_id: null, hold_expires_at: null,
      });
      return { kind: 'refuse', sqlstate: SQLSTATE.insufficientPrivilege, message: `Agate refused the statement: ${reason}` };
    }
    const v = outcome.verdict;
    if (v.decision === 'allow' || v.decision === 'mask') {
      const setName = v.decision === 'mask' ? v.mask_set : this.#target?.maskClient;
      if (setName == null) return { kind: 'run', client: undefined };
      const client = this.#deps.maskers.get(setName);
      if (client !== undefined) return { kind: 'run', client };
      return { kind: 'refuse', sqlstate: SQLSTATE.insufficientPrivilege, message: `Agate refused the statement: mask set "${setName}" is not configured, so results cannot be masked` };
    }
    const rule = v.rule_id === null ? 'the policy default' : `rule "${v.rule_id}"`;
    return { kind: 'refuse', sqlstate: SQLSTATE.insufficientPrivilege, message: `Agate refused the statement by ${rule}: ${v.reason}` };
  }

  /**
   * Tells the client its statement waits for a human. A NoticeResponse may arrive at any time
   * (protocol §55.2.6); it is written between whole frames, as upstream replies are flushed per chunk.
   */
  #notifyHold(v: Verdict): void {
    const { headline, secondsLeft } = holdNotice(v, 'statement');
    this.#client.write(serialize.noticeResponse({
      severity: 'NOTICE', code: '01000',
      message: headline,
      detail: `It runs once approved, or is refused in ${secondsLeft} s.`,
      hint: `An approver runs: agate approve ${v.approval_id}   (or agate deny ${v.approval_id})`,
    }));
  }

  // ---- startup: TLS, cancel, authentication --------------------------------------------------

  #startTls(): void {
    const secure = answerSslRequest(this.#client, this.#deps.tls);
    if (secure === undefined) return;
    this.#client = secure;
    this.#bindClient(secure);
    secure.on('close', () => void this.#end('client disconnected'));
  }

  async #cancel(msg: CancelRequest): Promise<void> {
    const route = this.#deps.cancel.lookup({ processId: msg.processId, secretKey: msg.secretKey });
    this.#client.end(); // the protocol sends no answer to a cancel request
    if (route !== undefined) await sendCancel(route);
    else this.#log.debug('cancel request with an unknown key ignored');
  }

  async #authenticate(token: string): Promise<void> {
    const startup = this.#startup;
    if (startup === undefined || this.#identity !== undefined) {
      return this.#fatal(SQLSTATE.protocolViolation, 'unexpected password message', 'protocol violation');
    }
    const targetName = startup.parameters.database ?? startup.parameters.user ?? '';
    this.#targetName = targetName;
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
    this.#target = target;
    try {
      await this.#events.emit({
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
      upstream = await connectUpstream(target, pick(startup.parameters, ['application_name', 'client_encoding', 'DateStyle', 'TimeZone', 'options']), this.#deps.maxMessageSize);
    } catch (err) {
      this.#log.warn('cannot open upstream session', { target: targetName, error: describeError(err) });
      const code = err instanceof AgateError ? err.code : 'UPSTREAM_UNREACHABLE';
      return this.#fatal(SQLSTATE.cannotConnect, `Agate cannot open a session on target "${targetName}" (${code})`, `upstream failed: ${code}`);
    }
    if (this.#closed) return void upstream.socket.destroy();
    this.#attachUpstream(upstream.socket);
    // The client never learns the upstream backend key; cancel routing maps Agate's own.
    const { key, release } = this.#deps.cancel.register({ host: target.host, port: target.port, upstream: { processId: upstream.ready.processId, secretKey: upstream.ready.secretKey } });
    this.#releaseCancelKey = release;
    const hello = [serialize.authenticationOk(), ...upstream.ready.parameters.map(([k, v]) => serialize.parameterStatus(k, v))];
    hello.push(serialize.backendKeyData(key.processId, key.secretKey), serialize.readyForQuery('I'));
    this.#client.write(Buffer.concat(hello));
  }

  // ---- upstream side -------------------------------------------------------------------------

  #attachUpstream(socket: Socket): void {
    this.#upstream = socket;
    const reader = new BackendFrameReader((f) => this.#onUpstreamFrame(f), this.#deps.maxMessageSize);
    socket.on('data', (chunk: Buffer) => {
      try {
        reader.push(chunk);
      } catch (err) {
        this.#clientOut = [];
        if (err instanceof MaskingError) {
          // Fail closed: the rows that could not be masked are never delivered.
          this.#log.error('masking failed; the response is refused', { error: describeError(err) });
          return void this.#fatal(SQLSTATE.systemError, 'Agate could not mask the result, so it was withheld; the session is closed', 'masking failed');
        }
        this.#log.error('invalid data from the target', { error: describeError(err) });
        return void this.#fatal(SQLSTATE.protocolViolation, 'the target sent an invalid message; the session is closed', 'upstream protocol violation');
      }
      this.#flushClient();
    });
    socket.on('error', (err) => this.#log.warn('upstream socket error', { error: err.message }));
    socket.on('close', () => void this.#fatal(SQLSTATE.adminShutdown, 'the target closed the connection', 'upstream closed'));
    socket.resume();
  }

  #onUpstreamFrame(frame: BackendFrame): void {
    const out = this.#router.route(frame);
    if (out !== undefined) this.#clientOut.push(out);
    if (this.#repliesDrained !== undefined && this.#router.pending < MAX_EXPECTED / 2) {
      this.#repliesDrained();
      this.#repliesDrained = undefined;
    }
  }

  #repliesBelowLimit(): Promise<void> {
    this.#flushUpstream();
    return new Promise((resolve) => (this.#repliesDrained = resolve));
  }

  /** Writes what one upstream chunk produced in one go; pauses the target while the client lags. */
  #flushClient(): void {
    if (this.#clientOut.length === 0) return;
    const bytes = this.#clientOut.length === 1 ? this.#clientOut[0]! : Buffer.concat(this.#clientOut);
    this.#clientOut = [];
    if (this.#client.write(bytes) || this.#upstream === undefined) return;
    this.#upstream.pause();
    this.#client.once('drain', () => this.#upstream?.resume());
  }

  #sendUpstream(bytes: Buffer): void {
    this.#upstreamOut.push(bytes);
  }

  /** Writes the messages gathered so far; pauses the client while the target lags. */
  #flushUpstream(): void {
    if (this.#upstreamOut.length === 0 || this.#upstream === undefined || this.#closed) return;
    const bytes = this.#upstreamOut.length === 1 ? this.#upstreamOut[0]! : Buffer.concat(this.#upstreamOut);
    this.#upstreamOut = [];
    if (this.#upstream.write(bytes)) return;
    this.#upstreamBlocked = true;
    this.#client.pause();
    this.#upstream.once('drain', () => {
      this.#upstreamBlocked = false;
      this.#resumeClient();
    });
  }

  /** Reads from the client again unless a message is in hand or the target is not draining. */
  #resumeClient(): void {
    if (!this.#processing && !this.#upstreamBlocked && !this.#closed) this.#client.resume();
  }

  // ---- recording and teardown ----------------------------------------------------------------

  async #recordAuthFailure(token: string, code: string, message: string): Promise<void> {
    const claimed = TokenVerifier.peek(token);
    await this.#events.emitLogged({
      type: 'AuthenticationFailed', event_id: randomUUID(), time: nowMicros(), session_id: this.id, proxy_id: this.#deps.proxyId,
      protocol: 'postgres', target: this.#targetName, client_address: this.#clientAddress(), reason_code: code, message,
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
    this.#releaseCancelKey?.();
    this.#upstream?.destroy();
    if (!this.#client.destroyed) this.#client.end();
    // A client that stops reading must not hold the socket open forever.
    setTimeout(() => this.#client.destroy(), 5_000).unref();
    this.#router.abandon('the session ended before the statement completed');
    this.#repliesDrained?.();
    if (this.#opened) {
      await this.#events.emitLogged({
        type: 'SessionClosed', event_id: randomUUID(), time: nowMicros(), session_id: this.id, reason,
        commands: this.#sequence, duration_us: nowMicros() - this.#startedAt,
      });
    }
    await this.#events.drained();
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

function cut(text: string, max: number): string {
  return text.length <= max ? text : `${text.slice(0, max)}…`;
}

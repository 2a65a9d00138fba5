import { randomUUID } from 'node:crypto';
import { holdNotice } from '../hold-notice.js';
import { clientMasker, decide, refusalText } from '../decide.js';
import { SessionEvents } from '../session-events.js';
import type { Socket } from 'node:net';
import { TLSSocket, type SecureContext } from 'node:tls';
import type { Bus } from '../../../../core/src/bus/bus.js';
import { withLease } from '../../../../core/src/bus/leases.js';
import { AgateError, AuthenticationError, ErrorCode, ProtocolError, describeError } from '../../../../core/src/errors.js';
import { TokenVerifier } from '../../../../core/src/identity/oidc.js';
import { abandonedMessage, type Abandoned, type LoginGuard, type PendingLogin } from '../../../../core/src/logins/pending.js';
import { sourceAddress } from '../../../../core/src/logins/throttle.js';
import type { Logger } from '../../../../core/src/log.js';
import { nowMicros, type Command, type Identity, type Verdict } from '../../../../schemas/src/events.js';
import { eventId } from '../../../../schemas/src/event-id.js';
import { decodeParameterStatus } from './backend-decode.js';
import { serialize } from './backend-serializer.js';
import { BackendFrameReader, type BackendFrame } from './backend-frames.js';
import { joinAdjacent } from '../byte-views.js';
import { sendCancel, type CancelAdmission, type CancelRegistry } from './cancel.js';
import { answerSslRequest } from './client-tls.js';
import { PgEngine, type Decision } from './engine.js';
import { FrontendParser } from './frontend-parser.js';
import { MaskingError } from './masking/data-row.js';
import { MASKED_VALUE, type Masker } from '../masking/masker.js';
import { hidesSecret } from './value-text.js';
import type { MaskedCopy } from './masking/derived-columns.js';
import { maskSqlText } from './masking/sql-text.js';
import { maskLiterals, type StatementSecrets } from './masking/statement-secrets.js';
import { BackendCode, type CancelRequest, type FrontendMessage, type PasswordMessage, type StartupMessage } from './messages.js';
import { decodePassword } from './password-message.js';
import { MAX_EXPECTED } from './replies.js';
import { StatementResult, unranResponse, type RecordingOptions } from './result-recorder.js';
import { connectUpstream, type UpstreamTarget } from './upstream.js';
import { onChunks, type UpstreamReads } from './upstream-reads.js';
import { checkClientEncoding, LexingSettings, parseStartupOptions, setStatement, upstreamStartup, type StartupSetting } from './server-settings.js';
import { FunctionNames } from './function-names.js';
import { CatalogLookup } from './catalog-lookup.js';
import { StoredCodeCatalog, storedCodeOf } from './stored-code.js';
import { STORED_CODE_ATTRIBUTE } from '../../../../core/src/sql/stored-code.js';
import { SqlAnalysisCache } from '../../../../core/src/sql/analyze.js';
import { sqlFacts, type SqlFacts } from '../../../../core/src/sql/facts.js';
import { PREPARED_ATTRIBUTE, preparedBodies } from '../../../../core/src/sql/prepared.js';
import { SQLSTATE } from './sqlstate.js';
import { endAtTokenExpiry } from '../token-expiry.js';

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
  /** The listener's connections still logging in, and the process's failed-login throttle. */
  logins: LoginGuard;
}


/** Startup parameters recorded in SessionOpened; a client may send many (all bounded by the frame cap). */
const MAX_STARTUP_ATTRIBUTES = 32;

/** The stored code a command names (STORED_CODE_ATTRIBUTE) is cut to this length in the record. */
const MAX_STORED_CODE_CHARS = 2_000;

/** How long replies to a departed client's last messages are awaited, to record them. */
const DRAIN_MS = 5_000;

/**
 * One client connection through the PostgreSQL proxy, the socket adapter around the
 * {@link PgEngine}: TLS, cancel requests, authenticating the client by its OIDC token, opening
 * the upstream session with Agate's own credential, then handing every later frontend message
 * and backend frame to the engine, which decides and records each statement (engine.ts), and
 * writing out the bytes it produces.
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
  /** The conversation after authentication, socket-free (engine.ts). */
  readonly #engine: PgEngine;
  /** Agate's own connection to the target, for catalog questions; made with the upstream session. */
  #catalog: CatalogLookup | undefined;
  /** Names the functions FunctionCall messages call by OID. */
  #functions: FunctionNames | undefined;
  /** The target's stored code (triggers, rules, views, functions…) a statement may run unseen. */
  #stored: StoredCodeCatalog | undefined;
  /** Statements read for the stored code they reach (only when the target has any). */
  readonly #storedReads = new SqlAnalysisCache(256);
  /** A COPY command's columns, for its StatementResult's sample. */
  readonly #copyShapes = new WeakMap<Command, NonNullable<StatementSecrets['copy']>>();
  #upstream: Socket | undefined;
  #upstreamOut: Buffer[] = [];
  #clientOut: Buffer[] = [];
  #startup: StartupMessage | undefined;
  #identity: Identity | undefined;
  #target: UpstreamTarget | undefined;
  #targetName = '';
  #releaseCancelKey: (() => void) | undefined;
  #opened = false;
  /**
   * Live: the client is connected. Draining: the client left with replies outstanding; they are
   * still routed and recorded (not delivered) until none is left, the target closes, or
   * {@link DRAIN_MS} pass. Closed: the session ended.
   */
  #phase: { kind: 'live' } | { kind: 'draining' } | { kind: 'closed' } = { kind: 'live' };
  get #closed(): boolean {
    return this.#phase.kind === 'closed';
  }
  get #draining(): boolean {
    return this.#phase.kind === 'draining';
  }
  #processing = false;
  /** The server's reports of the settings that change how it lexes SQL (server-settings.ts). */
  readonly #lexing = new LexingSettings();
  /** Set by a report Agate cannot follow; the session ends once the current chunk is routed. */
  #lexingLost: string | undefined;
  #upstreamBlocked = false;
  #sequence = 0;
  readonly #events: SessionEvents;
  readonly #startedAt = nowMicros();
  #stopExpiry: (() => void) | undefined;
  /** Pending until the client has logged in; its deadline and slot are the listener's (`logins`). */
  readonly #login: PendingLogin;
  #done!: () => void;
  readonly finished = new Promise<void>((r) => (this.#done = r));

  constructor(client: Socket, deps: PgSessionDeps, login: PendingLogin) {
    this.#client = client;
    this.#deps = deps;
    this.#login = login;
    login.onAbandon = (why) => void this.#abandonLogin(why);
    this.#log = deps.logger.child({ session_id: this.id });
    this.#events = new SessionEvents(deps.bus, this.#log);
    this.#parser = new FrontendParser((m) => this.#inbox.push(m), { maxMessageSize: deps.maxMessageSize });
    this.#engine = new PgEngine(
      {
        upstream: (bytes) => this.#sendUpstream(bytes),
        flushUpstream: () => this.#flushUpstream(),
        terminate: () => this.#client.end(),
        fatal: (sqlstate, message, reason) => this.#fatal(sqlstate, message, reason),
      },
      {
        sessionId: this.id,
        command: (text, parameters, attributes) => this.#command(text, parameters, attributes),
        copyShape: (command) => this.#copyShapes.get(command),
        decide: (command, notifyHold) => this.#decide(command, notifyHold),
        events: this.#events,
        recording: deps.recording,
        log: this.#log,
        functions: () => this.#functions,
        sessionMask: () => {
          const set = this.#target?.maskClient;
          return set == null ? undefined : deps.maskers.get(set);
        },
      },
    );
    client.setNoDelay(true);
    this.#bindClient(client);
    client.on('close', () => this.#onClientClose());
  }

  /** No statement in flight: none being decided or forwarded, no reply outstanding (a drain closes idle sessions first). */
  get idle(): boolean {
    return !this.#processing && this.#inbox.length === 0 && this.#engine.pending === 0;
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

  /**
   * The client is gone. What it sent before leaving (a Query and Terminate in one write, as psql
   * sends them) still runs on the server, which answers and, after Terminate, closes: those
   * replies are routed and recorded before the session ends, for at most {@link DRAIN_MS}.
   */
  #onClientClose(): void {
    if (this.#closed || this.#draining) return;
    const inHand = this.#processing || this.#inbox.length > 0 || this.#engine.pending > 0;
    if (this.#upstream === undefined || !inHand) return void this.#end('client disconnected');
    this.#phase = { kind: 'draining' };
    this.#flushUpstream();
    setTimeout(() => void this.#end('client disconnected'), DRAIN_MS).unref();
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
        // Most messages are handled at once; only one that waits (a verdict) is awaited.
        const waiting = this.#handle(this.#inbox.shift()!);
        if (waiting !== undefined) await waiting;
      }
    } catch (err) {
      this.#log.error('session failed', { error: describeError(err) });
      await this.#fatal(SQLSTATE.systemError, 'Agate could not process the message; the session is closed', 'internal error');
    } finally {
      this.#flushUpstream();
      this.#processing = false;
      this.#resumeClient();
      if (this.#draining && this.#engine.pending === 0) void this.#end('client disconnected');
    }
  }

  #handle(msg: FrontendMessage): Promise<void> | undefined {
    switch (msg.type) {
      case 'sslRequest':
        this.#startTls();
        return;
      case 'gssEncRequest':
        // Inside TLS the server takes no further encryption request; neither does Agate.
        if (this.#client instanceof TLSSocket) return this.#fatal(SQLSTATE.protocolViolation, 'GSSENCRequest after TLS was negotiated', 'protocol violation');
        this.#client.write(serialize.sslRefused()); // 'N': no GSSAPI encryption; the client goes on in clear
        return;
      case 'cancelRequest':
        return this.#cancel(msg);
      case 'startup': {
        this.#startup = msg;
        this.#login.progressed();
        // Agate speaks protocol 3.0 to both sides and takes no protocol option: a client asking
        // for a newer minor (3.2: longer cancel keys) or for `_pq_.` options is told so before
        // anything else, as the server would tell it, rather than left to assume them granted.
        const options = Object.keys(msg.parameters).filter((name) => name.startsWith('_pq_.'));
        if ((msg.protocolVersion & 0xffff) !== 0 || options.length > 0) this.#client.write(serialize.negotiateProtocolVersion(0, options));
        this.#client.write(serialize.authenticationCleartextPassword());
        return;
      }
      case 'password':
        if (this.#upstream === undefined) return this.#onPassword(msg);
    }
    if (this.#upstream === undefined) {
      return this.#fatal(SQLSTATE.protocolViolation, `unexpected ${msg.type} message before authentication`, 'protocol violation');
    }
    return this.#engine.message(msg);
  }

  #command(text: string, parameters: (string | null)[], attributes: Record<string, string>): Command {
    const { audit, valueChars } = this.#deps.recording;
    // A credential must never reach the bus: SQL text and parameters are masked before recording,
    // including what the statement assigns to a masked column or passes to set_config.
    const secrets = this.#deps.recording.readings.secrets(text, audit);
    const masked = maskSqlText(secrets === undefined ? text : maskLiterals(text, secrets.literals), audit);
    const params = parameters.map((p, i) => (p === null ? null : secrets?.params.has(i + 1) || hidesSecret(p, audit) ? MASKED_VALUE : cut(audit.maskText(p).text, valueChars)));
    const command: Command = {
      type: 'Command', event_id: eventId(), time: nowMicros(), session_id: this.id, proxy_id: this.#deps.proxyId,
      sequence: ++this.#sequence, protocol: 'postgres', target: this.#targetName, identity: this.#identity!, text: masked.text,
      parameters: params, attributes,
    };
    if (secrets?.copy !== undefined) this.#copyShapes.set(command, secrets.copy);
    return command;
  }


  /** Publishes the command (write-ahead) and waits for its verdict (decide.ts); maps it to SQLSTATEs. */
  async #decide(command: Command, notifyHold = true): Promise<Decision> {
    const { bus, verdictTimeoutMs, maskers } = this.#deps;
    await this.#markStoredCode(command);
    const d = await decide(command, { bus, verdictTimeoutMs, events: this.#events, log: this.#log }, { onHold: (v) => notifyHold && this.#notifyHold(v) });
    if (d.kind === 'run') {
      const mask = clientMasker(d, maskers, this.#target?.maskClient);
      // A masked client may not copy a masked column where it would read it back unmasked.
      const copied = mask.ok && mask.masker !== undefined ? this.#deps.recording.readings.copies(command.text, mask.masker) : undefined;
      if (mask.ok && copied === undefined) return { kind: 'run', client: mask.masker };
      if (mask.ok) return { kind: 'refuse', sqlstate: SQLSTATE.insufficientPrivilege, message: maskedCopyRefusal(copied!, mask.masker!.name) };
      return { kind: 'refuse', sqlstate: SQLSTATE.insufficientPrivilege, message: `Agate refused the statement: mask set "${mask.missing}" is not configured, so results cannot be masked` };
    }
    const sqlstate = d.kind === 'unrecorded' ? SQLSTATE.systemError : SQLSTATE.insufficientPrivilege;
    return { kind: 'refuse', sqlstate, message: refusalText(d, 'statement') };
  }

  /**
   * Names, in the command, the stored code it would run that its text does not show (a trigger,
   * rule, view, policy, default, constraint or index expression of a relation it touches, an
   * event trigger its DDL fires, a function, operator or cast made earlier): policy decides it as
   * the guarded effect `stored`. A catalog Agate cannot read counts as such code (fail closed).
   * Texts that do not parse or cannot be analysed are left to policy, which refuses them.
   */
  async #markStoredCode(command: Command): Promise<void> {
    if (this.#stored === undefined) return;
    let code;
    try {
      code = await this.#stored.read();
    } catch (err) {
      command.attributes[STORED_CODE_ATTRIBUTE] = `unknown: the catalog could not be read (${describeError(err)})`;
      return;
    }
    if (code.empty) return;
    const statements: SqlFacts[] = [];
    const analysis = this.#storedReads.analyzeShape(command.text);
    const prepared = command.attributes[PREPARED_ATTRIBUTE];
    const bodies = prepared === undefined ? [] : (preparedBodies(this.#storedReads.analyze(prepared)) ?? []);
    for (const s of [...(analysis.ok ? analysis.statements : []), ...bodies]) {
      const f = sqlFacts(s);
      if (f.ok) statements.push(f.facts);
    }
    // DDL changes what is stored: the next statement reads the catalog again.
    if (statements.some((f) => f.effects.has('ddl') || f.effects.has('code') || f.effects.has('privilege'))) this.#stored.invalidate();
    const found = storedCodeOf(code, statements);
    if (found.length > 0) command.attributes[STORED_CODE_ATTRIBUTE] = cut(found.join('; '), MAX_STORED_CODE_CHARS);
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
    secure.on('close', () => this.#onClientClose());
  }

  async #cancel(msg: CancelRequest): Promise<void> {
    const route = this.#deps.cancel.lookup({ processId: msg.processId, secretKey: msg.secretKey });
    this.#client.end(); // the protocol sends no answer to a cancel request
    if (route === undefined) {
      // A key is the only proof a cancel carries: one Agate never issued (or whose session ended)
      // is a guess at another session's, recorded and counted against the address like a bad token.
      return this.#recordAuthFailure('', ErrorCode.AUTH_CANCEL_KEY_UNKNOWN, `a CancelRequest carried a key Agate issued to no open session (process id ${msg.processId >>> 0}); nothing was cancelled`);
    }
    const admission = (await route.admit?.(this.#clientAddress())) ?? { forward: true, done: () => undefined };
    if (!admission.forward) return;
    await sendCancel(route);
    admission.done();
  }

  /**
   * A CancelRequest for this session, arriving on a connection of its own: recorded in this
   * session (it acts on its running statement) and decided as the call it amounts to, before it
   * is forwarded.
   */
  async #admitCancel(from: string): Promise<CancelAdmission> {
    const command = this.#command('SELECT pg_cancel_backend(pg_backend_pid())', [], { message: 'CancelRequest', from });
    // No hold notice: the cancelling connection cannot take one, and this session is busy.
    const decision = await this.#decide(command, false);
    if (decision.kind === 'refuse') {
      this.#engine.respond(unranResponse(command, 'refused', decision.sqlstate, decision.message));
      return { forward: false };
    }
    return { forward: true, done: () => this.#engine.respond(new StatementResult(command, this.#deps.recording, undefined).response({ status: 'ok', command_tag: null, rows: 0 })) };
  }

  /**
   * A 'p' message before login: the token as a cleartext password. A body that is not one
   * NUL-terminated string (an embedded NUL, a SASL message) is a failed login like a bad token:
   * answered 08P01, recorded, and counted against the address.
   */
  async #onPassword(msg: PasswordMessage): Promise<void> {
    let token: string;
    try {
      token = decodePassword(msg);
    } catch (err) {
      if (!(err instanceof ProtocolError)) throw err;
      this.#targetName = this.#startup?.parameters.database ?? this.#startup?.parameters.user ?? '';
      await this.#recordAuthFailure('', err.code, `${err.message} (expected the OIDC token as a cleartext password)`);
      return this.#fatal(SQLSTATE.protocolViolation, `Agate authentication failed: ${err.message}; send the OIDC token as the password`, 'authentication failed (malformed password message)');
    }
    return this.#authenticate(token);
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
      // An issuer that is down (retriable) is not the client's failure: it counts toward no throttle.
      await this.#recordAuthFailure(token, e.code, e.message, !e.retriable);
      return this.#fatal(SQLSTATE.invalidPassword, `Agate authentication failed: ${e.message}`, `authentication failed (${e.code})`);
    }
    const target = this.#deps.resolveTarget(targetName);
    if (target === undefined) {
      await this.#recordAuthFailure(token, ErrorCode.TARGET_UNKNOWN, `no target named "${targetName}"`);
      return this.#fatal(SQLSTATE.unknownTarget, `Agate has no target named "${targetName}" (connect with dbname=<target name>)`, 'unknown target');
    }
    if (this.#closed) return;
    // Logged in: from here the connection counts as a session, not against the pending cap.
    this.#login.done();
    this.#target = target;
    const max = this.#deps.maxMessageSize;
    this.#catalog = new CatalogLookup(async () => (await connectUpstream(target, upstreamStartup({ application_name: 'agate catalog lookup' }, 'UTF8', []), max)).socket, max);
    this.#functions = new FunctionNames(this.#catalog);
    this.#stored = new StoredCodeCatalog(this.#catalog);
    // Read while the session opens, so its first statement does not wait for the connection.
    this.#stored.refresh();
    try {
      await this.#events.emit({
        type: 'SessionOpened', event_id: randomUUID(), time: nowMicros(), session_id: this.id, proxy_id: this.#deps.proxyId,
        protocol: 'postgres', target: targetName, client_address: this.#clientAddress(), identity: this.#identity,
        attributes: withLease(this.#startupAttributes(startup), this.#deps.bus),
      });
      this.#opened = true;
      // The token vouches for the agent until its exp: the session ends then, a statement in
      // flight included, as an administrator's termination ends it.
      this.#stopExpiry = endAtTokenExpiry(this.#deps.verifier, this.#identity!, (why) => void this.#fatal(SQLSTATE.adminShutdown, `Agate ended the session: ${why}`, 'token expired'));
    } catch (err) {
      this.#log.error('cannot record session start; refusing the session', { error: describeError(err) });
      return this.#fatal(SQLSTATE.systemError, 'Agate cannot record this session (audit log unavailable); refused', 'audit unavailable');
    }
    const settings = await this.#decideStartup(startup.parameters);
    if (settings === undefined) return;
    let upstream;
    try {
      upstream = await connectUpstream(target, upstreamStartup(startup.parameters, settings.clientEncoding, settings.options.map((o) => o.setting)), this.#deps.maxMessageSize, { reuseReads: true });
    } catch (err) {
      this.#log.warn('cannot open upstream session', { target: targetName, error: describeError(err) });
      const code = err instanceof AgateError ? err.code : 'UPSTREAM_UNREACHABLE';
      return this.#fatal(SQLSTATE.cannotConnect, `Agate cannot open a session on target "${targetName}" (${code})`, `upstream failed: ${code}`);
    }
    if (this.#closed) return void upstream.socket.destroy();
    for (const [name, value] of upstream.ready.parameters) this.#lexingLost ??= this.#lexing.observe(name, value);
    const missing = this.#lexing.missing();
    if (this.#lexingLost !== undefined || missing.length > 0) {
      upstream.socket.destroy();
      const why = this.#lexingLost ?? `the server did not report ${missing.join(', ')}`;
      return this.#fatal(SQLSTATE.featureNotSupported, `Agate cannot follow how target "${targetName}" lexes SQL: ${why}`, `lexing settings: ${why}`);
    }
    for (const o of settings.options) void this.#events.emitLogged(new StatementResult(o.command, this.#deps.recording, undefined).response({ status: 'ok', command_tag: 'SET' }));
    this.#attachUpstream(upstream.socket, upstream.reads);
    // The client never learns the upstream backend key; cancel routing maps Agate's own.
    const { key, release } = this.#deps.cancel.register({ host: target.host, port: target.port, upstream: { processId: upstream.ready.processId, secretKey: upstream.ready.secretKey }, admit: (from) => this.#admitCancel(from) });
    this.#releaseCancelKey = release;
    const hello = [serialize.authenticationOk(), ...upstream.ready.parameters.map(([k, v]) => serialize.parameterStatus(k, v))];
    hello.push(serialize.backendKeyData(key.processId, key.secretKey), serialize.readyForQuery('I'));
    this.#client.write(Buffer.concat(hello));
  }

  /** The startup parameters SessionOpened records; `options` may carry any value, so it is masked. */
  /**
   * Decides the client's startup settings before the upstream session opens: its client_encoding
   * must be one Agate reads exactly, and every `-c name=value` of `options` is decided (and
   * recorded) as the `SET` it amounts to, so policy and the lexing check see it. Undefined when
   * the session was refused.
   */
  async #decideStartup(params: Record<string, string>): Promise<{ clientEncoding: string; options: { setting: StartupSetting; command: Command }[] } | undefined> {
    const encoding = checkClientEncoding(params.client_encoding);
    if (!encoding.ok) {
      await this.#fatal(SQLSTATE.featureNotSupported, `Agate refused the session: ${encoding.reason}`, `startup refused: ${encoding.reason}`);
      return undefined;
    }
    const parsed = parseStartupOptions(params.options ?? '');
    if (!parsed.ok) {
      await this.#fatal(SQLSTATE.featureNotSupported, `Agate refused the session: ${parsed.error}`, `startup refused: ${parsed.error}`);
      return undefined;
    }
    const options: { setting: StartupSetting; command: Command }[] = [];
    for (const setting of parsed.settings) {
      const command = this.#command(setStatement(setting), [], { message: 'StartupOption', setting: setting.name, value: setting.value });
      // No hold notice: a client still authenticating cannot take a NoticeResponse.
      const decision = await this.#decide(command, false);
      if (decision.kind === 'refuse') {
        this.#engine.respond(unranResponse(command, 'refused', decision.sqlstate, decision.message));
        await this.#fatal(decision.sqlstate, `${decision.message} (startup option -c ${setting.name}=${setting.value}); the session is refused`, `startup option ${setting.name} refused`);
        return undefined;
      }
      options.push({ setting, command });
    }
    return { clientEncoding: encoding.clientEncoding, options };
  }

  // ---- upstream side -------------------------------------------------------------------------

  #attachUpstream(socket: Socket, reads: UpstreamReads | undefined): void {
    this.#upstream = socket;
    const reader = new BackendFrameReader((f) => this.#onUpstreamFrame(f), this.#deps.maxMessageSize);
    onChunks(socket, reads, (chunk: Buffer) => {
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
      if (this.#lexingLost !== undefined) {
        // Fail closed: every later statement could be read differently by the server.
        this.#log.warn('the target changed how it lexes SQL; the session is closed', { reason: this.#lexingLost });
        void this.#fatal(SQLSTATE.featureNotSupported, `Agate closed the session: ${this.#lexingLost}`, `lexing setting changed: ${this.#lexingLost}`);
      }
    });
    socket.on('error', (err) => this.#log.warn('upstream socket error', { error: err.message }));
    socket.on('close', () => {
      if (this.#draining) return void this.#end('client disconnected');
      void this.#fatal(SQLSTATE.adminShutdown, 'the target closed the connection', 'upstream closed');
    });
    socket.resume();
  }

  #onUpstreamFrame(frame: BackendFrame): void {
    if (this.#closed) return;
    if (frame.code === BackendCode.ParameterStatus) this.#onParameterStatus(frame.raw);
    const out = this.#engine.route(frame);
    if (out !== undefined) this.#clientOut.push(out);
    if (this.#draining && this.#engine.pending === 0) void this.#end('client disconnected');
  }

  #onParameterStatus(raw: Buffer): void {
    const { name, value } = decodeParameterStatus(raw);
    this.#lexingLost ??= this.#lexing.observe(name, value);
  }

  /**
   * Writes what one upstream chunk produced in one go (one writev); pauses the target while the
   * client lags. Frames passed on unchanged are views of the chunk and leave as one view of it, so
   * a streamed result is not copied into a new buffer per chunk, garbage until the next GC.
   */
  #flushClient(): void {
    if (this.#clientOut.length === 0) return;
    if (this.#draining || this.#client.destroyed) return void (this.#clientOut = []); // recorded, with no one to deliver to
    const pieces = joinAdjacent(this.#clientOut);
    this.#clientOut = [];
    let room = true;
    if (pieces.length > 1) this.#client.cork();
    for (const piece of pieces) room = this.#client.write(piece);
    if (pieces.length > 1) this.#client.uncork();
    if (room || this.#upstream === undefined) return;
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

  /** The listener closed the connection before it logged in (deadline or room for another). */
  async #abandonLogin(why: Abandoned): Promise<void> {
    if (this.#closed) return;
    const message = abandonedMessage(why, this.#deps.logins.pending.options);
    // Enqueued first: the session's end waits for its events to drain, this one included.
    const recorded = this.#recordAuthFailure('', why === 'timeout' ? ErrorCode.AUTH_TIMEOUT : ErrorCode.AUTH_EVICTED, message);
    if (why === 'timeout') await this.#fatal(SQLSTATE.queryCanceled, `canceling authentication due to timeout: ${message}`, 'login timeout');
    else await this.#fatal(SQLSTATE.tooManyConnections, `Agate closed the connection: ${message}`, 'login evicted');
    await recorded;
  }

  /** Records a failed login and, unless `counts` is false, counts it against the client's address (`logins.throttle`). */
  async #recordAuthFailure(token: string, code: string, message: string, counts = true): Promise<void> {
    if (counts) this.#deps.logins.throttle.failed(sourceAddress(this.#client.remoteAddress));
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
    this.#phase = { kind: 'closed' };
    this.#stopExpiry?.();
    this.#login.done();
    this.#releaseCancelKey?.();
    this.#upstream?.destroy();
    this.#catalog?.close();
    if (!this.#client.destroyed) this.#client.end();
    // A client that stops reading must not hold the socket open forever.
    setTimeout(() => this.#client.destroy(), 5_000).unref();
    this.#engine.close('the session ended before the statement completed');
    if (this.#opened) {
      await this.#events.emitLogged({
        type: 'SessionClosed', event_id: randomUUID(), time: nowMicros(), session_id: this.id, reason,
        commands: this.#sequence, duration_us: nowMicros() - this.#startedAt,
      });
    }
    await this.#events.drained();
    this.#done();
  }

  /**
   * Every startup parameter but the target's name, masked like any recorded value: a parameter
   * whose name a column rule matches is masked whole, the rest by the detectors (an
   * `application_name` or `options` can carry a token or a connection string).
   */
  #startupAttributes(startup: StartupMessage): Record<string, string> {
    const { audit, valueChars } = this.#deps.recording;
    const out: Record<string, string> = {};
    for (const [name, value] of Object.entries(startup.parameters).slice(0, MAX_STARTUP_ATTRIBUTES)) {
      if (name === 'database') continue;
      out[cut(name, 64)] = audit.masksColumn(name) ? MASKED_VALUE : cut(audit.maskText(value).text, valueChars);
    }
    return out;
  }

  #clientAddress(): string {
    return `${this.#client.remoteAddress ?? 'unknown'}:${this.#client.remotePort ?? 0}`;
  }
}


function cut(text: string, max: number): string {
  return text.length <= max ? text : `${text.slice(0, max)}…`;
}

/** Why a client that mask set `maskSet` masks may not run a statement (derived-columns.ts). */
function maskedCopyRefusal(copy: MaskedCopy, maskSet: string): string {
  switch (copy.kind) {
    case 'copies-column':
      return `Agate refused the statement: its ${copy.statement} copies a column that mask set "${maskSet}" masks for this client somewhere the mask cannot follow`;
    case 'takes-rows':
      return `Agate refused the statement: its ${copy.statement} defines a function that column notation calls on a whole row (v.f is f(v)), which could keep a column that mask set "${maskSet}" masks for this client somewhere the mask cannot follow`;
    case 'shadows-builtins':
      return `Agate refused the statement: its ${copy.statement} puts a schema before pg_catalog in search_path (or changes a setting its text does not name), where a function could pass for a built-in and keep a column that mask set "${maskSet}" masks for this client`;
  }
}

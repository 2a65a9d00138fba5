import { randomUUID } from 'node:crypto';
import { holdNotice } from '../hold-notice.js';
import { clientMasker, decide, refusalText } from '../decide.js';
import { SessionEvents } from '../session-events.js';
import type { Socket } from 'node:net';
import type { SecureContext } from 'node:tls';
import type { Bus } from '../../../../core/src/bus/bus.js';
import { AgateError, AuthenticationError, ErrorCode, describeError } from '../../../../core/src/errors.js';
import { TokenVerifier } from '../../../../core/src/identity/oidc.js';
import type { Logger } from '../../../../core/src/log.js';
import { analyzeSql } from '../../../../core/src/sql/analyze.js';
import { nowMicros, type Command, type Identity, type Response, type Verdict } from '../../../../schemas/src/events.js';
import { decodeParameterStatus, type Column } from './backend-decode.js';
import { serialize } from './backend-serializer.js';
import { BackendFrameReader, type BackendFrame } from './backend-frames.js';
import { sendCancel, type CancelAdmission, type CancelRegistry } from './cancel.js';
import { answerSslRequest } from './client-tls.js';
import { ExtendedState, parameterTexts } from './extended-state.js';
import { FrontendParser } from './frontend-parser.js';
import { MaskingError } from './masking/data-row.js';
import type { Masker } from './masking/masker.js';
import { maskSqlText } from './masking/sql-text.js';
import type { Bind, CancelRequest, Close, Describe, Execute, FrontendMessage, FunctionCall, Parse, Query, StartupMessage } from './messages.js';
import { SETTLED_ATTRIBUTE } from '../../../../schemas/src/events.js';
import { decodePassword } from './password-message.js';
import { describePortal, refusalParse, syncMessage } from './refusal.js';
import { MAX_EXPECTED, ReplyRouter, type FailedMessage } from './replies.js';
import { StatementResult, unranResponse, type Outcome, type RecordingOptions } from './result-recorder.js';
import { connectUpstream, type UpstreamTarget } from './upstream.js';
import { checkClientEncoding, LexingSettings, parseStartupOptions, setStatement, upstreamStartup, type StartupSetting } from './server-settings.js';
import { isLexingSensitive } from '../../../../core/src/sql/lexing.js';
import { PREPARED_ATTRIBUTE, PREPARED_SEPARATOR } from '../../../../core/src/sql/prepared.js';
import { mayTouchPrepared, SqlPreparedStatements } from './sql-prepared.js';
import { FunctionNames, functionCallText } from './function-names.js';
import { SkippedBatch } from './skipped-batch.js';

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

/** How long replies to a departed client's last messages are awaited, to record them. */
const DRAIN_MS = 5_000;

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
  undefinedFunction: '42883',
  featureNotSupported: '0A000',
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
  /** A portal dropped while suspended ends its statement: recorded with the rows it fetched. */
  readonly #state = new ExtendedState((portal) => portal.run !== undefined && this.#respond(portal.run.unfinished()));
  /** The client's view of a batch the server is ignoring after an error (until Sync). */
  readonly #skippedBatch = new SkippedBatch();
  /** SQL-level PREPAREd statements, so EXECUTE is decided as what it runs. */
  readonly #prepared = new SqlPreparedStatements();
  /** Names the functions FunctionCall messages call by OID; opened with the upstream session. */
  #functions: FunctionNames | undefined;
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
  /** The client left with replies outstanding: they are still recorded before the session ends. */
  #draining = false;
  #processing = false;
  #discardUntilSync = false;
  /** The server's reports of the settings that change how it lexes SQL (server-settings.ts). */
  readonly #lexing = new LexingSettings();
  /** Set by a report Agate cannot follow; the session ends once the current chunk is routed. */
  #lexingLost: string | undefined;
  /**
   * An Execute was forwarded with no Sync after it yet. The server reports setting changes
   * (ParameterStatus) only at ReadyForQuery, so until a Sync, a statement that ran may have
   * changed how later text is lexed without Agate being told.
   */
  #ranSinceSync = false;
  #readyWaiter: (() => void) | undefined;
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
    this.#router = new ReplyRouter({
      emit: (r) => this.#respond(r),
      onIdle: () => this.#state.endTransaction(),
      sessionMask: () => {
        const set = this.#target?.maskClient;
        return set == null ? undefined : deps.maskers.get(set);
      },
      recordFailed: (failed, outcome) => this.#recordFailed(failed, outcome),
    });
    client.setNoDelay(true);
    this.#bindClient(client);
    client.on('close', () => this.#onClientClose());
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
    const inHand = this.#processing || this.#inbox.length > 0 || this.#router.pending > 0;
    if (this.#upstream === undefined || !inHand) return void this.#end('client disconnected');
    this.#draining = true;
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
      if (this.#draining && this.#router.pending === 0) void this.#end('client disconnected');
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
    if (this.#router.skipping && (msg.type === 'parse' || msg.type === 'bind' || msg.type === 'execute' || msg.type === 'describe' || msg.type === 'close')) {
      return this.#whileSkipping(msg);
    }
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
        this.#skippedBatch.clear();
        this.#ranSinceSync = false;
        this.#router.expect({ kind: 'sync' });
        this.#sendUpstream(msg.raw);
        return;
      case 'flush':
        // The client waits for what it sent so far; a later message may wait on a verdict.
        this.#sendUpstream(msg.raw);
        this.#flushUpstream();
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
    const unsure = await this.#lexingSettled(msg.text);
    if (this.#closed) return;
    if (unsure !== undefined) {
      const command = this.#command(msg.text, [], {});
      this.#recordRefusal(command, SQLSTATE.featureNotSupported, unsure);
      return this.#refuse(SQLSTATE.featureNotSupported, unsure, true);
    }
    // A Query ends with ReadyForQuery, which carries the reports of everything before it.
    this.#ranSinceSync = false;
    // One statement needs no splitting (policy parses it anyway); a lone trailing ';' is common.
    const trimmed = msg.text.trim();
    const single = trimmed.endsWith(';') ? trimmed.slice(0, -1).trimEnd() : trimmed;
    let texts = [single];
    let nodes: (Record<string, unknown> | undefined)[] = [];
    if (single.includes(';') || mayTouchPrepared(single)) {
      const analysis = analyzeSql(msg.text);
      if (analysis.ok) {
        texts = analysis.statements.map((s) => s.text);
        nodes = analysis.statements.map((s) => s.node);
      }
    }
    if (texts.length === 1 && texts[0] === '') texts = [];
    const { commands, unknown } = this.#statementCommands(texts, nodes, {});
    if (unknown !== undefined) return this.#refuseUnknownPrepared(commands, unknown, true);
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
      this.#respond(unranResponse(command, 'refused', refused.sqlstate, message));
    }
    this.#refuse(refused.sqlstate, refused.message, true);
  }

  async #onParse(msg: Parse): Promise<void> {
    // The server lexes the text now, at Parse, with the settings in force now.
    const unsure = await this.#lexingSettled(msg.query);
    if (this.#closed) return;
    if (unsure !== undefined) {
      const command = this.#command(msg.query, [], { message: 'Parse' });
      this.#recordRefusal(command, SQLSTATE.featureNotSupported, unsure);
      return this.#refuse(SQLSTATE.featureNotSupported, unsure, false);
    }
    const outcome = this.#state.parse(msg);
    if (!outcome.ok) return this.#refuse(outcome.sqlstate, outcome.message, false);
    this.#router.expect({ kind: 'parse', undo: outcome.undo, statement: outcome.statement, name: msg.name });
    this.#sendUpstream(msg.raw);
  }

  #onBind(msg: Bind): void {
    const bound = this.#state.bind(msg);
    if (!bound.ok) return this.#refuse(bound.sqlstate, bound.message, false);
    this.#router.expect({ kind: 'bind', undo: bound.undo, portal: bound.portal, name: msg.portal });
    this.#sendUpstream(msg.raw);
  }

  async #onExecute(msg: Execute): Promise<void> {
    const portal = this.#state.portals.get(msg.portal);
    if (portal?.statement === undefined) {
      // The server would fail too; Agate never runs what it cannot name.
      const what = portal === undefined ? `portal "${msg.portal}" does not exist` : 'the portal was bound to a statement that does not exist';
      return this.#refuse(portal === undefined ? SQLSTATE.invalidCursorName : SQLSTATE.invalidStatementName, what, false);
    }
    if (portal.run !== undefined) {
      // The portal was suspended at a row limit: this Execute fetches more of the statement
      // decided at its first Execute, recorded as one more fetch of the same command.
      this.#router.expect({ kind: 'execute', result: portal.run, portal });
      this.#ranSinceSync = true;
      this.#sendUpstream(msg.raw);
      return;
    }
    const text = portal.statement.text;
    // A Parse holds at most one statement; it may be a PREPARE or EXECUTE of SQL level.
    const analysis = mayTouchPrepared(text) ? analyzeSql(text) : undefined;
    const node = analysis?.ok === true && analysis.statements.length === 1 ? analysis.statements[0]!.node : undefined;
    const { commands, unknown } = this.#statementCommands([text], [node], msg.portal === '' ? {} : { portal: msg.portal }, parameterTexts(portal));
    const command = commands[0]!;
    if (unknown !== undefined) return this.#refuseUnknownPrepared(commands, unknown, false);
    const decision = await this.#decide(command);
    if (decision.kind === 'refuse') {
      this.#respond(unranResponse(command, 'refused', decision.sqlstate, decision.message));
      return this.#refuse(decision.sqlstate, decision.message, false);
    }
    if (!portal.described) {
      // Column names are needed to mask and record the rows; the client did not ask, Agate does.
      portal.described = true;
      this.#router.expect({ kind: 'describe', portal, swallow: true });
      this.#sendUpstream(describePortal(msg.portal));
    }
    this.#router.expect({ kind: 'execute', result: this.#result(command, decision, () => portal.columns), portal });
    this.#ranSinceSync = true;
    this.#sendUpstream(msg.raw);
  }

  /**
   * A message sent after the server failed an earlier one and before the Sync: the server ignores
   * it, so it is neither forwarded nor decided. An Execute is still recorded, as skipped.
   */
  #whileSkipping(msg: Parse | Bind | Execute | Describe | Close): void {
    if (msg.type === 'parse') return this.#skippedBatch.parse(msg);
    if (msg.type === 'bind') return this.#skippedBatch.bind(msg, this.#state);
    if (msg.type !== 'execute') return;
    const statement = this.#skippedBatch.execute(msg.portal, this.#state);
    if (statement === undefined) return; // the server would fail it too: nothing to name
    const command = this.#command(statement.text, statement.parameters, { ...(msg.portal === '' ? {} : { portal: msg.portal }), [SETTLED_ATTRIBUTE]: 'skipped' });
    void this.#events.emitLogged(command);
    this.#respond(unranResponse(command, 'skipped', null, 'not run: an earlier message before Sync failed'));
  }

  async #onFunctionCall(msg: FunctionCall): Promise<void> {
    // Ends with ReadyForQuery, which carries the reports of everything before it.
    this.#ranSinceSync = false;
    // Text arguments as text, binary ones as hex (the types are the function's, not stated).
    const params = msg.args.map((a, i) => (a === null ? null : formatOf(msg.argFormats, i) === 0 ? a.toString('utf8') : '\\x' + a.toString('hex')));
    const attributes = { message: 'FunctionCall', function_oid: String(msg.oid) };
    let fn;
    try {
      fn = await this.#functions!.resolve(msg.oid);
    } catch (err) {
      this.#log.warn('cannot resolve a FunctionCall OID', { oid: msg.oid, error: describeError(err) });
      const command = this.#command(`FunctionCall ${msg.oid}`, params, attributes);
      this.#recordRefusal(command, SQLSTATE.systemError, `Agate refused the function call: it cannot look up which function OID ${msg.oid} is`);
      return this.#refuse(SQLSTATE.systemError, `Agate refused the function call: it cannot look up which function OID ${msg.oid} is`, true);
    }
    if (this.#closed) return;
    if (fn === undefined) {
      const command = this.#command(`FunctionCall ${msg.oid}`, params, attributes);
      const message = `Agate refused the function call: no function has OID ${msg.oid}`;
      this.#recordRefusal(command, SQLSTATE.undefinedFunction, message);
      return this.#refuse(SQLSTATE.undefinedFunction, message, true);
    }
    // Decided and recorded as the SELECT it amounts to, so rules see the function's name.
    const command = this.#command(functionCallText(fn, msg.args.length), params, { ...attributes, function: `${fn.schema}.${fn.name}` });
    const decision = await this.#decide(command);
    if (decision.kind === 'refuse') {
      this.#respond(unranResponse(command, 'refused', decision.sqlstate, decision.message));
      return this.#refuse(decision.sqlstate, decision.message, true);
    }
    this.#router.expect({ kind: 'call', result: this.#result(command, decision) });
    this.#sendUpstream(msg.raw);
  }

  /**
   * Makes sure the server will lex `text` as Agate does before it is forwarded. Only a text with a
   * backslash or a non-ASCII character can lex differently (lexing.ts); for one, Agate first waits
   * for the ReadyForQuery of everything already forwarded, whose ParameterStatus reports would
   * have ended the session had a statement changed the settings. When a statement ran since the
   * last Sync, no report can come before this text reaches the server: refused, with the reason.
   */
  async #lexingSettled(text: string): Promise<string | undefined> {
    if (!isLexingSensitive(text)) return undefined;
    if (this.#ranSinceSync) {
      return 'Agate refused the statement: its text has a backslash or a non-ASCII character, and a statement ran before it with no Sync in between, so Agate cannot know how the server will read it (send a Sync first)';
    }
    if (this.#router.readyPending > 0) {
      this.#flushUpstream();
      await new Promise<void>((resolve) => (this.#readyWaiter = resolve));
    }
    return undefined;
  }

  /** Records a statement Agate refused itself, without asking policy: the command, then its refusal. */
  #recordRefusal(command: Command, sqlstate: string, message: string): void {
    void this.#events.emitLogged(command);
    this.#respond(unranResponse(command, 'refused', sqlstate, message));
  }

  /**
   * A Parse, Bind or Describe the server rejected that no Execute used: the statement the client
   * sent is recorded with the server's error (it never ran, so it was never decided).
   */
  #recordFailed(failed: FailedMessage, outcome: Outcome): void {
    const portal = failed.kind === 'parse' ? undefined : failed.portal;
    const text = failed.statement?.text ?? portal?.statement?.text;
    if (text === undefined) return; // a Describe of a portal Agate never saw bound: nothing to name
    const attributes: Record<string, string> = { message: failed.kind === 'parse' ? 'Parse' : failed.kind === 'bind' ? 'Bind' : 'Describe', [SETTLED_ATTRIBUTE]: 'failed' };
    if (failed.kind !== 'describe' && failed.name !== '') attributes[failed.kind === 'parse' ? 'statement' : 'portal'] = failed.name;
    const command = this.#command(text, portal === undefined ? [] : parameterTexts(portal), attributes);
    void this.#events.emitLogged(command);
    this.#respond(new StatementResult(command, this.#deps.recording, undefined).response(outcome));
  }

  /** Records a statement's response; a PREPARE or DEALLOCATE it carried now holds or is dropped. */
  #respond(response: Response): void {
    this.#prepared.settle(response.command_id, response.status === 'ok');
    void this.#events.emitLogged(response);
  }

  /**
   * Commands for the statements of one text, in order, each naming the PREPAREs of what it
   * EXECUTEs (see sql-prepared.ts); `unknown` is the first that executes a name Agate never saw
   * prepared. `nodes` absent: the text was not parsed (no EXECUTE/PREPARE word in it).
   */
  #statementCommands(texts: string[], nodes: (Record<string, unknown> | undefined)[], attributes: Record<string, string>, parameters: (string | null)[] = []): { commands: Command[]; unknown?: { index: number; name: string } } {
    const commands: Command[] = [];
    let unknown: { index: number; name: string } | undefined;
    for (const [i, text] of texts.entries()) {
      const command = this.#command(text, parameters, { ...attributes });
      const node = nodes[i];
      if (node !== undefined) {
        const plan = this.#prepared.plan(node, command.text, command.event_id);
        if (!plan.ok) unknown ??= { index: i, name: plan.name };
        else if (plan.prepared.length > 0) command.attributes[PREPARED_ATTRIBUTE] = plan.prepared.join(PREPARED_SEPARATOR);
      }
      commands.push(command);
    }
    return { commands, unknown };
  }

  /** Refuses statements because one executes a prepared statement Agate cannot name. */
  #refuseUnknownPrepared(commands: Command[], unknown: { index: number; name: string }, simple: boolean): void {
    const message = `Agate refused the statement: prepared statement "${unknown.name}" was not prepared through Agate in this session, so Agate cannot tell what it runs`;
    for (const [i, command] of commands.entries()) {
      this.#recordRefusal(command, SQLSTATE.invalidStatementName, i === unknown.index ? message : 'not run: another statement in the same query was refused');
    }
    this.#refuse(SQLSTATE.invalidStatementName, message, simple);
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

  /** Publishes the command (write-ahead) and waits for its verdict (decide.ts); maps it to SQLSTATEs. */
  async #decide(command: Command, notifyHold = true): Promise<Decision> {
    const { bus, verdictTimeoutMs, maskers } = this.#deps;
    const d = await decide(command, { bus, verdictTimeoutMs, events: this.#events, log: this.#log }, { onHold: (v) => notifyHold && this.#notifyHold(v) });
    if (d.kind === 'run') {
      const mask = clientMasker(d, maskers, this.#target?.maskClient);
      if (mask.ok) return { kind: 'run', client: mask.masker };
      return { kind: 'refuse', sqlstate: SQLSTATE.insufficientPrivilege, message: `Agate refused the statement: mask set "${mask.missing}" is not configured, so results cannot be masked` };
    }
    const sqlstate = d.kind === 'unrecorded' ? SQLSTATE.systemError : SQLSTATE.insufficientPrivilege;
    return { kind: 'refuse', sqlstate, message: refusalText(d, 'statement') };
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
    if (route === undefined) return void this.#log.debug('cancel request with an unknown key ignored');
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
      this.#respond(unranResponse(command, 'refused', decision.sqlstate, decision.message));
      return { forward: false };
    }
    return { forward: true, done: () => this.#respond(new StatementResult(command, this.#deps.recording, undefined).response({ status: 'ok', command_tag: null, rows: 0 })) };
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
    const max = this.#deps.maxMessageSize;
    this.#functions = new FunctionNames(async () => (await connectUpstream(target, upstreamStartup({ application_name: 'agate catalog lookup' }, 'UTF8', []), max)).socket, max);
    try {
      await this.#events.emit({
        type: 'SessionOpened', event_id: randomUUID(), time: nowMicros(), session_id: this.id, proxy_id: this.#deps.proxyId,
        protocol: 'postgres', target: targetName, client_address: this.#clientAddress(), identity: this.#identity,
        attributes: this.#startupAttributes(startup.parameters),
      });
      this.#opened = true;
    } catch (err) {
      this.#log.error('cannot record session start; refusing the session', { error: describeError(err) });
      return this.#fatal(SQLSTATE.systemError, 'Agate cannot record this session (audit log unavailable); refused', 'audit unavailable');
    }
    const settings = await this.#decideStartup(startup.parameters);
    if (settings === undefined) return;
    let upstream;
    try {
      upstream = await connectUpstream(target, upstreamStartup(startup.parameters, settings.clientEncoding, settings.options.map((o) => o.setting)), this.#deps.maxMessageSize);
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
    this.#attachUpstream(upstream.socket);
    // The client never learns the upstream backend key; cancel routing maps Agate's own.
    const { key, release } = this.#deps.cancel.register({ host: target.host, port: target.port, upstream: { processId: upstream.ready.processId, secretKey: upstream.ready.secretKey }, admit: (from) => this.#admitCancel(from) });
    this.#releaseCancelKey = release;
    const hello = [serialize.authenticationOk(), ...upstream.ready.parameters.map(([k, v]) => serialize.parameterStatus(k, v))];
    hello.push(serialize.backendKeyData(key.processId, key.secretKey), serialize.readyForQuery('I'));
    this.#client.write(Buffer.concat(hello));
  }

  /** The startup parameters SessionOpened records; `options` may carry any value, so it is masked. */
  #startupAttributes(params: Record<string, string>): Record<string, string> {
    const out = pick(params, ['user', 'application_name', 'client_encoding', 'DateStyle', 'TimeZone']);
    if (params.options !== undefined) out.options = this.#deps.recording.audit.maskText(params.options).text;
    return out;
  }

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
        this.#respond(unranResponse(command, 'refused', decision.sqlstate, decision.message));
        await this.#fatal(decision.sqlstate, `${decision.message} (startup option -c ${setting.name}=${setting.value}); the session is refused`, `startup option ${setting.name} refused`);
        return undefined;
      }
      options.push({ setting, command });
    }
    return { clientEncoding: encoding.clientEncoding, options };
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
    if (frame.code === 0x53) this.#onParameterStatus(frame.raw); // S
    const out = this.#router.route(frame);
    if (out !== undefined) this.#clientOut.push(out);
    if (this.#readyWaiter !== undefined && this.#router.readyPending === 0) {
      this.#readyWaiter();
      this.#readyWaiter = undefined;
    }
    if (this.#repliesDrained !== undefined && this.#router.pending < MAX_EXPECTED / 2) {
      this.#repliesDrained();
      this.#repliesDrained = undefined;
    }
    if (this.#draining && this.#router.pending === 0) void this.#end('client disconnected');
  }

  #onParameterStatus(raw: Buffer): void {
    const { name, value } = decodeParameterStatus(raw);
    this.#lexingLost ??= this.#lexing.observe(name, value);
  }

  #repliesBelowLimit(): Promise<void> {
    this.#flushUpstream();
    return new Promise((resolve) => (this.#repliesDrained = resolve));
  }

  /** Writes what one upstream chunk produced in one go; pauses the target while the client lags. */
  #flushClient(): void {
    if (this.#clientOut.length === 0) return;
    if (this.#draining || this.#client.destroyed) return void (this.#clientOut = []); // recorded, with no one to deliver to
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
    this.#functions?.close();
    if (!this.#client.destroyed) this.#client.end();
    // A client that stops reading must not hold the socket open forever.
    setTimeout(() => this.#client.destroy(), 5_000).unref();
    this.#router.abandon('the session ended before the statement completed');
    this.#state.endTransaction();
    this.#repliesDrained?.();
    this.#readyWaiter?.();
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

/** A Bind or FunctionCall format code list: none means all text, one applies to every value. */
function formatOf(formats: readonly number[], i: number): number {
  return formats.length === 0 ? 0 : formats.length === 1 ? formats[0]! : (formats[i] ?? 0);
}

function cut(text: string, max: number): string {
  return text.length <= max ? text : `${text.slice(0, max)}…`;
}

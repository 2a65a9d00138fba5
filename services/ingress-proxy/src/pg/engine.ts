import { analyzeSql } from '../../../../core/src/sql/analyze.js';
import type { StatementSecrets } from './masking/statement-secrets.js';
import { isLexingSensitive } from '../../../../core/src/sql/lexing.js';
import { PREPARED_ATTRIBUTE, PREPARED_SEPARATOR } from '../../../../core/src/sql/prepared.js';
import type { Logger } from '../../../../core/src/log.js';
import { SETTLED_ATTRIBUTE, type AgateEvent, type Command, type Response } from '../../../../schemas/src/events.js';
import type { Column } from './backend-decode.js';
import type { BackendFrame } from './backend-frames.js';
import { serialize } from './backend-serializer.js';
import { ExtendedState, MAX_STATEMENTS, parameterTexts } from './extended-state.js';
import { functionCallText, type FunctionNames } from './function-names.js';
import type { Masker } from '../masking/masker.js';
import { decideHere, UNASKED_RULE } from '../decide.js';
import type { Bind, Close, Describe, Execute, FrontendMessage, FunctionCall, Parse, Query } from './messages.js';
import { describePortal, refusalParse, syncMessage } from './refusal.js';
import { MAX_EXPECTED, ReplyRouter, type FailedMessage } from './replies.js';
import { noticeEvent, notificationEvent } from './notification-event.js';
import { rolledBackResponse, StatementResult, unranResponse, type Outcome, type RecordingOptions } from './result-recorder.js';
import { SkippedBatch } from './skipped-batch.js';
import { MAX_RETAINED_BYTES } from './sized-map.js';
import { mayTouchPrepared, SqlPreparedStatements } from './sql-prepared.js';
import { mayUseSharedNames, sharedNameUses, type NameUse } from './shared-names.js';
import { SQLSTATE } from './sqlstate.js';
import { describeError } from '../../../../core/src/errors.js';

/** What the proxy does with one command once its verdict is known. */
export type Decision = { kind: 'run'; client: Masker | undefined } | { kind: 'refuse'; sqlstate: string; message: string };

/** Where the engine's bytes go, and how it ends the session; the socket adapter (session.ts) provides it. */
interface EngineIO {
  /** Bytes for the server, in order; they leave at `flushUpstream`. */
  upstream(bytes: Buffer): void;
  flushUpstream(): void;
  /** The client sent Terminate: the adapter ends the client side. */
  terminate(): void;
  /** Ends the session with a FATAL error to the client. */
  fatal(sqlstate: string, message: string, reason: string): Promise<void>;
}

/** What the engine needs to record and decide: given by the session, which knows who and where. */
interface EngineDeps {
  /** The session's id, for the events recorded outside any command (notifications). */
  sessionId: string;
  /** A Command for `text` in this session (masked, numbered). */
  command(text: string, parameters: (string | null)[], attributes: Record<string, string>): Command;
  /** Publishes the command and waits for its verdict, mapped to run or refuse (decide.ts). */
  decide(command: Command, notifyHold?: boolean): Promise<Decision>;
  events: { emitLogged(event: AgateEvent): Promise<void> };
  recording: RecordingOptions;
  log: Logger;
  /** Names the functions FunctionCall messages call by OID. */
  functions(): FunctionNames | undefined;
  /** The client mask set outside any statement's verdict (the target's), for errors and notices. */
  sessionMask(): Masker | undefined;
  /** A COPY command's columns (from its text), so column rules mask its sample. */
  copyShape(command: Command): StatementSecrets['copy'] | undefined;
}

/**
 * Open: messages flow. Discarding: Agate refused a message of the extended protocol, and, as the
 * server does after an error, ignores every message up to the client's Sync. Closed: the
 * session ended; nothing more is sent.
 */
type Phase = { kind: 'open' } | { kind: 'discarding' } | { kind: 'closed' };

/**
 * The PostgreSQL conversation after authentication, with no socket: frontend messages in
 * ({@link message}), backend frames in ({@link route}), bytes out through {@link EngineIO}.
 * Every statement about to run (a simple Query's statements, an Execute with its bound
 * parameters, a FunctionCall) is recorded and decided before it is forwarded; replies are
 * followed by the {@link ReplyRouter}, which records a Response per statement and applies
 * masking. At most {@link MAX_EXPECTED} replies may be outstanding: {@link message} waits below it.
 */
export class PgEngine {
  readonly #io: EngineIO;
  readonly #deps: EngineDeps;
  #phase: Phase = { kind: 'open' };
  /** A portal dropped while suspended ends its statement: recorded with the rows it fetched. */
  readonly #state = new ExtendedState((portal) => portal.run !== undefined && this.respond(portal.run.unfinished()));
  /** The client's view of a batch the server is ignoring after an error (until Sync). */
  readonly #skippedBatch = new SkippedBatch();
  /** SQL-level PREPAREd statements, so EXECUTE is decided as what it runs. */
  readonly #prepared = new SqlPreparedStatements();
  readonly #router: ReplyRouter;
  /**
   * An Execute was forwarded with no Sync after it yet. The server reports setting changes
   * (ParameterStatus) only at ReadyForQuery, so until a Sync, a statement that ran may have
   * changed how later text is lexed without Agate being told.
   */
  #ranSinceSync = false;
  /**
   * The first mask set a verdict applied to this client's results. What reaches the client
   * outside any statement (a notification from another session, a notice while idle) is masked
   * with it too, when the target sets none: a masked client stays masked between statements.
   */
  #maskedClient: Masker | undefined;
  #readyWaiter: (() => void) | undefined;
  #repliesDrained: (() => void) | undefined;

  constructor(io: EngineIO, deps: EngineDeps) {
    this.#io = io;
    this.#deps = deps;
    this.#router = new ReplyRouter({
      emit: (r) => this.respond(r),
      onIdle: () => this.#state.endTransaction(),
      sessionMask: () => deps.sessionMask() ?? this.#maskedClient,
      recordFailed: (failed, outcome) => this.#recordFailed(failed, outcome),
      notified: (raw, delivered, client, masked) =>
        void deps.events.emitLogged(notificationEvent(deps.sessionId, raw, delivered, client, masked, deps.recording)),
      noticed: (raw, delivered, client, masked) =>
        void deps.events.emitLogged(noticeEvent(deps.sessionId, raw, delivered, client, masked, deps.recording)),
      // Not through respond(): a PREPARE survives its transaction's rollback (prepared statements are not transactional).
      rolledBack: (ids, reason, code) => {
        for (const id of ids) void deps.events.emitLogged(rolledBackResponse(deps.sessionId, id, reason, code));
      },
    });
  }

  /** Replies outstanding. */
  get pending(): number {
    return this.#router.pending;
  }

  /**
   * Routes one backend frame; returns the bytes owed to the client (none when the frame answered
   * a message Agate injected). Throws MaskingError or ProtocolError: the session must end.
   */
  route(frame: BackendFrame): Buffer | undefined {
    if (this.#phase.kind === 'closed') return undefined;
    const out = this.#router.route(frame);
    if (this.#readyWaiter !== undefined && this.#router.readyPending === 0) {
      this.#readyWaiter();
      this.#readyWaiter = undefined;
    }
    if (this.#repliesDrained !== undefined && this.#router.pending < MAX_EXPECTED / 2) {
      this.#repliesDrained();
      this.#repliesDrained = undefined;
    }
    return out;
  }

  /** The session ended: what is outstanding is recorded as never completed, waiters released. */
  close(reason: string): void {
    if (this.#phase.kind === 'closed') return;
    this.#phase = { kind: 'closed' };
    this.#router.abandon(reason);
    this.#state.endTransaction();
    this.#repliesDrained?.();
    this.#readyWaiter?.();
  }

  /**
   * Handles one frontend message after authentication; the promise (when there is one: a
   * statement to decide) resolves once it was decided and passed on (or refused). The caller
   * reads no further message meanwhile: that is the flow control. Messages that wait for
   * nothing (Bind, Describe, Sync, ...) are handled at once, with no promise to wait on: each
   * await costs the next statement a turn of the microtask queue.
   */
  message(msg: FrontendMessage): Promise<void> | undefined {
    if (this.#phase.kind === 'closed') return undefined;
    if (this.#router.pending >= MAX_EXPECTED) return this.#repliesBelowLimit().then(() => this.#dispatch(msg));
    return this.#dispatch(msg);
  }

  #dispatch(msg: FrontendMessage): Promise<void> | undefined {
    if (this.#phase.kind === 'closed') return undefined;
    // After an error the server ignores extended-protocol messages until Sync; Agate does the same,
    // and still records each Execute the client sent, as skipped (as after the server's own error).
    if (this.#phase.kind === 'discarding' && msg.type !== 'sync') {
      if (msg.type === 'parse' || msg.type === 'bind' || msg.type === 'execute') return this.#whileSkipping(msg);
      return;
    }
    if (this.#router.skipping && (msg.type === 'parse' || msg.type === 'bind' || msg.type === 'execute' || msg.type === 'describe' || msg.type === 'close')) {
      this.#whileSkipping(msg);
      return;
    }
    switch (msg.type) {
      case 'query':
        return this.#onQuery(msg);
      case 'parse':
        return this.#onParse(msg);
      case 'bind':
        this.#onBind(msg);
        return;
      case 'describe': {
        const portal = msg.kind === 'P' ? this.#state.portals.get(msg.name) : undefined;
        if (portal !== undefined) portal.described = true;
        this.#io.upstream(msg.raw);
        this.#router.expect({ kind: 'describe', swallow: false, portal, statement: msg.kind === 'S' ? this.#state.statements.get(msg.name) : undefined });
        return;
      }
      case 'execute':
        return this.#onExecute(msg);
      case 'close':
        // A statement's name is shared with SQL's PREPARE: EXECUTE must not find the old text.
        if (msg.kind === 'S') this.#prepared.forget(msg.name);
        this.#router.expect({ kind: 'close', undo: this.#state.close(msg) });
        this.#io.upstream(msg.raw);
        return;
      case 'sync':
        if (this.#router.syncInCopyData) {
          return this.#io.fatal(SQLSTATE.protocolViolation, 'a Sync inside COPY data: the server ignores it or not depending on where the COPY fails, so Agate cannot follow its replies', 'protocol violation');
        }
        if (this.#phase.kind === 'discarding') this.#phase = { kind: 'open' };
        this.#skippedBatch.clear();
        this.#ranSinceSync = false;
        this.#router.expect({ kind: 'sync' });
        this.#io.upstream(msg.raw);
        return;
      case 'flush':
        // The client waits for what it sent so far; a later message may wait on a verdict.
        this.#io.upstream(msg.raw);
        this.#io.flushUpstream();
        return;
      case 'functionCall':
        return this.#onFunctionCall(msg);
      case 'copyData':
      case 'copyDone':
      case 'copyFail':
        // Part of a COPY FROM STDIN whose statement was already decided.
        if (msg.type === 'copyData') this.#router.copyTarget?.copyData(msg.raw, false);
        // Where the data begins and ends decides which Syncs the server will ignore (replies.ts).
        this.#router.expect({ kind: 'copy', end: msg.type !== 'copyData' });
        this.#io.upstream(msg.raw);
        return;
      case 'terminate':
        this.#io.upstream(msg.raw);
        this.#io.flushUpstream();
        this.#io.terminate();
        return;
      case 'password':
        return this.#io.fatal(SQLSTATE.protocolViolation, 'unexpected password message', 'protocol violation');
    }
  }

  // ---- statements ----------------------------------------------------------------------------

  async #onQuery(msg: Query): Promise<void> {
    const unsure = await this.#lexingSettled(msg.text);
    if (this.#phase.kind === 'closed') return;
    if (unsure !== undefined) {
      const command = this.#deps.command(msg.text, [], {});
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
    if (single.includes(';') || mayTouchPrepared(single) || mayUseSharedNames(single)) {
      const analysis = analyzeSql(msg.text);
      if (analysis.ok) {
        texts = analysis.statements.map((s) => s.text);
        nodes = analysis.statements.map((s) => s.node);
      }
    }
    if (texts.length === 1 && texts[0] === '') texts = [];
    const { commands, unreadable, drops } = this.#statementCommands(texts, nodes, {});
    if (unreadable !== undefined) return this.#refuseUnreadable(commands, unreadable, true);
    // Every statement is decided (and recorded) before any of them runs.
    const decisions: Decision[] = [];
    for (const command of commands) decisions.push(await this.#deps.decide(command));
    const refused = decisions.find((d) => d.kind === 'refuse');
    if (refused === undefined) {
      const results = commands.map((c, i) => this.#result(c, decisions[i] as Extract<Decision, { kind: 'run' }>));
      this.#router.expect({ kind: 'query', results, index: 0 });
      this.#dropShared(drops);
      this.#io.upstream(msg.raw);
      return;
    }
    for (const [i, command] of commands.entries()) {
      const d = decisions[i]!;
      const message = d.kind === 'refuse' ? d.message : 'not run: another statement in the same query was refused';
      this.respond(unranResponse(command, 'refused', refused.sqlstate, message));
    }
    this.#refuse(refused.sqlstate, refused.message, true);
  }

  async #onParse(msg: Parse): Promise<void> {
    // The server lexes the text now, at Parse, with the settings in force now.
    const unsure = await this.#lexingSettled(msg.query);
    if (this.#phase.kind === 'closed') return;
    if (unsure !== undefined) {
      const command = this.#deps.command(msg.query, [], { message: 'Parse' });
      this.#recordRefusal(command, SQLSTATE.featureNotSupported, unsure);
      return this.#refuse(SQLSTATE.featureNotSupported, unsure, false);
    }
    const outcome = this.#state.parse(msg);
    if (!outcome.ok) return this.#refuse(outcome.sqlstate, outcome.message, false);
    this.#router.expect({ kind: 'parse', undo: outcome.undo, statement: outcome.statement, name: msg.name });
    this.#io.upstream(msg.raw);
  }

  #onBind(msg: Bind): void {
    const bound = this.#state.bind(msg);
    if (!bound.ok) return this.#refuse(bound.sqlstate, bound.message, false);
    this.#router.expect({ kind: 'bind', undo: bound.undo, portal: bound.portal, name: msg.portal });
    this.#io.upstream(msg.raw);
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
      this.#io.upstream(msg.raw);
      return;
    }
    const text = portal.statement.text;
    // A Parse holds at most one statement; it may be a PREPARE or EXECUTE of SQL level.
    const analysis = mayTouchPrepared(text) || mayUseSharedNames(text) ? analyzeSql(text) : undefined;
    const node = analysis?.ok === true && analysis.statements.length === 1 ? analysis.statements[0]!.node : undefined;
    const { commands, unreadable, drops } = this.#statementCommands([text], [node], msg.portal === '' ? {} : { portal: msg.portal }, parameterTexts(portal));
    const command = commands[0]!;
    if (unreadable !== undefined) return this.#refuseUnreadable(commands, unreadable, false);
    const decision = await this.#deps.decide(command);
    if (decision.kind === 'refuse') {
      this.respond(unranResponse(command, 'refused', decision.sqlstate, decision.message));
      return this.#refuse(decision.sqlstate, decision.message, false);
    }
    if (!portal.described) {
      // Column names are needed to mask and record the rows; the client did not ask, Agate does.
      portal.described = true;
      this.#router.expect({ kind: 'describe', portal, swallow: true });
      this.#io.upstream(describePortal(msg.portal));
    }
    this.#router.expect({ kind: 'execute', result: this.#result(command, decision, () => portal.columns), portal });
    this.#ranSinceSync = true;
    this.#dropShared(drops);
    this.#io.upstream(msg.raw);
  }

  /**
   * A message sent after the server failed an earlier one and before the Sync: the server ignores
   * it, so it is neither forwarded nor decided. An Execute is still recorded, as skipped.
   */
  async #whileSkipping(msg: Parse | Bind | Execute | Describe | Close): Promise<void> {
    if (msg.type === 'parse' || msg.type === 'bind') {
      const kept = msg.type === 'parse' ? this.#skippedBatch.parse(msg) : this.#skippedBatch.bind(msg, this.#state);
      // The server ignores these until Sync, but Agate would hold them: a batch without end is cut.
      if (!kept) return this.#io.fatal(SQLSTATE.programLimitExceeded, `Agate keeps at most ${MAX_RETAINED_BYTES >> 20} MiB of statements and bound values sent after an error and before Sync`, 'skipped batch over its limit');
      return;
    }
    if (msg.type !== 'execute') return;
    const statement = this.#skippedBatch.execute(msg.portal, this.#state);
    if (statement === undefined) return; // the server would fail it too: nothing to name
    const command = this.#deps.command(statement.text, statement.parameters, { ...(msg.portal === '' ? {} : { portal: msg.portal }), [SETTLED_ATTRIBUTE]: 'skipped' });
    void this.#deps.events.emitLogged(command);
    this.respond(unranResponse(command, 'skipped', null, 'not run: an earlier message before Sync failed'));
  }

  async #onFunctionCall(msg: FunctionCall): Promise<void> {
    // Ends with ReadyForQuery, which carries the reports of everything before it.
    this.#ranSinceSync = false;
    // Text arguments as text, binary ones as hex (the types are the function's, not stated).
    const params = msg.args.map((a, i) => (a === null ? null : formatOf(msg.argFormats, i) === 0 ? a.toString('utf8') : '\\x' + a.toString('hex')));
    const attributes = { message: 'FunctionCall', function_oid: String(msg.oid) };
    let fn;
    try {
      fn = await this.#deps.functions()!.resolve(msg.oid);
    } catch (err) {
      this.#deps.log.warn('cannot resolve a FunctionCall OID', { oid: msg.oid, error: describeError(err) });
      const command = this.#deps.command(`FunctionCall ${msg.oid}`, params, attributes);
      this.#recordRefusal(command, SQLSTATE.systemError, `Agate refused the function call: it cannot look up which function OID ${msg.oid} is`);
      return this.#refuse(SQLSTATE.systemError, `Agate refused the function call: it cannot look up which function OID ${msg.oid} is`, true);
    }
    if (this.#phase.kind === 'closed') return;
    if (fn === undefined) {
      const command = this.#deps.command(`FunctionCall ${msg.oid}`, params, attributes);
      const message = `Agate refused the function call: no function has OID ${msg.oid}`;
      this.#recordRefusal(command, SQLSTATE.undefinedFunction, message);
      return this.#refuse(SQLSTATE.undefinedFunction, message, true);
    }
    // Decided and recorded as the SELECT it amounts to, so rules see the function's name.
    const command = this.#deps.command(functionCallText(fn, msg.args.length), params, { ...attributes, function: `${fn.schema}.${fn.name}` });
    const decision = await this.#deps.decide(command);
    if (decision.kind === 'refuse') {
      this.respond(unranResponse(command, 'refused', decision.sqlstate, decision.message));
      return this.#refuse(decision.sqlstate, decision.message, true);
    }
    this.#router.expect({ kind: 'call', result: this.#result(command, decision) });
    this.#io.upstream(msg.raw);
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
      this.#io.flushUpstream();
      await new Promise<void>((resolve) => (this.#readyWaiter = resolve));
    }
    return undefined;
  }

  /**
   * Records a statement Agate refused itself, without asking policy: the command, the deny of
   * the built-in rule (its only verdict: policy leaves the command to it), then its refusal.
   */
  #recordRefusal(command: Command, sqlstate: string, message: string): void {
    const verdict = decideHere(command, 'deny', UNASKED_RULE, message); // marks the command: before it is published
    void this.#deps.events.emitLogged(command);
    void this.#deps.events.emitLogged(verdict);
    this.respond(unranResponse(command, 'refused', sqlstate, message));
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
    const command = this.#deps.command(text, portal === undefined ? [] : parameterTexts(portal), attributes);
    void this.#deps.events.emitLogged(command);
    this.respond(new StatementResult(command, this.#deps.recording, undefined).response(outcome));
  }

  /** Records a statement's response; a PREPARE or DEALLOCATE it carried now holds or is dropped. */
  respond(response: Response): void {
    this.#prepared.settle(response.command_id, response.status === 'ok');
    void this.#deps.events.emitLogged(response);
  }

  /**
   * Commands for the statements of one text, in order, each naming the PREPAREs of what it
   * EXECUTEs (see sql-prepared.ts). `unreadable` is the first statement Agate cannot tell the
   * effect of: an EXECUTE of a name it never saw prepared, or a FETCH or MOVE of a portal Bind
   * made (shared-names.ts); `drops` the statement and portal names the text drops, forgotten
   * once it is forwarded. `nodes` absent: the text was not parsed (no word that needs it).
   */
  #statementCommands(texts: string[], nodes: (Record<string, unknown> | undefined)[], attributes: Record<string, string>, parameters: (string | null)[] = []): { commands: Command[]; unreadable?: Unreadable; drops: NameUse[] } {
    const commands: Command[] = [];
    const drops: NameUse[] = [];
    let unreadable: Unreadable | undefined;
    for (const [i, text] of texts.entries()) {
      const command = this.#deps.command(text, parameters, { ...attributes });
      const node = nodes[i];
      if (node !== undefined) {
        const plan = this.#prepared.plan(node, command.text, command.event_id);
        if (!plan.ok && plan.why === 'limit') unreadable ??= { index: i, sqlstate: SQLSTATE.programLimitExceeded, message: `Agate refused PREPARE ${plan.name}: it keeps at most ${MAX_STATEMENTS} prepared statements and ${MAX_RETAINED_BYTES >> 20} MiB of their text per session; DEALLOCATE some first` };
        else if (!plan.ok) unreadable ??= { index: i, sqlstate: SQLSTATE.invalidStatementName, message: `Agate refused the statement: prepared statement "${plan.name}" was not prepared through Agate in this session, so Agate cannot tell what it runs` };
        else if (plan.prepared.length > 0) command.attributes[PREPARED_ATTRIBUTE] = plan.prepared.join(PREPARED_SEPARATOR);
        for (const use of sharedNameUses(node)) {
          if (use.kind !== 'fetchPortal') drops.push(use);
          else if (this.#state.portals.has(use.name) && !droppedBefore(drops, use.name)) {
            unreadable ??= { index: i, sqlstate: SQLSTATE.featureNotSupported, message: `Agate refused ${use.verb} of portal "${use.name}": it was bound with the extended protocol, whose statement Agate decides at its Execute; run it with Execute` };
          }
        }
      }
      commands.push(command);
    }
    return { commands, unreadable, drops };
  }

  /** Refuses statements because one of them Agate cannot tell the effect of; none is asked of policy. */
  #refuseUnreadable(commands: Command[], unreadable: Unreadable, simple: boolean): void {
    for (const [i, command] of commands.entries()) {
      this.#recordRefusal(command, unreadable.sqlstate, i === unreadable.index ? unreadable.message : 'not run: another statement in the same query was refused');
    }
    this.#refuse(unreadable.sqlstate, unreadable.message, simple);
  }

  /** Forgets the statement and portal names SQL about to run drops (see shared-names.ts). */
  #dropShared(drops: NameUse[]): void {
    for (const use of drops) {
      if (use.kind === 'dropPortals') this.#state.dropPortals(use.name);
      else if (use.kind === 'dropStatements') this.#state.dropStatements(use.name);
    }
  }

  /**
   * Refuses in order with the client's other messages (see refusal.ts). `simple` adds the Sync a
   * simple Query or FunctionCall implies; otherwise the client's own Sync ends the error.
   */
  #refuse(sqlstate: string, message: string, simple: boolean): void {
    this.#router.expect({ kind: 'refusal', error: serialize.errorResponse({ severity: 'ERROR', code: sqlstate, message }) });
    this.#io.upstream(refusalParse());
    if (simple) {
      this.#router.expect({ kind: 'sync' });
      this.#io.upstream(syncMessage());
    } else {
      this.#phase = { kind: 'discarding' };
    }
  }

  #result(command: Command, decision: Extract<Decision, { kind: 'run' }>, columns?: () => readonly Column[] | undefined): StatementResult {
    this.#maskedClient ??= decision.client;
    return new StatementResult(command, this.#deps.recording, decision.client, columns, this.#deps.copyShape(command));
  }
  #repliesBelowLimit(): Promise<void> {
    this.#io.flushUpstream();
    return new Promise((resolve) => (this.#repliesDrained = resolve));
  }
}

/** A statement Agate refuses unasked, with the reason the client gets. */
interface Unreadable {
  index: number;
  sqlstate: string;
  message: string;
}

/** An earlier statement of the same text closes or declares portal `name` (or closes all). */
function droppedBefore(drops: readonly NameUse[], name: string): boolean {
  return drops.some((d) => d.kind === 'dropPortals' && (d.name === undefined || d.name === name));
}

/** A Bind or FunctionCall format code list: none means all text, one applies to every value. */
function formatOf(formats: readonly number[], i: number): number {
  return formats.length === 0 ? 0 : formats.length === 1 ? formats[0]! : (formats[i] ?? 0);
}

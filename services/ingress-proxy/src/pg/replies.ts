import { rowsFromTag, type Outcome, type StatementResult } from './result-recorder.js';
import { decodeCommandComplete, decodeErrorResponse, decodeParameterDescription, decodeRowDescription } from './backend-decode.js';
import type { BackendFrame } from './backend-frames.js';
import { BackendCode } from './messages.js';
import type { Portal, PreparedStatement, Undo } from './extended-state.js';
import type { Response } from '../../../../schemas/src/events.js';
import { maskNotification } from './masking/notification.js';
import { maskErrorFields } from './masking/error-fields.js';
import { maskFunctionResult } from './masking/function-result.js';
import type { Masker } from '../masking/masker.js';
import { ProtocolError } from '../../../../core/src/errors.js';
import { TransactionTracker } from './transactions.js';

/** What the proxy still expects from the server, one entry per forwarded message that gets a reply. */
type Expectation =
  | { kind: 'parse'; undo: Undo; statement: PreparedStatement; name: string }
  | { kind: 'bind'; undo: Undo; portal: Portal; name: string }
  | { kind: 'close'; undo: Undo }
  | { kind: 'describe'; statement?: PreparedStatement; portal?: Portal; swallow: boolean }
  | { kind: 'execute'; result: StatementResult; portal?: Portal }
  | { kind: 'sync' }
  | { kind: 'query'; results: StatementResult[]; index: number }
  | { kind: 'call'; result: StatementResult }
  /** A refusal Agate injected as a Parse the server must reject; its error is replaced by `error`. */
  | { kind: 'refusal'; error: Buffer }
  /**
   * No reply: where the client's COPY data begins (a CopyData) or ends (CopyDone, CopyFail), kept
   * in order for a COPY FROM STDIN whose CopyInResponse has not come back yet (see #copyStarted).
   */
  | { kind: 'copy'; end: boolean };

export type TxStatus = 'I' | 'T' | 'E';

/** A Parse, Bind or Describe the server rejected: the statement or portal it concerned. */
export type FailedMessage =
  | { kind: 'parse'; name: string; statement: PreparedStatement; portal?: undefined }
  | { kind: 'bind'; name: string; portal: Portal; statement?: undefined }
  | { kind: 'describe'; statement?: PreparedStatement; portal?: Portal };

interface RouterHooks {
  /** Records one statement's Response. */
  emit: (response: Response) => void;
  /** The server reported an idle session (ReadyForQuery 'I'): its portals are gone. */
  onIdle: () => void;
  /** The client mask set outside any statement's verdict (the target's), for errors and notices. */
  sessionMask?: () => Masker | undefined;
  /**
   * A Parse, Bind or Describe failed and no Execute the client sent before the next Sync used
   * what it concerned (asyncpg prepares with Parse/Describe/Sync alone): the statement is still
   * recorded, with the server's error.
   */
  recordFailed?: (failed: FailedMessage, outcome: Outcome) => void;
  /**
   * A notification reached the client: `raw` as the server sent it, `delivered` as forwarded,
   * `client` the mask set applied to it (if any) and `masked` the values it masked. Recorded as
   * a Notification event of its own (it answers no command).
   */
  notified?: (raw: Buffer, delivered: Buffer, client: Masker | undefined, masked: number) => void;
  /**
   * A NoticeResponse (NOTICE, WARNING, INFO …) reached the client, with the same arguments as
   * `notified`: a `RAISE NOTICE` can carry data, a WARNING can say a GRANT granted nothing.
   */
  noticed?: (raw: Buffer, delivered: Buffer, client: Masker | undefined, masked: number) => void;
  /**
   * Statements that succeeded in a transaction that then did not commit (see transactions.ts),
   * with why, and the SQLSTATE of the error that ended it, if one did.
   */
  rolledBack?: (commandIds: string[], reason: string, code: string | null) => void;
}

/** The server's error for a Parse, Bind or Describe, until an Execute that depended on it is found. */
interface Failure {
  failed: FailedMessage;
  outcome: Outcome;
  claimed: boolean;
}

/**
 * Following: each reply answers the oldest outstanding message. Skipping: the server failed a
 * message and ignores everything up to the next Sync, including what the client sends later, so
 * messages expected now get no reply at all and are settled as they come (`failure` is the error
 * that started it, for the statements that depended on the failed message).
 */
type Phase = { kind: 'following' } | { kind: 'skipping'; failure: Failure | undefined };

/** Bound on replies outstanding: a client pipelining without reading is paused past it. */
export const MAX_EXPECTED = 10_000;

/**
 * Follows the server's replies in order against what the proxy forwarded, so each reply is
 * attributed to its message: rows and completions to the statement they belong to (recorded as
 * a Response), descriptions to their portal, failures to the bookkeeping they undo. After an
 * error in the extended protocol the server skips everything up to Sync; the router does the same
 * with its expectations. Returns the bytes owed to the client for each frame (rewritten when
 * masked or a refusal, nothing when the frame answered a message Agate injected).
 */
export class ReplyRouter {
  readonly #queue: Expectation[] = [];
  #tx: TxStatus = 'I';
  #phase: Phase = { kind: 'following' };
  /**
   * The server is in COPY FROM STDIN as far as the client's messages forwarded so far reach:
   * it ignores a Sync then, and `data` says whether COPY data was sent since it began.
   */
  #copyIn: { data: boolean } | undefined;
  readonly #emit: (response: Response) => void;
  readonly #hooks: RouterHooks;
  readonly #transactions: TransactionTracker;

  constructor(hooks: RouterHooks) {
    this.#hooks = hooks;
    this.#emit = hooks.emit;
    this.#transactions = new TransactionTracker((ids, reason, code) => hooks.rolledBack?.(ids, reason, code));
  }

  get tx(): TxStatus {
    return this.#tx;
  }

  get pending(): number {
    return this.#queue.length;
  }

  /** Outstanding messages that end in ReadyForQuery (Sync, a simple Query, a FunctionCall). */
  get readyPending(): number {
    let n = 0;
    for (const e of this.#queue) if (e.kind === 'sync' || e.kind === 'query' || e.kind === 'call') n += 1;
    return n;
  }

  /** Whether the server is ignoring messages until the next Sync. */
  get skipping(): boolean {
    return this.#phase.kind === 'skipping';
  }

  /**
   * A Sync now would be sent inside COPY data: the server ignores it while it reads the data,
   * and honours it once the COPY failed, which depends on where in the data it fails. Agate
   * cannot know which; the caller ends the session.
   */
  get syncInCopyData(): boolean {
    return this.#copyIn?.data === true;
  }

  expect(e: Expectation): void {
    if (e.kind === 'copy') return this.#copyMessage(e);
    // The server ignores a Sync while it waits for COPY data: no ReadyForQuery will answer it.
    if (e.kind === 'sync' && this.#copyIn !== undefined) return;
    if (this.#phase.kind === 'skipping') {
      if (e.kind !== 'sync') return this.#settleSkipped([e], this.#phase.failure);
      this.#finish(this.#phase.failure);
      this.#phase = { kind: 'following' };
    }
    this.#queue.push(e);
  }

  /** The statement receiving client COPY data: the one whose COPY FROM STDIN is running. */
  get copyTarget(): StatementResult | undefined {
    const head = this.#queue[0];
    if (head?.kind === 'query') return head.results[head.index];
    if (head?.kind === 'execute') return head.result;
    return undefined;
  }

  /** Routes one frame; may throw MaskingError (the caller refuses the response and closes). */
  route(frame: BackendFrame): Buffer | undefined {
    const code = frame.code;
    // Asynchronous messages may arrive at any time and belong to no request.
    if (code === BackendCode.NoticeResponse) return this.#noticeForClient(frame.raw, this.copyTarget);
    if (code === BackendCode.NotificationResponse) return this.#notificationForClient(frame.raw, this.copyTarget);
    if (code === BackendCode.ParameterStatus) return frame.raw;
    // The COPY ended (done, or failed): the server reads messages as commands again.
    if (this.#copyIn !== undefined && (code === BackendCode.CommandComplete || code === BackendCode.ErrorResponse)) this.#copyIn = undefined;
    // Marks of COPY data for a COPY that never started (it failed first): nothing answers them.
    while (this.#queue[0]?.kind === 'copy') this.#queue.shift();
    const head = this.#queue[0];
    if (head === undefined) {
      if (code === BackendCode.ErrorResponse) return this.#forClient(frame.raw, undefined); // e.g. a FATAL error as the server shuts down
      throw outOfStep(code, 'nothing');
    }
    // Any error aborts the transaction it happens in, Agate's injected refusal included.
    if (code === BackendCode.ErrorResponse) this.#transactions.failed(commandOf(head), decodeErrorResponse(frame.raw).code);
    switch (head.kind) {
      case 'parse':
      case 'bind':
      case 'close':
        if (code === BackendCode.ErrorResponse) return this.#forClient(this.#failed(frame.raw), undefined);
        if (code !== COMPLETE[head.kind]) throw outOfStep(code, head.kind);
        this.#queue.shift();
        return frame.raw;
      case 'describe':
        return this.#describe(head, frame);
      case 'execute':
        return this.#execute(head, head.result, frame);
      case 'query':
        return this.#query(head, frame);
      case 'call':
        if (code === BackendCode.ErrorResponse) {
          this.#emit(head.result.response(errorOutcome(frame.raw)));
          return this.#forClient(frame.raw, head.result);
        }
        if (code === BackendCode.FunctionCallResponse) {
          this.#transactions.ran(head.result.command, null);
          this.#emit(head.result.response({ status: 'ok', command_tag: null, rows: 1 }));
          const client = head.result.client;
          return client === undefined ? frame.raw : maskFunctionResult(frame.raw, client, functionName(head.result.command)).frame;
        }
        if (code === BackendCode.ReadyForQuery) this.#ready(frame.raw);
        else throw outOfStep(code, 'a function call');
        return frame.raw;
      case 'sync':
        // An ErrorResponse here is a failed implicit COMMIT.
        if (code === BackendCode.ErrorResponse) return this.#forClient(frame.raw, undefined);
        if (code !== BackendCode.ReadyForQuery) throw outOfStep(code, 'sync');
        this.#ready(frame.raw);
        return frame.raw;
      case 'refusal':
        if (code !== BackendCode.ErrorResponse) throw outOfStep(code, 'a refusal');
        this.#queue.shift();
        this.#skipUntilSync();
        return head.error;
    }
  }

  /** CopyData (a run of them counts once), CopyDone or CopyFail from the client. */
  #copyMessage(e: Extract<Expectation, { kind: 'copy' }>): void {
    if (this.#copyIn !== undefined) {
      if (e.end) this.#copyIn = undefined;
      else this.#copyIn.data = true;
      return;
    }
    // With nothing outstanding, no COPY can be about to start: the server ignores stray COPY messages.
    const last = this.#queue[this.#queue.length - 1];
    if (last === undefined || this.#phase.kind === 'skipping' || (last.kind === 'copy' && !last.end && !e.end)) return;
    this.#queue.push(e);
  }

  /**
   * The head statement's COPY FROM STDIN began (CopyInResponse). What the client sent after it
   * reaches the server inside the COPY: a Sync before any data is ignored (libpq sends one with
   * the Execute), so it gets no ReadyForQuery; the COPY's data runs to its CopyDone or CopyFail.
   * A Sync inside the data is honoured or not depending on where the COPY fails: out of step.
   */
  #copyStarted(): void {
    let data = false;
    for (let i = 1; i < this.#queue.length; ) {
      const e = this.#queue[i]!;
      if (e.kind === 'copy') {
        this.#queue.splice(i, 1);
        if (e.end) return;
        data = true;
      } else if (e.kind === 'sync') {
        if (data) throw new ProtocolError('a Sync was sent inside COPY data: whether the target honours it depends on where the COPY fails, so its replies cannot be followed');
        this.#queue.splice(i, 1);
      } else {
        i += 1; // any other message ends the session on the server (protocol synchronization lost)
      }
    }
    this.#copyIn = { data };
  }

  /** Closes every outstanding statement as skipped (the session ended). */
  abandon(reason: string): void {
    this.#transactions.ended(this.#queue.some((e) => e.kind === 'execute' || e.kind === 'query' || e.kind === 'call' || e.kind === 'sync'));
    if (this.#phase.kind === 'skipping') this.#finish(this.#phase.failure);
    this.#phase = { kind: 'following' };
    for (const e of this.#queue.splice(0)) {
      if (e.kind === 'execute') finished(e);
      for (const r of resultsOf(e)) this.#emit(r.response({ status: 'skipped', error_message: reason }));
    }
  }

  #describe(head: Extract<Expectation, { kind: 'describe' }>, frame: BackendFrame): Buffer | undefined {
    switch (frame.code) {
      case BackendCode.ParameterDescription:
        if (head.statement !== undefined) head.statement.paramTypes = decodeParameterDescription(frame.raw);
        return head.swallow ? undefined : frame.raw;
      case BackendCode.RowDescription:
      case BackendCode.NoData: {
        const columns = frame.code === BackendCode.NoData ? [] : decodeRowDescription(frame.raw);
        if (head.portal !== undefined) head.portal.columns = columns;
        this.#queue.shift();
        return head.swallow ? undefined : frame.raw;
      }
      case BackendCode.ErrorResponse: {
        // Delivered even when Agate sent the Describe: it stands for the Execute's error.
        const next = this.#queue[1];
        return this.#forClient(this.#failed(frame.raw), next?.kind === 'execute' ? next.result : undefined);
      }
      default:
        throw outOfStep(frame.code, 'describe');
    }
  }

  #execute(head: Expectation, result: StatementResult, frame: BackendFrame): Buffer | undefined {
    switch (frame.code) {
      case BackendCode.DataRow:
        return result.row(frame.raw);
      case BackendCode.CopyData:
        return result.copyData(frame.raw, true);
      case BackendCode.CommandComplete: {
        const tag = decodeCommandComplete(frame.raw);
        this.#transactions.ran(result.command, tag);
        if (head.kind === 'execute') this.#finished(head);
        this.#emit(result.response({ status: 'ok', command_tag: tag, rows: rowsFromTag(tag) }));
        if (head.kind === 'query') head.index += 1;
        else this.#queue.shift();
        return frame.raw;
      }
      case BackendCode.PortalSuspended:
        // The row limit was reached: the statement goes on at the portal's next Execute.
        if (head.kind !== 'execute' || head.portal === undefined) throw outOfStep(frame.code, head.kind);
        this.#transactions.ran(result.command, null); // it ran (a DML with RETURNING, all of it)
        result.suspend();
        this.#supersede(head.portal, result);
        // Closed (or bound again) by a message sent right behind the Execute: no Execute can go on with it.
        if (head.portal.gone === true) this.#emit(result.unfinished());
        else head.portal.run = result;
        this.#queue.shift();
        return frame.raw;
      case BackendCode.EmptyQueryResponse:
        if (head.kind === 'execute') this.#finished(head);
        this.#emit(result.response({ status: 'ok', command_tag: null }));
        if (head.kind === 'query') head.index += 1;
        else this.#queue.shift();
        return frame.raw;
      case BackendCode.ErrorResponse:
        if (head.kind === 'execute') this.#finished(head);
        this.#emit(result.response(errorOutcome(frame.raw)));
        return this.#forClient(this.#failed(frame.raw), result);
      case BackendCode.CopyInResponse:
        this.#copyStarted();
        return frame.raw;
      case BackendCode.CopyOutResponse:
      case BackendCode.CopyBothResponse:
      case BackendCode.CopyDone:
        return frame.raw;
      default:
        throw outOfStep(frame.code, head.kind === 'query' ? 'a query' : 'execute');
    }
  }

  #query(head: Extract<Expectation, { kind: 'query' }>, frame: BackendFrame): Buffer | undefined {
    if (frame.code === BackendCode.ReadyForQuery) {
      // The server stops a query string at its first error: the rest never ran.
      for (const r of head.results.slice(head.index)) this.#emit(r.response({ status: 'skipped', error_message: 'not run: an earlier statement in the same query failed' }));
      this.#ready(frame.raw);
      return frame.raw;
    }
    const current = head.results[head.index];
    if (current === undefined) return frame.raw; // e.g. the EmptyQueryResponse of a blank string
    if (frame.code === BackendCode.RowDescription) {
      current.setColumns(decodeRowDescription(frame.raw));
      return frame.raw;
    }
    if (frame.code === BackendCode.ErrorResponse) {
      this.#emit(current.response(errorOutcome(frame.raw)));
      for (const r of head.results.slice(head.index + 1)) this.#emit(r.response({ status: 'skipped', error_message: 'not run: an earlier statement in the same query failed' }));
      head.index = head.results.length;
      return this.#forClient(frame.raw, current);
    }
    return this.#execute(head, current, frame);
  }

  #ready(raw: Buffer): void {
    this.#queue.shift();
    while (this.#queue[0]?.kind === 'copy') this.#queue.shift(); // COPY data for a COPY that never started
    this.#tx = String.fromCharCode(raw[5] ?? 0x49) as TxStatus;
    this.#transactions.ready(this.#tx);
    if (this.#tx === 'I') this.#hooks.onIdle();
  }

  /**
   * An ErrorResponse or NoticeResponse on its way to the client: the server may quote the very
   * values the statement's mask set hides (`invalid input syntax for type integer: "<value>"`,
   * `Key (k)=(<value>) already exists.`), so its text fields get the same masking as its rows.
   */
  #forClient(raw: Buffer, result: StatementResult | undefined): Buffer {
    const masker = result === undefined ? this.#hooks.sessionMask?.() : result.client;
    return masker === undefined ? raw : maskErrorFields(raw, masker).frame;
  }

  /** A notice is masked as an error is, and recorded. */
  #noticeForClient(raw: Buffer, result: StatementResult | undefined): Buffer {
    const masker = result === undefined ? this.#hooks.sessionMask?.() : result.client;
    const out = masker === undefined ? { frame: raw, masked: 0 } : maskErrorFields(raw, masker);
    this.#hooks.noticed?.(raw, out.frame, masker, out.masked);
    return out.frame;
  }

  /** A notification (from any session) gets the detectors of the mask set in force, as a notice does. */
  #notificationForClient(raw: Buffer, result: StatementResult | undefined): Buffer {
    const masker = result === undefined ? this.#hooks.sessionMask?.() : result.client;
    const out = masker === undefined ? { frame: raw, masked: 0 } : maskNotification(raw, masker);
    this.#hooks.notified?.(raw, out.frame, masker, out.masked);
    return out.frame;
  }

  /** The head message failed; the server now skips every message up to the next Sync. */
  #failed(raw: Buffer): Buffer {
    const head = this.#queue.shift();
    if (head?.kind === 'parse' || head?.kind === 'bind' || head?.kind === 'close') head.undo(false);
    this.#skipUntilSync(head === undefined ? undefined : failureOf(head, raw));
    return raw;
  }

  /**
   * Every message before the next Sync is skipped by the server. An Execute that used the
   * statement or portal a failed Parse, Bind or Describe concerned is recorded with that error
   * (it is why the statement never ran); the others as skipped.
   */
  #skipUntilSync(failure?: Failure): void {
    const end = this.#queue.findIndex((e) => e.kind === 'sync');
    this.#settleSkipped(this.#queue.splice(0, end === -1 ? this.#queue.length : end), failure);
    // The Sync is not here yet: whatever the client sends until it is skipped by the server too.
    if (end === -1) this.#phase = { kind: 'skipping', failure };
    else this.#finish(failure);
  }

  #settleSkipped(skipped: Expectation[], failure: Failure | undefined): void {
    const outcomes = skipped.map((e) => (failure !== undefined && e.kind === 'execute' && dependsOn(e.portal, failure.failed) ? failure.outcome : SKIPPED));
    // Recorded in the order sent; bookkeeping undone newest first, so each restores the state the one before it saw.
    for (const [i, e] of skipped.entries()) {
      if (outcomes[i] !== SKIPPED) failure!.claimed = true;
      if (e.kind === 'execute') finished(e);
      for (const r of resultsOf(e)) this.#emit(r.response(outcomes[i]!));
    }
    for (const e of skipped.reverse()) if (e.kind === 'parse' || e.kind === 'bind' || e.kind === 'close') e.undo(true);
  }

  /** The portal's statement is over: a later Execute of it would be a new one. */
  #finished(head: Extract<Expectation, { kind: 'execute' }>): void {
    this.#supersede(head.portal, head.result);
    finished(head);
  }

  /**
   * Executes of one portal pipelined before the first one's PortalSuspended came back were each
   * decided as a statement of their own; the portal's rows belong to the Execute that fetched
   * them. So when a later one answers, the earlier one's record ends there, with its rows.
   */
  #supersede(portal: Portal | undefined, result: StatementResult): void {
    if (portal?.run === undefined || portal.run === result) return;
    this.#emit(portal.run.unfinished());
    portal.run = undefined;
  }

  /** The skipping ended: a failure no Execute used is recorded on its own. */
  #finish(failure: Failure | undefined): void {
    if (failure !== undefined && !failure.claimed) this.#hooks.recordFailed?.(failure.failed, failure.outcome);
  }
}

/** The portal's statement is over: a later Execute of it would be a new one. */
function finished(head: Extract<Expectation, { kind: 'execute' }>): void {
  if (head.portal?.run === head.result) head.portal.run = undefined;
}

const COMPLETE = { parse: BackendCode.ParseComplete, bind: BackendCode.BindComplete, close: BackendCode.CloseComplete } as const;

/** The name (without schema) of the function a FunctionCall command calls (engine.ts sets `function`). */
function functionName(command: StatementResult['command']): string {
  const qualified = command.attributes.function ?? '';
  return qualified.slice(qualified.lastIndexOf('.') + 1);
}

/** A reply that answers none of the messages outstanding: attributing it anywhere would falsify the record. */
function outOfStep(code: number, expected: string): ProtocolError {
  return new ProtocolError(`the target's reply '${String.fromCharCode(code)}' does not fit the message outstanding (${expected}); replies are out of step`);
}

const SKIPPED: Outcome = { status: 'skipped', error_message: 'not run: an earlier message before Sync failed' };

function failureOf(head: Expectation, raw: Buffer): Failure | undefined {
  const outcome = errorOutcome(raw);
  switch (head.kind) {
    case 'parse':
      return { failed: { kind: 'parse', name: head.name, statement: head.statement }, outcome, claimed: false };
    case 'bind':
      return { failed: { kind: 'bind', name: head.name, portal: head.portal }, outcome, claimed: false };
    case 'describe':
      return { failed: { kind: 'describe', statement: head.statement, portal: head.portal }, outcome, claimed: false };
    default:
      return undefined; // an Execute's or Close's error is recorded where it happened
  }
}

/** Whether an Execute of `portal` used what the failed message concerned. */
function dependsOn(portal: Portal | undefined, failed: FailedMessage): boolean {
  if (portal === undefined) return false;
  if (failed.portal !== undefined) return portal === failed.portal;
  return failed.statement !== undefined && portal.statement === failed.statement;
}

/** The statement an error answers, when the outstanding message is one. */
function commandOf(head: Expectation): StatementResult['command'] | undefined {
  if (head.kind === 'execute' || head.kind === 'call') return head.result.command;
  if (head.kind === 'query') return head.results[head.index]?.command;
  return undefined;
}

function resultsOf(e: Expectation): StatementResult[] {
  if (e.kind === 'execute' || e.kind === 'call') return [e.result];
  if (e.kind === 'query') return e.results.slice(e.index);
  return [];
}

function errorOutcome(raw: Buffer): { status: 'error'; error_code: string; error_message: string } {
  const e = decodeErrorResponse(raw);
  return { status: 'error', error_code: e.code, error_message: e.message };
}

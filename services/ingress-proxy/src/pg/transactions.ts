import { analyzeSql } from '../../../../core/src/sql/analyze.js';
import type { TxStatus } from './replies.js';

/** What the tracker needs of a statement: its command's id and text (one statement). */
interface TrackedCommand {
  event_id: string;
  text: string;
}

/** Statements of one transaction whose rollback is recorded; more are counted, not named. */
export const MAX_TRACKED = 10_000;

/** Savepoints kept per transaction; past it the tracker stops claiming what a rollback undid. */
const MAX_SAVEPOINTS = 1_000;

/** Statements that run transaction control: never themselves recorded as rolled back. */
const CONTROL_TAGS = new Set(['BEGIN', 'START TRANSACTION', 'COMMIT', 'ROLLBACK', 'SAVEPOINT', 'RELEASE', 'PREPARE TRANSACTION']);

/**
 * Follows one PostgreSQL session's transactions from the server's answers, in the order the
 * server gave them (a statement that succeeded, an error, ReadyForQuery's status), and reports
 * the statements that succeeded in a transaction that then did not commit: an explicit ROLLBACK
 * (or a COMMIT answered ROLLBACK), a COMMIT that failed, a ROLLBACK TO SAVEPOINT, an error in an
 * implicit transaction (the statements of one simple Query, or of an extended-protocol batch
 * up to its Sync, including a failed implicit COMMIT at that Sync), and a session that ended
 * inside a transaction (the server rolls back what a closed connection left open).
 *
 * It claims a rollback only when the server's answers prove it. Where they cannot (a CALL or DO
 * outside a transaction block may commit inside; a PREPARE TRANSACTION hands the outcome to a
 * later COMMIT PREPARED; a statement in flight when the session ended; a savepoint it could not
 * name), it forgets the statements it holds: they stay as the server answered them.
 */
export class TransactionTracker {
  /** Statements that succeeded in the open transaction, in order (a Set: a portal fetched in parts is one). */
  #ran = new Set<string>();
  /** Statements past MAX_TRACKED in the open transaction. */
  #uncounted = 0;
  /** Savepoints in force: where each began in `#ran`. */
  #savepoints: { name: string; at: number }[] = [];
  /** The server holds an explicit transaction block open (BEGIN, or ReadyForQuery T/E). */
  #block = false;
  /** The error that aborted the open block, if one did. */
  #failure: { commandId: string | undefined; code: string; commit: boolean } | undefined;

  constructor(private readonly undone: (commandIds: string[], reason: string, code: string | null) => void) {}

  /** A statement the server answered with success (CommandComplete, a FunctionCall's result, a portal suspended). */
  ran(command: TrackedCommand, tag: string | null): void {
    const verb = tag === null ? '' : tag.replace(/ \d+( \d+)?$/, '');
    // Outside a block a procedure or DO block may COMMIT inside: what came before may be committed.
    if ((verb === 'CALL' || verb === 'DO') && !this.#block) return this.#mayHaveCommitted();
    if (!CONTROL_TAGS.has(verb)) return this.#add(command.event_id);
    const node = transactionNode(command.text);
    switch (verb) {
      case 'BEGIN':
      case 'START TRANSACTION':
        // Statements of the same implicit transaction before it join the block.
        this.#block = true;
        return;
      case 'COMMIT':
        this.#forget();
        this.#block = node?.chain === true;
        return;
      case 'PREPARE TRANSACTION':
        // COMMIT PREPARED or ROLLBACK PREPARED decides it later, from any session.
        this.#forget();
        this.#block = false;
        return;
      case 'SAVEPOINT':
        if (node?.kind !== 'TRANS_STMT_SAVEPOINT' || this.#savepoints.length >= MAX_SAVEPOINTS) return this.#mayHaveCommitted();
        this.#savepoints.push({ name: String(node.savepoint_name), at: this.#ran.size });
        return;
      case 'RELEASE': {
        const i = node?.kind === 'TRANS_STMT_RELEASE' ? this.#savepoint(String(node.savepoint_name)) : -1;
        if (i < 0) return this.#mayHaveCommitted();
        this.#savepoints.length = i; // it and every savepoint after it; their statements stay in the transaction
        return;
      }
      case 'ROLLBACK': {
        if (node?.kind === 'TRANS_STMT_ROLLBACK_TO') {
          const name = String(node.savepoint_name);
          const i = this.#savepoint(name);
          if (i < 0) return this.#mayHaveCommitted();
          const mark = this.#savepoints[i]!;
          this.#savepoints.length = i + 1; // the savepoint stays
          this.#failure = undefined;
          return this.#undo(mark.at, `ROLLBACK TO SAVEPOINT ${name} (command ${command.event_id}) undid it`, null);
        }
        // ROLLBACK, ABORT, or a COMMIT or PREPARE TRANSACTION of a failed transaction.
        const what = node?.kind === 'TRANS_STMT_COMMIT' ? 'the server answered COMMIT' : node?.kind === 'TRANS_STMT_PREPARE' ? 'the server answered PREPARE TRANSACTION' : 'the transaction ended';
        this.#undo(0, `${what} with ROLLBACK (command ${command.event_id})`, this.#failure?.code ?? null);
        this.#block = node?.chain === true;
        return;
      }
    }
  }

  /** The server answered an error; `command` is the statement it answers, when it is one. */
  failed(command: TrackedCommand | undefined, code: string): void {
    if (command !== undefined && !this.#block && mayCommitInside(command.text)) return this.#mayHaveCommitted();
    if (this.#block) {
      // The block is aborted; what ends it (ROLLBACK, ROLLBACK TO, a COMMIT that failed) decides.
      this.#failure ??= { commandId: command?.event_id, code, commit: command !== undefined && transactionNode(command.text)?.kind === 'TRANS_STMT_COMMIT' };
      return;
    }
    const what = command === undefined ? 'a message before Sync (or the implicit COMMIT at Sync) failed' : `command ${command.event_id} failed`;
    this.#undo(0, `${what} (${code}) in the same implicit transaction`, code);
  }

  /** ReadyForQuery: the server's own word on where the session stands. */
  ready(status: TxStatus): void {
    if (status !== 'I') {
      this.#block = true;
      return;
    }
    // Idle: the transaction is over. A block that failed and ended without ROLLBACK ended in its error.
    const f = this.#failure;
    if (this.#block && f !== undefined) {
      const by = f.commandId === undefined ? '' : `, command ${f.commandId}`;
      this.#undo(0, `${f.commit ? 'COMMIT failed' : 'the transaction ended in an error'} (${f.code}${by})`, f.code);
    }
    this.#forget();
    this.#block = false;
  }

  /**
   * The session ended. With nothing in flight, an open block was rolled back by the server; with
   * a statement in flight (perhaps its COMMIT), Agate cannot know, and claims nothing.
   */
  ended(inFlight: boolean): void {
    if (this.#block && !inFlight) this.#undo(0, 'the session ended inside the transaction: the target rolls back what a closed connection leaves open', null);
    this.#forget();
    this.#block = false;
  }

  #add(commandId: string): void {
    if (this.#ran.has(commandId)) return;
    if (this.#ran.size >= MAX_TRACKED) this.#uncounted += 1;
    else this.#ran.add(commandId);
  }

  #savepoint(name: string): number {
    for (let i = this.#savepoints.length - 1; i >= 0; i--) if (this.#savepoints[i]!.name === name) return i;
    return -1;
  }

  /** Reports the statements from position `from` on as rolled back, and drops them. */
  #undo(from: number, why: string, code: string | null): void {
    const all = [...this.#ran];
    const ids = all.slice(from);
    this.#ran = new Set(all.slice(0, from));
    const more = from === 0 && this.#uncounted > 0 ? ` (and ${this.#uncounted} later statements of the transaction Agate does not name: it names at most ${MAX_TRACKED})` : '';
    if (from === 0) {
      this.#uncounted = 0;
      this.#savepoints = [];
      this.#failure = undefined;
    }
    if (ids.length > 0) this.undone(ids, `rolled back: ${why}${more}`, code);
  }

  /** The statements held may have committed without the server saying so here: no claim is made about them. */
  #mayHaveCommitted(): void {
    this.#forget();
  }

  #forget(): void {
    this.#ran.clear();
    this.#uncounted = 0;
    this.#savepoints = [];
    this.#failure = undefined;
  }
}

/** A CALL or DO, which may COMMIT inside when run outside a transaction block. */
function mayCommitInside(text: string): boolean {
  const a = analyzeSql(text);
  return !a.ok || a.statements.some((s) => s.kind === 'CallStmt' || s.kind === 'DoStmt');
}

/** The TransactionStmt of a one-statement text, or undefined (not one, or unparsable). */
function transactionNode(text: string): { kind?: string; chain?: boolean; savepoint_name?: string } | undefined {
  const a = analyzeSql(text);
  if (!a.ok || a.statements.length !== 1) return undefined;
  return (a.statements[0]!.node as { TransactionStmt?: { kind?: string; chain?: boolean; savepoint_name?: string } }).TransactionStmt;
}

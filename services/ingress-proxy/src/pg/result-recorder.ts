import { randomUUID } from 'node:crypto';
import type { Parser } from 'pg-protocol/dist/parser.js';
import { nowMicros, type Command, type Response } from '../../../../schemas/src/events.js';
import type { BackendFrame } from './backend-frames.js';
import { decodeFrame } from './upstream.js';

const enum Code {
  DataRow = 0x44, // D
  CopyData = 0x64, // d
  CommandComplete = 0x43, // C
  EmptyQueryResponse = 0x49, // I
  ErrorResponse = 0x45, // E
  ReadyForQuery = 0x5a, // Z
}

/**
 * Follows the server's replies to one simple Query and records a Response per statement:
 * each CommandComplete, EmptyQueryResponse or ErrorResponse ends the current statement; after
 * an error the server skips the rest of the string.
 */
export class ResultRecorder {
  #index = 0;
  #rows = 0;
  #bytes = 0;
  #started = nowMicros();

  constructor(private readonly commands: readonly Command[], private readonly emit: (response: Response) => void) {}

  observe(frame: BackendFrame, parser: Parser): void {
    switch (frame.code) {
      case Code.DataRow:
        this.#rows += 1;
        this.#bytes += frame.raw.length - 5;
        return;
      case Code.CopyData:
        this.#bytes += frame.raw.length - 5;
        return;
      case Code.CommandComplete: {
        const tag = (decodeFrame(parser, frame.raw) as { text?: string }).text ?? '';
        return this.#finish({ status: 'ok', command_tag: tag, rows: rowsFromTag(tag) ?? this.#rows });
      }
      case Code.EmptyQueryResponse:
        return this.#finish({ status: 'ok', command_tag: null, rows: 0 });
      case Code.ErrorResponse: {
        const e = decodeFrame(parser, frame.raw) as { code?: string; message?: string };
        this.#finish({ status: 'error', rows: this.#rows, error_code: e.code ?? null, error_message: e.message ?? null });
        return this.abandon('not run: an earlier statement in the same query failed');
      }
      case Code.ReadyForQuery:
        return this.abandon('the server ended the query without a result for this statement');
    }
  }

  /** Records every statement still open as skipped. */
  abandon(reason: string): void {
    while (this.#index < this.commands.length) this.#finish({ status: 'skipped', rows: 0, error_message: reason });
  }

  #finish(r: Pick<Response, 'status' | 'rows'> & Partial<Pick<Response, 'command_tag' | 'error_code' | 'error_message'>>): void {
    const command = this.commands[this.#index];
    if (command === undefined) return; // e.g. the EmptyQueryResponse of a string with no statements
    const now = nowMicros();
    this.emit({
      type: 'Response', event_id: randomUUID(), time: now, session_id: command.session_id, command_id: command.event_id,
      status: r.status, command_tag: r.command_tag ?? null, rows: r.rows, bytes: r.status === 'skipped' ? 0 : this.#bytes,
      duration_us: r.status === 'skipped' ? 0 : now - this.#started, error_code: r.error_code ?? null, error_message: r.error_message ?? null,
    });
    this.#index += 1;
    this.#rows = 0;
    this.#bytes = 0;
    this.#started = now;
  }

  static refusedResponse(command: Command, sqlstate: string, message: string): Response {
    return {
      type: 'Response', event_id: randomUUID(), time: nowMicros(), session_id: command.session_id, command_id: command.event_id,
      status: 'refused', command_tag: null, rows: 0, bytes: 0, duration_us: 0, error_code: sqlstate, error_message: message,
    };
  }
}

/** Row counts the server states in the tag: `SELECT 3`, `INSERT 0 1`, `UPDATE 2`, `COPY 5`. */
function rowsFromTag(tag: string): number | undefined {
  const m = /^(SELECT|INSERT \d+|UPDATE|DELETE|MERGE|FETCH|MOVE|COPY) (\d+)$/.exec(tag);
  return m === null ? undefined : Number(m[2]);
}

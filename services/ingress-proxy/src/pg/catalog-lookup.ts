import type { Socket } from 'node:net';
import { serialize } from 'pg-protocol';
import { AgateError, ErrorCode } from '../../../../core/src/errors.js';
import { decodeDataRow, decodeErrorResponse } from './backend-decode.js';
import { BackendFrameReader, type BackendFrame } from './backend-frames.js';
import { BackendCode } from './messages.js';

/** Opens Agate's own upstream connection for catalog lookups (authenticated, ready for queries). */
export type OpenCatalog = () => Promise<Socket>;

const LOOKUP_TIMEOUT_MS = 10_000;

/**
 * Agate's own connection to a session's target, for questions about its catalog (function-names.ts,
 * stored-code.ts). It is opened with Agate's credential on the first question, never shared with
 * the client's session (whose transaction may be open or failed), and asks one question at a time.
 * Every text it runs is Agate's own: nothing from the client reaches it.
 */
export class CatalogLookup {
  #socket: Promise<Socket> | undefined;
  #queue: Promise<unknown> = Promise.resolve();
  #closed = false;
  readonly #open: OpenCatalog;
  readonly #maxMessageSize: number;

  constructor(open: OpenCatalog, maxMessageSize: number) {
    this.#open = open;
    this.#maxMessageSize = maxMessageSize;
  }

  /** Runs `sql` (one simple Query) after the questions before it: its rows as text. */
  select(sql: string): Promise<(string | null)[][]> {
    const task = () => this.#select(sql);
    const next = this.#queue.then(task, task);
    this.#queue = next.catch(() => undefined);
    return next;
  }

  /** Ends the connection, if one was opened. */
  close(): void {
    this.#closed = true;
    void this.#socket?.then((s) => s.destroy(), () => undefined);
  }

  async #select(sql: string): Promise<(string | null)[][]> {
    if (this.#closed) throw new AgateError(ErrorCode.UPSTREAM_UNREACHABLE, 'the session has ended');
    this.#socket ??= this.#open();
    let socket: Socket;
    try {
      socket = await this.#socket;
    } catch (err) {
      this.#socket = undefined;
      throw err;
    }
    return query(socket, sql, this.#maxMessageSize).catch((err: unknown) => {
      // A connection that closed or timed out is opened again for the next question.
      if (err instanceof AgateError && err.retriable) {
        socket.destroy();
        this.#socket = undefined;
      }
      throw err;
    });
  }
}

/** One simple Query on an idle connection: its rows as text, or an error. */
function query(socket: Socket, sql: string, maxMessageSize: number): Promise<(string | null)[][]> {
  return new Promise((resolve, reject) => {
    const rows: (string | null)[][] = [];
    let failure: Error | undefined;
    const done = (err?: Error) => {
      clearTimeout(timer);
      socket.off('data', onData);
      socket.off('close', onClose);
      socket.pause();
      if (err) reject(err);
      else resolve(rows);
    };
    const onFrame = (frame: BackendFrame) => {
      if (frame.code === BackendCode.DataRow) rows.push(decodeDataRow(frame.raw).map((v) => (v === null ? null : v.toString('utf8'))));
      else if (frame.code === BackendCode.ErrorResponse) failure ??= new AgateError(ErrorCode.UPSTREAM_UNREACHABLE, `catalog lookup failed: ${decodeErrorResponse(frame.raw).message}`);
      else if (frame.code === BackendCode.ReadyForQuery) done(failure);
    };
    const reader = new BackendFrameReader(onFrame, maxMessageSize);
    const onData = (chunk: Buffer) => {
      try {
        reader.push(chunk);
      } catch (err) {
        done(err as Error);
      }
    };
    const onClose = () => done(new AgateError(ErrorCode.UPSTREAM_UNREACHABLE, 'the catalog lookup connection closed', { retriable: true }));
    const timer = setTimeout(() => done(new AgateError(ErrorCode.UPSTREAM_UNREACHABLE, 'the catalog lookup did not answer in time', { retriable: true })), LOOKUP_TIMEOUT_MS);
    socket.on('data', onData);
    socket.on('close', onClose);
    socket.resume();
    socket.write(serialize.query(sql));
  });
}

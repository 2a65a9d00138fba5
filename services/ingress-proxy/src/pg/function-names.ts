import type { Socket } from 'node:net';
import { serialize } from 'pg-protocol';
import { AgateError, ErrorCode } from '../../../../core/src/errors.js';
import { decodeDataRow, decodeErrorResponse } from './backend-decode.js';
import { BackendFrameReader, type BackendFrame } from './backend-frames.js';
import { BackendCode } from './messages.js';

/** A function as a protocol FunctionCall names it: by OID, resolved to its schema and name. */
interface FunctionName {
  schema: string;
  name: string;
}

/** Opens Agate's own upstream connection for catalog lookups (authenticated, ready for queries). */
type OpenCatalog = () => Promise<Socket>;

const LOOKUP_TIMEOUT_MS = 10_000;

/**
 * Resolves the OIDs of protocol FunctionCall messages (large objects: lo_open, loread, lowrite,
 * lo_creat, lo_unlink…) to `schema.name`, so a call can be decided and recorded by the function
 * it calls. Lookups go over a separate connection Agate opens with its own credential on the
 * first call, never over the client's session (whose transaction may be open or failed); each
 * OID is looked up once per session. An OID no function has resolves to undefined.
 */
export class FunctionNames {
  readonly #cache = new Map<number, Promise<FunctionName | undefined>>();
  #socket: Promise<Socket> | undefined;
  #queue: Promise<unknown> = Promise.resolve();
  #closed = false;

  readonly #open: OpenCatalog;
  readonly #maxMessageSize: number;

  constructor(open: OpenCatalog, maxMessageSize: number) {
    this.#open = open;
    this.#maxMessageSize = maxMessageSize;
  }

  resolve(oid: number): Promise<FunctionName | undefined> {
    let found = this.#cache.get(oid);
    if (found === undefined) {
      found = this.#serial(() => this.#lookup(oid));
      // A failed lookup (connection lost) is tried again next time rather than remembered.
      found.catch(() => this.#cache.delete(oid));
      this.#cache.set(oid, found);
    }
    return found;
  }

  /** Ends the lookup connection, if one was opened. */
  close(): void {
    this.#closed = true;
    void this.#socket?.then((s) => s.destroy(), () => undefined);
  }

  #serial<T>(task: () => Promise<T>): Promise<T> {
    const next = this.#queue.then(task, task);
    this.#queue = next.catch(() => undefined);
    return next;
  }

  async #lookup(oid: number): Promise<FunctionName | undefined> {
    if (this.#closed) throw new AgateError(ErrorCode.UPSTREAM_UNREACHABLE, 'the session has ended');
    this.#socket ??= this.#open();
    let socket: Socket;
    try {
      socket = await this.#socket;
    } catch (err) {
      this.#socket = undefined;
      throw err;
    }
    // The OID is a number Agate formats itself: nothing from the client reaches this text.
    const sql = `SELECT n.nspname, p.proname FROM pg_catalog.pg_proc p JOIN pg_catalog.pg_namespace n ON n.oid = p.pronamespace WHERE p.oid = ${oid >>> 0}`;
    const rows = await query(socket, sql, this.#maxMessageSize);
    const row = rows[0];
    if (row === undefined || row[0] == null || row[1] == null) return undefined;
    return { schema: row[0], name: row[1] };
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

/** The SQL a FunctionCall amounts to, `SELECT schema.name($1, …)`, for policy and the record. */
export function functionCallText(fn: FunctionName, args: number): string {
  const ident = (s: string) => (/^[a-z_][a-z0-9_]*$/.test(s) ? s : `"${s.replace(/"/g, '""')}"`);
  const params = Array.from({ length: args }, (_, i) => `$${i + 1}`).join(', ');
  return `SELECT ${ident(fn.schema)}.${ident(fn.name)}(${params})`;
}

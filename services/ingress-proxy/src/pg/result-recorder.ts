import { createHash, randomUUID, type Hash } from 'node:crypto';
import { PREPARED_ATTRIBUTE } from '../../../../core/src/sql/prepared.js';
import { nowMicros, type Command, type Response, type ResponseStatus } from '../../../../schemas/src/events.js';
import { eventId } from '../../../../schemas/src/event-id.js';
import { decodeDataRow, type Column } from './backend-decode.js';
import { maskDataRow } from './masking/data-row.js';
import { MASKED_VALUE, Masker } from '../masking/masker.js';
import type { MaskReadings } from './masking/mask-readings.js';
import { maskCopyLine, maskJsonKeys, type StatementSecrets } from './masking/statement-secrets.js';
import { hidesSecret, valueText } from './value-text.js';

/** Result columns that return a value the statement set: `set_config` answers with the new value. */
const SECRET_RESULTS = new Set(['set_config']);

/** How much of each result the audit trail keeps, and the mask set it always applies. */
export interface RecordingOptions {
  sampleRows: number;
  valueChars: number;
  audit: Masker;
  /** The proxy's memo of which statements carry a masked column (derived-columns.ts). */
  readings: MaskReadings;
}

export interface Outcome {
  status: ResponseStatus;
  command_tag?: string | null;
  rows?: number;
  error_code?: string | null;
  error_message?: string | null;
}

/**
 * One statement's result as it streams to the client: counts, duration, a SHA-256 digest over
 * every DataRow/CopyData frame as delivered, the column names, and the first rows masked with
 * the audit set (and the client set, if stricter). When `client` is set, each row is masked
 * before delivery too; {@link row} then returns the rebuilt frame.
 */
export class StatementResult {
  #rows = 0;
  /** Rows of each Execute that ended suspended (a row limit), in order; the rows since belong to the next. */
  readonly #fetches: number[] = [];
  #fetched = 0;
  #bytes = 0;
  #masked = 0;
  #hash: Hash | undefined;
  #columns: readonly Column[] | undefined;
  readonly #sample: (string | null)[][] = [];
  readonly #started = nowMicros();
  readonly #audit: Masker;
  /** The mask set for what the client receives; undefined delivers rows unchanged. */
  readonly client: Masker | undefined;

  readonly #options: RecordingOptions;
  readonly #describe: () => readonly Column[] | undefined;
  readonly #copy: StatementSecrets['copy'] | undefined;

  constructor(
    readonly command: Command,
    options: RecordingOptions,
    /** The mask set for what the client receives; undefined delivers rows unchanged. */
    client: Masker | undefined,
    /** Columns known before the rows arrive (an extended-protocol portal's Describe). */
    describe: () => readonly Column[] | undefined = () => undefined,
    /** A COPY's columns (from its statement), so column rules reach the sampled lines. */
    copy?: StatementSecrets['copy'],
  ) {
    this.#options = options;
    this.#describe = describe;
    this.#copy = copy;
    // A statement that can return a masked column under another name is masked whole.
    // EXECUTE returns what its PREPARE selected: both texts are read.
    const prepared = command.attributes[PREPARED_ATTRIBUTE];
    const text = prepared === undefined ? command.text : `${command.text};\n${prepared}`;
    const whole = (m: Masker) => (options.readings.carries(text, m) ? Masker.whole(m) : m);
    this.client = client === undefined ? undefined : whole(client);
    this.#audit = Masker.union(whole(options.audit), this.client);
  }

  get columns(): readonly Column[] | undefined {
    return this.#columns ?? this.#describe();
  }

  /** A RowDescription in the result itself (simple query). */
  setColumns(columns: readonly Column[]): void {
    this.#columns = columns;
  }

  /** Takes one DataRow frame; returns the frame to deliver. Throws MaskingError (fail closed). */
  row(frame: Buffer): Buffer {
    const columns = this.columns;
    if (this.#rows < this.#options.sampleRows) this.#sample.push(this.#sampleRow(frame, columns));
    let out = frame;
    if (this.client !== undefined) {
      const m = maskDataRow(frame, columns, this.client);
      out = m.frame;
      this.#masked += m.masked;
    }
    this.#rows += 1;
    this.#delivered(out);
    return out;
  }

  /**
   * Takes one CopyData frame: from the server (`toClient`, masked for the client when its set
   * says so) or from the client (COPY FROM STDIN, passed on unchanged). COPY lines are sampled
   * with the statement's column list (a field of a masked column, or every field when the
   * columns are unknown, is masked) and the detectors.
   */
  copyData(frame: Buffer, toClient: boolean): Buffer {
    if (this.#sample.length < this.#options.sampleRows) {
      // One CopyData may carry many lines (psql's \copy) or part of one; the sample keeps lines.
      const lines = this.#audit.maskText(frame.toString('utf8', 5)).text.split('\n');
      if (lines[lines.length - 1] === '') lines.pop();
      const copy = this.#copy;
      const masked = (line: string) => (copy !== undefined && this.#audit.hasColumnRules ? maskCopyLine(line, copy, this.#audit) : line);
      for (const line of lines.slice(0, this.#options.sampleRows - this.#sample.length)) this.#sample.push([this.#cut(masked(line))]);
    }
    let out = frame;
    if (toClient && this.client !== undefined) {
      const m = this.client.maskText(frame.toString('utf8', 5));
      if (m.count > 0) {
        out = copyDataFrame(m.text);
        this.#masked += m.count;
      }
    }
    this.#delivered(out);
    return out;
  }

  /** An Execute with a row limit ended with rows left (PortalSuspended): one fetch of the portal. */
  suspend(): void {
    this.#fetches.push(this.#rows - this.#fetched);
    this.#fetched = this.#rows;
  }

  /** Whether part of the result was delivered by an earlier Execute of the same portal. */
  get suspended(): boolean {
    return this.#fetches.length > 0;
  }

  /**
   * The Response event; `rows` defaults to the rows seen. A portal fetched in parts is one
   * command: its rows are the total and `fetches` the rows of each Execute; one that delivered
   * rows and then ended unfinished (closed, its transaction over, the session gone) ran, so it is
   * recorded as ok with no tag rather than skipped.
   */
  response(outcome: Outcome): Response {
    if (this.suspended && outcome.status === 'skipped') return this.unfinished();
    return this.#build(outcome, this.suspended ? [...this.#fetches, this.#rows - this.#fetched] : []);
  }

  /**
   * The Response of a portal suspended at a row limit that ended before its last row. The server
   * never sent its tag, so `rows` counts the rows returned; the message says that this is not
   * how many rows it changed (an INSERT, UPDATE, DELETE or MERGE … RETURNING runs whole at its
   * first Execute).
   */
  unfinished(): Response {
    const message = `the portal closed after ${this.#rows} rows were returned, before its last row: rows are the rows returned before the portal closed, not how many it changed (PostgreSQL runs an INSERT, UPDATE, DELETE or MERGE … RETURNING whole at its first Execute and reports the count only with its last row)`;
    // Agate's own words, no data of the statement's: not put through the mask set (which may mask a whole statement's text).
    return { ...this.#build({ status: 'ok', command_tag: null }, this.#fetches.slice()), error_message: message };
  }

  #build(outcome: Outcome, fetches: number[]): Response {
    const now = nowMicros();
    // The server's tag counts only the last Execute's rows.
    const rows = fetches.length > 0 ? this.#rows : (outcome.rows ?? this.#rows);
    const ran = outcome.status === 'ok' || outcome.status === 'error';
    return {
      type: 'Response', event_id: eventId(), time: now, session_id: this.command.session_id, command_id: this.command.event_id,
      status: outcome.status, command_tag: outcome.command_tag ?? null, rows, bytes: ran ? this.#bytes : 0,
      duration_us: ran ? now - this.#started : 0, error_code: outcome.error_code ?? null,
      error_message: outcome.error_message == null ? null : this.#audit.maskText(outcome.error_message).text,
      digest: this.#hash === undefined ? null : `sha256:${this.#hash.digest('hex')}`,
      columns: (this.columns ?? []).map((c) => c.name), sample: this.#sample, masked_values: this.#masked,
      fetches,
    };
  }

  #delivered(frame: Buffer): void {
    this.#bytes += frame.length - 5;
    (this.#hash ??= createHash('sha256')).update(frame);
  }

  #sampleRow(frame: Buffer, columns: readonly Column[] | undefined): (string | null)[] {
    return decodeDataRow(frame).map((value, i) => {
      if (value === null) return null;
      const column = columns?.[i];
      if (column !== undefined && (this.#audit.masksColumn(column.name) || SECRET_RESULTS.has(column.name))) return MASKED_VALUE;
      if (column === undefined && this.#audit.hasColumnRules) return MASKED_VALUE; // unknown column: assume the worst
      const text = valueText(value, column?.format ?? 0, column?.typeOid ?? 0);
      if (hidesSecret(text, this.#audit)) return MASKED_VALUE;
      return this.#cut(this.#audit.maskText(maskJsonKeys(text, this.#audit)?.text ?? text).text);
    });
  }

  #cut(text: string): string {
    return text.length <= this.#options.valueChars ? text : `${text.slice(0, this.#options.valueChars)}…`;
  }
}

function copyDataFrame(text: string): Buffer {
  const body = Buffer.from(text, 'utf8');
  const frame = Buffer.allocUnsafe(5 + body.length);
  frame[0] = 0x64; // d
  frame.writeInt32BE(4 + body.length, 1);
  body.copy(frame, 5);
  return frame;
}

/** A Response for a command Agate refused or the server never reached. */
export function unranResponse(command: Command, status: 'refused' | 'skipped', code: string | null, message: string): Response {
  return {
    type: 'Response', event_id: randomUUID(), time: nowMicros(), session_id: command.session_id, command_id: command.event_id,
    status, command_tag: null, rows: 0, bytes: 0, duration_us: 0, error_code: code, error_message: message,
    digest: null, columns: [], sample: [], masked_values: 0, fetches: [],
  };
}

/**
 * The second Response of a statement that succeeded in a transaction that then did not commit:
 * status `error`, tag `ROLLBACK` (no answer of the server has both), no rows, `reason` naming
 * what ended the transaction and `code` the SQLSTATE of the error that ended it, if one did. The
 * statement's first Response, what the server answered it, stays as it was.
 */
export function rolledBackResponse(sessionId: string, commandId: string, reason: string, code: string | null): Response {
  return {
    type: 'Response', event_id: randomUUID(), time: nowMicros(), session_id: sessionId, command_id: commandId,
    status: 'error', command_tag: 'ROLLBACK', rows: 0, bytes: 0, duration_us: 0, error_code: code, error_message: reason,
    digest: null, columns: [], sample: [], masked_values: 0, fetches: [],
  };
}

/** Row counts the server states in the tag: `SELECT 3`, `INSERT 0 1`, `UPDATE 2`, `COPY 5`. */
export function rowsFromTag(tag: string): number | undefined {
  const m = /^(SELECT|INSERT \d+|UPDATE|DELETE|MERGE|FETCH|MOVE|COPY) (\d+)$/.exec(tag);
  return m === null ? undefined : Number(m[2]);
}

/**
 * The audit store as services see it: ClickHouse SQL, results as JSON rows. Implementations:
 * the embedded engine (chdb, one process) and a ClickHouse server (over HTTP).
 */
export interface Store {
  /** Runs statements that return nothing (DDL, mutations). */
  exec(sql: string): Promise<void>;
  /** Runs a query with server-side bound `{name:Type}` parameters; rows as plain objects. */
  query<T extends object>(sql: string, params?: Record<string, unknown>): Promise<T[]>;
  /** Inserts rows given as objects keyed by column name. */
  insert(table: string, rows: readonly Record<string, unknown>[]): Promise<void>;
  /**
   * Inserts a ready-made TabSeparated payload into the named columns: one row per line, with
   * `\\`, tab and newline escaped. Lets bulk writers send binary values (hashes, encoded events)
   * without a JSON round trip.
   */
  insertTsv(table: string, columns: readonly string[], payload: Buffer): Promise<void>;
  /**
   * Inserts RowBinary rows (see RowBinaryWriter) into the named columns; `structure` names each
   * column's type as written (`name Type, …`, LowCardinality as its inner type). A server reads
   * the types from the table and ignores it; the embedded engine needs it to read the bytes.
   */
  insertRowBinary(table: string, columns: readonly string[], structure: string, payload: Buffer, options?: InsertOptions): Promise<void>;
  /** Runs a query and returns its result bytes in RowBinary, for fixed-width bulk reads. */
  queryRowBinary(sql: string, params?: Record<string, unknown>): Promise<Buffer>;
  close(): Promise<void>;
}

export interface InsertOptions {
  /**
   * The engine's insert deduplication token (`insert_deduplication_token`): of the inserts into
   * one table partition carrying the same token, the first is stored and the later ones are
   * dropped without an error, for as long as the table remembers the token (its deduplication
   * window). What makes a ledger insert a claim on the records it adds (chain-writer.ts).
   */
  dedupToken?: string;
}

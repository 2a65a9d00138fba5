/**
 * The audit store as services see it: ClickHouse SQL, results as JSON rows. Implementations:
 * the embedded engine (chdb, one process) and, later, a ClickHouse server.
 */
export interface Store {
  /** Runs statements that return nothing (DDL, mutations). */
  exec(sql: string): Promise<void>;
  /** Runs a query with server-side bound `{name:Type}` parameters; rows as plain objects. */
  query<T extends object>(sql: string, params?: Record<string, unknown>): Promise<T[]>;
  /** Inserts rows given as objects keyed by column name. */
  insert(table: string, rows: readonly Record<string, unknown>[]): Promise<void>;
  close(): Promise<void>;
}

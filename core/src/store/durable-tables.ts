import type { Store } from './store.js';

/**
 * MergeTree settings of every table Agate records into (the ledger's, and the session tables
 * the ledger's inserts fill through materialized views):
 * - `fsync_after_insert`, `fsync_part_directory`: an INSERT returns only once its part's files
 *   and directory are on disk, so a bus position committed after it never runs ahead of what a
 *   power cut leaves in the store (without them the bus would not deliver those events again).
 *   Measured: about 3 % fewer ledger events/s appended (29 fdatasyncs per 10,000-row insert).
 * - `old_parts_lifetime`: seconds a part a merge replaced is kept before it is deleted. 480 is
 *   ClickHouse's server default; the embedded engine sets 0. Merged parts are not fsynced, so
 *   after a power cut one may be damaged, and the engine then brings back the parts it replaced
 *   if they are still there. With 0 one power cut could take records stored long before it.
 */
export const DURABLE_TABLE_SETTINGS: TableSettings = { old_parts_lifetime: 480, fsync_after_insert: 1, fsync_part_directory: 1 };

/** MergeTree settings by name; numbers only, so they print the same in DDL and in `engine_full`. */
export type TableSettings = Readonly<Record<string, number>>;

/** Settings as DDL: `name = value, ...` for a table's SETTINGS clause. */
export const settingsSql = (settings: TableSettings): string => Object.entries(settings).map(([k, v]) => `${k} = ${v}`).join(', ');

/** DURABLE_TABLE_SETTINGS as DDL. */
export const DURABLE_SETTINGS_SQL = settingsSql(DURABLE_TABLE_SETTINGS);

/**
 * Each of `settings`' names' value in a table's DDL, or 'engine default'; undefined when the
 * table does not exist.
 */
export async function tableSettingsOf(store: Store, database: string, table: string, settings: TableSettings): Promise<Record<string, string> | undefined> {
  const [row] = await store.query<{ engine_full: string }>('SELECT engine_full FROM system.tables WHERE database = {db:String} AND name = {t:String}', { db: database, t: table });
  if (row === undefined) return undefined;
  return Object.fromEntries(Object.keys(settings).map((k) => [k, new RegExp(`\\b${k} = (\\d+)`).exec(row.engine_full)?.[1] ?? 'engine default']));
}

/**
 * Gives the named tables of `database` that exist the settings they lack or hold at another
 * value (tables an earlier version created). Idempotent.
 */
export async function ensureTableSettings(store: Store, database: string, tables: readonly string[], settings: TableSettings): Promise<void> {
  for (const table of tables) {
    const have = await tableSettingsOf(store, database, table, settings);
    if (have === undefined) continue;
    const missing = Object.entries(settings).filter(([k, v]) => have[k] !== String(v));
    if (missing.length > 0) await store.exec(`ALTER TABLE ${database}.${table} MODIFY SETTING ${settingsSql(Object.fromEntries(missing))}`);
  }
}

/** Each DURABLE_TABLE_SETTINGS name's value in a table's DDL (tableSettingsOf). */
export const durableSettingsOf = (store: Store, database: string, table: string) => tableSettingsOf(store, database, table, DURABLE_TABLE_SETTINGS);

/** Gives the named tables the DURABLE_TABLE_SETTINGS they lack (ensureTableSettings). */
export const ensureDurable = (store: Store, database: string, tables: readonly string[]) => ensureTableSettings(store, database, tables, DURABLE_TABLE_SETTINGS);

import { AgateError, ConfigError, ErrorCode } from '../errors.js';
import type { Store } from './store.js';

/**
 * The store's DDL for a ClickHouse cluster, derived from the single-server DDL so that the two
 * can never drift apart. Every MergeTree table `agate.T` becomes
 * - `agate.T_local`: the same columns, indexes and settings on a Replicated*MergeTree engine
 *   (one Keeper path per shard, `{shard}` and `{replica}` from each server's macros), and
 * - `agate.T`: a Distributed table over `T_local`, so that every service, view and analyst
 *   query keeps reading and writing `agate.T` unchanged.
 * Views read the Distributed tables; materialized views fire on inserts into a shard's local
 * table, so they read `T_local` and write `U_local` on the same shard. Every statement runs
 * `ON CLUSTER`.
 */

/** How rows of one table spread over shards: a ClickHouse expression over its columns. */
export type ShardingKeys = Readonly<Record<string, string>>;

interface ClusterDdlOptions {
  /** The cluster's name in the servers' `remote_servers`. */
  cluster: string;
  /** Sharding key per table name (without database); every MergeTree table needs one. */
  shardingKeys: ShardingKeys;
  /** Keeper path prefix of the replicated tables; `{shard}` is expanded by each server. */
  keeperPath?: string;
}

const LOCAL = '_local';
const NAME = /^[A-Za-z_][A-Za-z0-9_]*$/;

/** The single-server statements rewritten for a cluster, in the order they must run. */
export function clusterDdl(statements: readonly string[], options: ClusterDdlOptions): string[] {
  const { cluster, shardingKeys } = options;
  if (!NAME.test(cluster)) throw new ConfigError(`cluster name "${cluster}" is not a plain identifier`);
  const keeperPath = options.keeperPath ?? '/clickhouse/tables/{shard}';
  const on = `ON CLUSTER ${cluster}`;
  const localised = new Set<string>();
  const out: string[] = [];
  for (const sql of statements) {
    const head = /^CREATE (DATABASE|TABLE|(?:OR REPLACE )?VIEW|MATERIALIZED VIEW)( IF NOT EXISTS)? (\w+)(?:\.(\w+))?/.exec(sql);
    if (head === null) throw new ConfigError(`cannot place on a cluster: ${sql.slice(0, 60)}`);
    const [whole, kind, , db, table] = head;
    const rest = sql.slice(whole.length);
    const engine = /ENGINE = (\w*MergeTree)\b(?!\()/.exec(rest);
    if (kind === 'TABLE' && engine !== null && table !== undefined) {
      const key = shardingKeys[table];
      if (key === undefined) throw new ConfigError(`no sharding key for ${db}.${table}`);
      const local = `${table}${LOCAL}`;
      localised.add(table);
      const replicated = `ENGINE = Replicated${engine[1]}('${keeperPath}/${db}/${local}', '{replica}')`;
      out.push(`${whole.replace(`${db}.${table}`, `${db}.${local}`)} ${on}${rest.replace(engine[0], replicated)}`);
      out.push(`CREATE TABLE IF NOT EXISTS ${db}.${table} ${on} AS ${db}.${local}\n  ENGINE = Distributed(${cluster}, ${db}, ${local}, ${key})`);
    } else if (kind === 'MATERIALIZED VIEW') {
      // Fires on the shard's own inserts: source and destination are the local tables.
      const toLocal = (s: string) => s.replace(/\b(FROM|TO) (\w+)\.(\w+)\b/g, (m, word: string, d: string, t: string) => (localised.has(t) ? `${word} ${d}.${t}${LOCAL}` : m));
      out.push(`${whole} ${on}${toLocal(rest)}`);
    } else {
      out.push(`${whole} ${on}${rest}`);
    }
  }
  return out;
}

/** `sql` without its `ON CLUSTER name` clause: runs the statement on one server only. */
export const withoutOnCluster = (sql: string): string => sql.replace(/ ON CLUSTER \w+/, '');

/** True when `database.table` exists as a Distributed table: the store is a cluster laid out by clusterDdl. */
export async function isDistributed(store: Store, database: string, table: string): Promise<boolean> {
  const [row] = await store.query<{ engine: string }>('SELECT engine FROM system.tables WHERE database = {db:String} AND name = {t:String}', { db: database, t: table });
  return row?.engine === 'Distributed';
}

/**
 * Fails unless inserts into Distributed tables return only once the shards hold the rows
 * (`distributed_foreground_insert`): otherwise an insert returns when the rows are queued on the
 * server that took it, and the bus position committed after it would run ahead of the store.
 */
export async function requireForegroundInserts(store: Store): Promise<void> {
  const [row] = await store.query<{ value: string }>("SELECT value FROM system.settings WHERE name = 'distributed_foreground_insert'");
  if (row?.value !== '1') {
    throw new AgateError(ErrorCode.STORE_FAILED, "the store is a ClickHouse cluster (agate.ledger is Distributed) but inserts into Distributed tables are queued, not written to the shards before they return: set distributed_foreground_insert = 1 in the profile of Agate's ClickHouse user");
  }
}

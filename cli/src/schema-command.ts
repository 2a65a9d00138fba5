import type { AgateConfig } from '../../core/src/config.js';
import { clusterDdl, type ShardingKeys } from '../../core/src/store/cluster-ddl.js';
import { ledgerDdl } from '../../services/ledger/src/schema.js';
import { QUERY_DDL, SESSION_TABLES_DDL, SESSION_VIEWS } from '../../services/query/src/schema.js';

/**
 * Where each table's rows live on a cluster. A chain stays on one shard: the ledger appends to
 * it in seq order, reads its head back, and verification scans it, so its records, tree nodes,
 * checkpoints and command facts share `chain_id`'s shard; the session tables are filled on that
 * same shard by their materialized views. Per-session counters are merged by `GROUP BY` at read
 * time, so their placement only has to be stable.
 */
export const SHARDING_KEYS: ShardingKeys = {
  ledger: 'cityHash64(chain_id)',
  tree_nodes: 'cityHash64(chain_id)',
  checkpoints: 'cityHash64(chain_id)',
  q_command_facts: 'cityHash64(chain_id)',
  q_sessions: 'cityHash64(chain_id)',
  q_session_stats: 'cityHash64(session_id)',
};

/**
 * Every statement a fresh single server runs to hold Agate's store, in order: the ledger's
 * tables and views, then the query service's (the same statements the services run at start).
 * A statement whose object an earlier one made (the query service's placeholder `checkpoints`
 * view, kept for stores without a ledger) is left out.
 */
export function storeDdl(): string[] {
  const statements = [
    ...ledgerDdl(),
    ...SESSION_TABLES_DDL,
    ...SESSION_VIEWS.map((v) => `CREATE MATERIALIZED VIEW IF NOT EXISTS ${v.name} TO ${v.to} AS ${v.select}`),
    ...QUERY_DDL,
  ];
  const made = new Set<string>();
  return statements.filter((sql) => {
    const name = /^CREATE (?:DATABASE|TABLE|(?:OR REPLACE )?VIEW|MATERIALIZED VIEW)(?: IF NOT EXISTS)? ([\w.]+)/.exec(sql)?.[1];
    if (name === undefined || !/IF NOT EXISTS/.test(sql.slice(0, 60))) return true;
    if (made.has(name)) return false;
    made.add(name);
    return true;
  });
}

/**
 * `agate schema --config F [--cluster NAME]`: the store's DDL as a script for clickhouse-client
 * (`--multiquery`), for a single server or, with `--cluster`, for a cluster (replicated local
 * tables, Distributed tables over them, ON CLUSTER). Agate's services create the single-server
 * schema themselves; a cluster's is applied by its operator and the services then leave it alone.
 */
export function schemaCommand(config: AgateConfig, cluster: string | undefined): number {
  const statements = cluster === undefined ? storeDdl() : clusterDdl(storeDdl(), { cluster, shardingKeys: SHARDING_KEYS });
  const where = cluster === undefined ? 'a single ClickHouse server' : `the ClickHouse cluster ${cluster} (its servers need {shard} and {replica} macros, Keeper, and distributed_foreground_insert = 1 in the profile of Agate's user)`;
  const kind = config.store.kind === 'embedded' ? ' (this config uses the embedded store, which creates its own schema)' : '';
  console.log(`-- Agate store schema for ${where}${kind}.\n`);
  for (const sql of statements) console.log(`${sql};\n`);
  return 0;
}

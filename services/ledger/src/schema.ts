import { AgateError, ErrorCode } from '../../../core/src/errors.js';
import { DURABLE_SETTINGS_SQL, ensureDurable, ensureTableSettings, settingsSql, type TableSettings } from '../../../core/src/store/durable-tables.js';
import { isDistributed, requireForegroundInserts } from '../../../core/src/store/cluster-ddl.js';
import type { Store } from '../../../core/src/store/store.js';

/** Records per partition: a power of two, so a dropped partition is one complete subtree. */
export const BLOCK_SIZE = 1 << 20;

/** Parts on disk before an INSERT returns, replaced parts kept a while (core/src/store/durable-tables.ts). */
const SETTINGS_SQL = `SETTINGS ${DURABLE_SETTINGS_SQL}`;
const LEDGER_TABLES = ['ledger', 'tree_nodes', 'checkpoints'] as const;

/**
 * How the engine lays out and merges the ledger's parts. Records arrive in inserts of up to
 * INSERT_SLICE (chain-writer.ts), and with the default merge selector (base 5) each record of a
 * block was rewritten about three times before its block reached one part: merges took a
 * quarter of the append's CPU. Base 20 waits for about twenty parts of a size before merging
 * them, so a record is rewritten about once or twice per block, for more parts in the block
 * being written (measured: 13.4-14.2 against 15.0-16.5 µs of CPU per appended event). A block
 * no insert has touched for ten minutes (every block before the current one) is then merged
 * into one part for the queries and verification that read it. Parts under 64 MiB stay compact
 * (one data file instead of two per column substream): an insert's part would otherwise pass
 * the engine's 10 MiB default and take some 80 files to create and fsync.
 */
const LEDGER_MERGE_SETTINGS: TableSettings = {
  merge_selector_base: 20, min_age_to_force_merge_seconds: 600, min_age_to_force_merge_on_partition_only: 1, min_bytes_for_wide_part: 64 << 20,
};

/**
 * How many inserts into agate.ledger the engine remembers the deduplication token of: an insert
 * by a ledger instance that another may also write to claims the records it adds with a token
 * (chain, first seq, the link it extends), and of two claims on one position only the first is
 * stored (ChainWriter's fencing, chain-writer.ts). The window must outlast the moment between one
 * instance's head check and its insert; 10,000 inserts are minutes of the busiest ledger. A
 * cluster's ReplicatedMergeTree uses its own replicated_deduplication_window (default 10,000).
 */
const LEDGER_CLAIM_SETTINGS: TableSettings = { non_replicated_deduplication_window: 10_000 };

/** Every setting the ledger table is given, new or made by an earlier version. */
export const LEDGER_TABLE_SETTINGS: TableSettings = { ...LEDGER_MERGE_SETTINGS, ...LEDGER_CLAIM_SETTINGS };

/**
 * Where the bus stream stood just past each record's event (chain.ts RECORD_COLUMNS): it grows
 * with seq, so a minmax index finds a position in a granule or two.
 */
const SOURCE_NEXT_COLUMN = `source_next UInt64 DEFAULT 0 COMMENT 'bus position just past the event (0: unknown); not bound by the link' CODEC(Delta, ZSTD(1))`;
const SOURCE_NEXT_INDEX = 'INDEX source_next_idx source_next TYPE minmax GRANULARITY 1';

interface LedgerSchemaOptions {
  /** Accepted for compatibility: retention drops whole partitions (retention.ts), not by TTL. */
  retentionDays?: number;
}

/**
 * The ledger's tables and the analyst views over them. `ledger` holds one row per event: the
 * encoded event (`payload`, the Merkle leaf), the queryable columns, and the chain link that
 * binds both (chain.ts). Sorted by (chain, seq) for verification and proofs; the two
 * `_part_offset` projections give session timelines and per-identity history their own sort
 * order without copying rows. Partitions are aligned blocks of BLOCK_SIZE records, and the
 * ledger signs a checkpoint at every block boundary, so retention that drops whole partitions
 * (retention.ts) leaves a signed starting point for verification (verify.ts).
 * Portable DDL: needs ClickHouse 25.8 or newer for `_part_offset` projections.
 */
export function ledgerDdl(_options: LedgerSchemaOptions = {}): string[] {
  return [
  `CREATE DATABASE IF NOT EXISTS agate`,
  `CREATE TABLE IF NOT EXISTS agate.ledger (
    chain_id LowCardinality(String),
    seq UInt64 COMMENT 'position in the chain, from 1; Merkle leaf index + 1',
    event_id String,
    event_type LowCardinality(String),
    time DateTime64(6, 'UTC'),
    session_id String,
    subject String COMMENT 'acting identity (claimed subject for a failed login)',
    target LowCardinality(String),
    text String COMMENT 'command text, masked as recorded',
    body String COMMENT 'the decoded event as JSON' CODEC(ZSTD(1)),
    payload String COMMENT 'Avro single-object encoding: the Merkle leaf' CODEC(ZSTD(1)),
    prev_hash FixedString(32),
    hash FixedString(32) COMMENT 'link hash, see chain.ts',
    ${SOURCE_NEXT_COLUMN},
    INDEX event_id_idx event_id TYPE bloom_filter(0.001) GRANULARITY 1,
    INDEX session_idx session_id TYPE bloom_filter(0.001) GRANULARITY 1,
    INDEX subject_idx subject TYPE bloom_filter(0.01) GRANULARITY 1,
    INDEX time_idx time TYPE minmax GRANULARITY 1,
    ${SOURCE_NEXT_INDEX},
    INDEX text_idx lower(text) TYPE ngrambf_v1(3, 65536, 2, 0) GRANULARITY 1,
    PROJECTION by_session (SELECT _part_offset ORDER BY session_id, time, seq),
    PROJECTION by_subject (SELECT _part_offset ORDER BY subject, time, seq)
  ) ENGINE = MergeTree
  PARTITION BY (chain_id, intDiv(seq - 1, ${BLOCK_SIZE}))
  ORDER BY (chain_id, seq)
  ${SETTINGS_SQL}, ${settingsSql(LEDGER_TABLE_SETTINGS)}`,
  `CREATE TABLE IF NOT EXISTS agate.tree_nodes (
    chain_id LowCardinality(String),
    level UInt8 COMMENT 'the node covers 2^level leaves',
    node UInt64 COMMENT 'position among the nodes of its level',
    hash FixedString(32)
  ) ENGINE = ReplacingMergeTree ORDER BY (chain_id, level, node)
  ${SETTINGS_SQL}
  COMMENT 'roots of complete aligned subtrees (tree-tiles.ts): proofs read O(log n) rows'`,
  `CREATE TABLE IF NOT EXISTS agate.checkpoints (
    chain_id LowCardinality(String),
    size UInt64,
    origin String,
    root FixedString(32),
    chain_head FixedString(32),
    note String COMMENT 'the signed checkpoint (C2SP tlog-checkpoint)',
    frontier String COMMENT 'compact range at size, JSON: lets verification start here after expiry',
    created_at DateTime64(3, 'UTC') DEFAULT now64(3)
  ) ENGINE = ReplacingMergeTree ORDER BY (chain_id, size)
  ${SETTINGS_SQL}`,
  `CREATE OR REPLACE VIEW agate.commands AS
    SELECT event_id AS command_id, session_id, time, chain_id, seq,
      JSONExtractUInt(body, 'sequence') AS sequence,
      JSONExtractString(body, 'protocol') AS protocol,
      toString(target) AS target,
      JSONExtractString(body, 'identity', 'issuer') AS issuer,
      subject, text
    FROM agate.ledger WHERE event_type = 'Command'`,
  // The per-session view (agate.sessions) belongs to the query service, which fills its own
  // session tables from this one (services/query/src/schema.ts).
  `CREATE OR REPLACE VIEW agate.verdicts AS
    SELECT event_id AS verdict_id, JSONExtractString(body, 'command_id') AS command_id, session_id, time, chain_id, seq,
      JSONExtractString(body, 'decision') AS decision,
      JSONExtract(body, 'rule_id', 'Nullable(String)') AS rule_id,
      JSONExtractString(body, 'reason') AS reason,
      JSONExtractString(body, 'source') AS source,
      JSONExtractString(body, 'policy_revision') AS policy_revision
    FROM agate.ledger WHERE event_type = 'Verdict'`,
  `CREATE OR REPLACE VIEW agate.responses AS
    SELECT event_id AS response_id, JSONExtractString(body, 'command_id') AS command_id, session_id, time, chain_id, seq,
      JSONExtractString(body, 'status') AS status,
      JSONExtract(body, 'command_tag', 'Nullable(String)') AS command_tag,
      JSONExtractInt(body, 'rows') AS rows,
      JSONExtractInt(body, 'bytes') AS bytes,
      JSONExtractInt(body, 'duration_us') AS duration_us,
      JSONExtract(body, 'error_code', 'Nullable(String)') AS error_code,
      JSONExtract(body, 'error_message', 'Nullable(String)') AS error_message,
      -- Written at start-up for a command a crash cut (unknown, not_forwarded); older records lack it.
      if(JSONHas(body, 'outcome'), JSONExtractString(body, 'outcome'), 'observed') AS outcome
    FROM agate.ledger WHERE event_type = 'Response'`,
  `CREATE OR REPLACE VIEW agate.auth_failures AS
    SELECT event_id, session_id, time, chain_id, seq,
      JSONExtractString(body, 'protocol') AS protocol,
      JSONExtractString(body, 'target') AS target,
      JSONExtractString(body, 'client_address') AS client_address,
      JSONExtractString(body, 'reason_code') AS reason_code,
      JSONExtractString(body, 'message') AS message,
      JSONExtract(body, 'claimed_issuer', 'Nullable(String)') AS claimed_issuer,
      JSONExtract(body, 'claimed_subject', 'Nullable(String)') AS claimed_subject
    FROM agate.ledger WHERE event_type IN ('AuthenticationFailed', 'ApiAuthenticationFailed')`,
  ];
}

/** The oldest ClickHouse the schema runs on (`_part_offset` projections; DateTime64, parameters, skip indexes). */
const MIN_CLICKHOUSE = [25, 8] as const;

export async function migrate(store: Store, options: LedgerSchemaOptions = {}): Promise<void> {
  const [row] = await store.query<{ v: string }>('SELECT version() AS v');
  const [major = 0, minor = 0] = (row?.v ?? '0.0').split('.').map(Number);
  if (major < MIN_CLICKHOUSE[0] || (major === MIN_CLICKHOUSE[0] && minor < MIN_CLICKHOUSE[1])) {
    throw new AgateError(ErrorCode.STORE_FAILED, `ClickHouse ${row?.v} is too old for Agate's ledger schema: it needs ${MIN_CLICKHOUSE.join('.')} or newer (projections, DateTime64, query parameters, skip indexes)`);
  }
  // A cluster's tables are laid out by `agate schema --cluster` (cluster-ddl.ts) and changed ON
  // CLUSTER by its operator: the ALTERs below would reach the Distributed table, not the shards.
  if (await isDistributed(store, 'agate', 'ledger')) return requireForegroundInserts(store);
  for (const ddl of ledgerDdl(options)) await store.exec(ddl);
  // Earlier versions expired rows by TTL, which can drop part of a block; retention now drops whole blocks.
  const [table] = await store.query<{ engine_full: string }>("SELECT engine_full FROM system.tables WHERE database = 'agate' AND name = 'ledger'");
  if (table !== undefined && /\bTTL\b/.test(table.engine_full)) await store.exec('ALTER TABLE agate.ledger REMOVE TTL');
  // Ledgers from before records carried their source position: older rows read 0 (unknown).
  await store.exec(`ALTER TABLE agate.ledger ADD COLUMN IF NOT EXISTS ${SOURCE_NEXT_COLUMN}`);
  await store.exec(`ALTER TABLE agate.ledger ADD ${SOURCE_NEXT_INDEX.replace('INDEX', 'INDEX IF NOT EXISTS')}`);
  // Tables made by earlier versions lack some of the settings (and deleted replaced parts at once).
  await ensureDurable(store, 'agate', LEDGER_TABLES);
  await ensureTableSettings(store, 'agate', ['ledger'], LEDGER_TABLE_SETTINGS);
}

/** `DateTime64(6)` text for a microsecond timestamp. */
export function microsToDateTime64(micros: number): string {
  const iso = new Date(Math.floor(micros / 1000)).toISOString(); // 2026-11-25T17:00:00.123Z
  return `${iso.slice(0, 10)} ${iso.slice(11, 23)}${String(micros % 1000).padStart(3, '0')}`;
}

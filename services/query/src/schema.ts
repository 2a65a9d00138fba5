import { DURABLE_SETTINGS_SQL, ensureDurable } from '../../../core/src/store/durable-tables.js';
import type { Store } from '../../../core/src/store/store.js';

/**
 * Tables and views the query service owns, next to the ledger's (`services/ledger/src/schema.ts`).
 * They read decoded bodies and queryable columns only, never hash columns, so the ledger may
 * change its chain layout freely.
 *
 * - `q_sessions`: one row per opened session, sorted by (subject, opened_at), so one identity's
 *   week is a range read instead of a scan of every SessionOpened body.
 * - `q_session_stats`: per-session counters (commands, denied, decisions seen, closed_at), sorted
 *   by session id. Counts are `uniqExact` over event ids, so a row seen twice (a backfill that
 *   overlaps the materialized view) is counted once. Read by point lookups of random session
 *   ids, so granules and compressed blocks are small: 146 lookups read 146 small blocks, not
 *   146 blocks of 8,192 rows (measured 30 ms against 300–600 ms at 10M events).
 *   Both are filled by materialized views on `agate.ledger` and backfilled once when created,
 *   and are as durable as the ledger's tables (DURABLE_TABLE_SETTINGS).
 * - `sessions`, `session_index`: the analyst views over those two tables.
 * - `approvals`: the approvers' answers to held commands (`ApprovalDecision` events that were
 *   accepted; `refused_reason` is kept as a column, always NULL, for queries written before).
 * - `approval_refusals`: attempts to answer that were refused (403/409), with `refused_reason`:
 *   recorded, never answers.
 * - `approval_requests`: commands a `hold` rule held (`ApprovalRequested` events).
 * - `checkpoints`: signed ledger checkpoints. A placeholder with the documented columns until
 *   the ledger records checkpoints; created only if the ledger has not defined it already.
 */
export const SESSION_TABLES_DDL: readonly string[] = [
  `CREATE TABLE IF NOT EXISTS agate.q_sessions (
    session_id String,
    opened_at DateTime64(6, 'UTC'),
    chain_id LowCardinality(String),
    seq UInt64,
    protocol LowCardinality(String),
    target LowCardinality(String),
    issuer LowCardinality(String),
    subject String,
    claims Map(String, String),
    client_address String,
    proxy_id LowCardinality(String),
    INDEX session_idx session_id TYPE bloom_filter(0.001) GRANULARITY 1
  ) ENGINE = ReplacingMergeTree ORDER BY (subject, opened_at, session_id)
  SETTINGS ${DURABLE_SETTINGS_SQL}`,
  `CREATE TABLE IF NOT EXISTS agate.q_session_stats (
    session_id String,
    commands AggregateFunction(uniqExact, String),
    denied AggregateFunction(uniqExact, String),
    decisions SimpleAggregateFunction(groupUniqArrayArray, Array(String)),
    closed_at SimpleAggregateFunction(max, DateTime64(6, 'UTC'))
  ) ENGINE = AggregatingMergeTree ORDER BY session_id
  SETTINGS index_granularity = 128, min_compress_block_size = 4096, max_compress_block_size = 8192, ${DURABLE_SETTINGS_SQL}`,
];

export const SESSIONS_SELECT = `SELECT session_id, time AS opened_at, chain_id, seq,
      JSONExtractString(body, 'protocol') AS protocol, target,
      JSONExtractString(body, 'identity', 'issuer') AS issuer, subject,
      JSONExtract(body, 'identity', 'claims', 'Map(String, String)') AS claims,
      JSONExtractString(body, 'client_address') AS client_address,
      JSONExtractString(body, 'proxy_id') AS proxy_id
    FROM agate.ledger WHERE event_type = 'SessionOpened'`;

const STATS_SELECT = `SELECT session_id,
      uniqExactStateIf(event_id, event_type = 'Command') AS commands,
      uniqExactStateIf(event_id, event_type = 'Verdict' AND JSONExtractString(body, 'decision') = 'deny') AS denied,
      groupUniqArrayIf(JSONExtractString(body, 'decision'), event_type = 'Verdict') AS decisions,
      maxIf(time, event_type = 'SessionClosed') AS closed_at
    FROM agate.ledger WHERE event_type IN ('Command', 'Verdict', 'SessionClosed') AND session_id != ''
    GROUP BY session_id`;

/** Materialized views keeping the session tables current; each has a one-time backfill. */
export const SESSION_VIEWS: readonly { name: string; to: string; select: string }[] = [
  { name: 'agate.q_sessions_mv', to: 'agate.q_sessions', select: SESSIONS_SELECT },
  { name: 'agate.q_session_stats_mv', to: 'agate.q_session_stats', select: STATS_SELECT },
];

/** Per-session counters merged: one row per session. */
export const STATS_MERGED = `SELECT session_id, uniqExactMerge(commands) AS commands, uniqExactMerge(denied) AS denied, max(closed_at) AS closed_at
      FROM agate.q_session_stats GROUP BY session_id`;

export const QUERY_DDL: readonly string[] = [
  `CREATE OR REPLACE VIEW agate.session_index AS
    SELECT session_id, opened_at, chain_id, seq, toString(protocol) AS protocol, toString(target) AS target,
      toString(issuer) AS issuer, subject, claims, client_address
    FROM agate.q_sessions FINAL`,
  `CREATE OR REPLACE VIEW agate.sessions AS
    SELECT s.session_id AS session_id, s.opened_at AS opened_at, toString(s.protocol) AS protocol, toString(s.target) AS target,
      toString(s.issuer) AS issuer, s.subject AS subject, s.client_address AS client_address, toString(s.proxy_id) AS proxy_id,
      if(toUnixTimestamp64Micro(st.closed_at) = 0, NULL, toNullable(st.closed_at)) AS closed_at,
      st.commands AS commands, st.denied AS denied
    FROM agate.q_sessions AS s FINAL
    LEFT JOIN (${STATS_MERGED}) AS st ON st.session_id = s.session_id`,
  `CREATE OR REPLACE VIEW agate.approvals AS
    SELECT JSONExtractString(body, 'approval_id') AS approval_id, event_id AS decision_id,
      JSONExtractString(body, 'command_id') AS command_id, session_id, time, chain_id, seq,
      JSONExtractString(body, 'decision') AS decision,
      JSONExtractString(body, 'approver_issuer') AS approver_issuer,
      JSONExtractString(body, 'approver_subject') AS approver_subject,
      JSONExtract(body, 'comment', 'Nullable(String)') AS comment,
      JSONExtract(body, 'refused_reason', 'Nullable(String)') AS refused_reason
    FROM agate.ledger WHERE event_type = 'ApprovalDecision' AND JSONExtract(body, 'refused_reason', 'Nullable(String)') IS NULL`,
  `CREATE OR REPLACE VIEW agate.approval_refusals AS
    SELECT JSONExtractString(body, 'approval_id') AS approval_id, event_id AS decision_id,
      JSONExtractString(body, 'command_id') AS command_id, session_id, time, chain_id, seq,
      JSONExtractString(body, 'decision') AS decision,
      JSONExtractString(body, 'approver_issuer') AS approver_issuer,
      JSONExtractString(body, 'approver_subject') AS approver_subject,
      JSONExtract(body, 'comment', 'Nullable(String)') AS comment,
      JSONExtractString(body, 'refused_reason') AS refused_reason
    FROM agate.ledger WHERE event_type = 'ApprovalDecision' AND JSONExtract(body, 'refused_reason', 'Nullable(String)') IS NOT NULL`,
  `CREATE OR REPLACE VIEW agate.approval_requests AS
    SELECT JSONExtractString(body, 'approval_id') AS approval_id, event_id, JSONExtractString(body, 'command_id') AS command_id,
      session_id, time, chain_id, seq,
      JSONExtractString(body, 'rule_id') AS rule_id,
      JSONExtractString(body, 'target') AS target,
      JSONExtractString(body, 'requester_issuer') AS requester_issuer,
      JSONExtractString(body, 'requester_subject') AS requester_subject,
      JSONExtractString(body, 'text') AS text,
      JSONExtractUInt(body, 'required') AS required,
      JSONExtractString(body, 'approvers') AS approvers,
      JSONExtractBool(body, 'allow_self_approval') AS allow_self_approval,
      JSONExtractInt(body, 'expires_at') AS expires_at_us,
      fromUnixTimestamp64Micro(expires_at_us, 'UTC') AS expires_at
    FROM agate.ledger WHERE event_type = 'ApprovalRequested'`,
  // One row per command with its final decision, by the rules of final-decision.ts (the API, the
  // CLI and the OCSF export use that function; approvals/e2e checks this view agrees with them).
  `CREATE OR REPLACE VIEW agate.decisions AS
    SELECT c.command_id AS command_id, c.session_id AS session_id, c.time AS time, c.protocol AS protocol, c.target AS target,
      c.issuer AS issuer, c.subject AS subject, c.text AS text,
      toBool(v.final = '' AND v.held = 1) AS pending,
      if(pending, 'hold', v.final) AS decision,
      multiIf(pending, 'pending', v.final = '', '', v.final_source = 'deadline', 'deadline', v.held = 0, 'policy',
        v.final != 'deny', 'approver', length(deniers) > 0, 'approver', v.final_time >= v.expires_at, 'timeout', 'agate') AS decided_by,
      arrayFilter(x -> x.1 <= v.final_time, a.answers) AS counted,
      arrayFilter(x -> x.3 = 'deny', counted) AS deniers,
      if(decided_by != 'approver', CAST([] AS Array(String)),
        if(v.final = 'deny', [deniers[1].2], arrayDistinct(arrayMap(x -> x.2, arrayFilter(x -> x.3 = 'approve', counted))))) AS approvers,
      v.final_rule AS rule_id, v.final_reason AS reason, toBool(v.held = 1) AS held, v.approval_id AS approval_id,
      r.status AS status, r.rows AS rows, r.bytes AS bytes, r.error_message AS error_message
    FROM agate.commands AS c
    LEFT JOIN (
      SELECT command_id, argMaxIf(d, seq, d != 'hold') AS final, argMaxIf(source, seq, d != 'hold') AS final_source,
        argMaxIf(rule, seq, d != 'hold') AS final_rule, argMaxIf(reason, seq, d != 'hold') AS final_reason,
        maxIf(time, d != 'hold') AS final_time, max(d = 'hold') AS held,
        anyIf(approval, d = 'hold') AS approval_id, fromUnixTimestamp64Micro(anyIf(expires, d = 'hold'), 'UTC') AS expires_at
      FROM (SELECT JSONExtractString(body, 'command_id') AS command_id, seq, time, JSONExtractString(body, 'decision') AS d,
          JSONExtractString(body, 'source') AS source, JSONExtract(body, 'rule_id', 'Nullable(String)') AS rule,
          JSONExtractString(body, 'reason') AS reason, JSONExtractString(body, 'approval_id') AS approval,
          JSONExtractInt(body, 'hold_expires_at') AS expires
        FROM agate.ledger WHERE event_type = 'Verdict')
      GROUP BY command_id) AS v ON v.command_id = c.command_id
    LEFT JOIN (
      SELECT command_id, arraySort(groupArray((time, approver_subject, decision))) AS answers FROM agate.approvals GROUP BY command_id
    ) AS a ON a.command_id = c.command_id
    LEFT JOIN (
      SELECT command_id, argMin(status, seq) AS status, argMin(rows, seq) AS rows, argMin(bytes, seq) AS bytes, argMin(error_message, seq) AS error_message
      FROM agate.responses GROUP BY command_id) AS r ON r.command_id = c.command_id`,
  `CREATE VIEW IF NOT EXISTS agate.checkpoints AS
    SELECT CAST('' AS String) AS chain_id, CAST(0 AS UInt64) AS size, CAST('' AS String) AS root_hash,
      CAST(0 AS DateTime64(6, 'UTC')) AS signed_at, CAST('' AS String) AS key_id, CAST('' AS String) AS signature
    FROM system.one WHERE 0`,
];

/**
 * Runs after the ledger's migration (the views read `agate.ledger`). Idempotent. A session
 * table created by this run is backfilled from the ledger after its materialized view exists,
 * so no event falls between the two (one caught by both is absorbed by the table engines).
 */
export async function migrateQuery(store: Store): Promise<void> {
  const existing = new Set((await store.query<{ name: string }>("SELECT name FROM system.tables WHERE database = 'agate'")).map((r) => `agate.${r.name}`));
  for (const ddl of SESSION_TABLES_DDL) await store.exec(ddl);
  // Filled by the ledger's inserts: durable like the ledger's own tables (earlier versions made them without).
  await ensureDurable(store, 'agate', ['q_sessions', 'q_session_stats']);
  for (const v of SESSION_VIEWS) {
    await store.exec(`CREATE MATERIALIZED VIEW IF NOT EXISTS ${v.name} TO ${v.to} AS ${v.select}`);
    if (!existing.has(v.to)) await store.exec(`INSERT INTO ${v.to} ${v.select}`);
  }
  for (const ddl of QUERY_DDL) await store.exec(ddl);
}

/** The views analysts may query with SQL, documented in README.md. */
export const ANALYST_VIEWS = ['sessions', 'commands', 'decisions', 'verdicts', 'responses', 'approvals', 'approval_refusals', 'approval_requests', 'checkpoints', 'auth_failures', 'session_index'] as const;

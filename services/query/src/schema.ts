import { DURABLE_SETTINGS_SQL, ensureDurable } from '../../../core/src/store/durable-tables.js';
import { isDistributed } from '../../../core/src/store/cluster-ddl.js';
import type { Store } from '../../../core/src/store/store.js';
import { EXPIRY_SLACK_US } from './final-decision.js';

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
 * - `q_command_facts`: per command, the statement type, effect classes and tables of a SQL
 *   command and the command's attributes, filled by facts-index.ts (the engine cannot parse
 *   PostgreSQL) before analyst SQL runs; verification recomputes them (facts-check.ts).
 * - `sessions`, `session_index`: the analyst views over those two tables (`sessions` with the
 *   session's `application_name` and `target_user`).
 * - `decisions`: one row per command with its final decision and its response's status and
 *   `outcome` (`observed`; `unknown` or `not_forwarded` for a command a crash cut, closed at the
 *   next start; empty without a response), and `rolled_back` when a later Response says its
 *   transaction did not commit; `activity`: the same with what the statement is and
 *   touches and what was masked; `table_access`: one row per table a command names.
 * - `approvals`: the approvers' answers to held commands (`ApprovalDecision` events that were
 *   accepted; `refused_reason` is kept as a column, always NULL, for queries written before).
 * - `approval_refusals`: attempts to answer that were refused (403/409), with `refused_reason`:
 *   `ApprovalRefused` events (and, from records before schema v7, `ApprovalDecision` events that
 *   carried a `refused_reason`): recorded, never answers.
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
    attributes Map(String, String),
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
  // Filled by facts-index.ts, not by a materialized view: the engine cannot parse PostgreSQL.
  `CREATE TABLE IF NOT EXISTS agate.q_command_facts (
    command_id String,
    chain_id LowCardinality(String),
    seq UInt64,
    statement LowCardinality(String),
    kinds Array(LowCardinality(String)),
    effects Array(LowCardinality(String)),
    table_names Array(String),
    table_schemas Array(String),
    table_access Array(LowCardinality(String)),
    unbounded_write Bool,
    analysis_error String,
    attributes Map(String, String) COMMENT 'the Command''s attributes: Kubernetes verb, resource, namespace, name; SSH request, path…'
  ) ENGINE = ReplacingMergeTree ORDER BY (chain_id, seq, command_id)
  SETTINGS ${DURABLE_SETTINGS_SQL}`,
];

/** The q_sessions view's SELECT over `source` (agate.ledger, or a range of it when refilled: session-refill.ts). */
const sessionsSelect = (source: string) => `SELECT session_id, time AS opened_at, chain_id, seq,
      JSONExtractString(body, 'protocol') AS protocol, target,
      JSONExtractString(body, 'identity', 'issuer') AS issuer, subject,
      JSONExtract(body, 'identity', 'claims', 'Map(String, String)') AS claims,
      JSONExtractString(body, 'client_address') AS client_address,
      JSONExtractString(body, 'proxy_id') AS proxy_id,
      JSONExtract(body, 'attributes', 'Map(String, String)') AS attributes
    FROM ${source} WHERE event_type = 'SessionOpened'`;

export const SESSIONS_SELECT = sessionsSelect('agate.ledger');

const statsSelect = (source: string) => `SELECT session_id,
      uniqExactStateIf(event_id, event_type = 'Command') AS commands,
      uniqExactStateIf(event_id, event_type = 'Verdict' AND JSONExtractString(body, 'decision') = 'deny') AS denied,
      groupUniqArrayIf(JSONExtractString(body, 'decision'), event_type = 'Verdict') AS decisions,
      maxIf(time, event_type = 'SessionClosed') AS closed_at
    FROM ${source} WHERE event_type IN ('Command', 'Verdict', 'SessionClosed') AND session_id != ''
    GROUP BY session_id`;

/**
 * Materialized views keeping the session tables current; each has a one-time backfill, and
 * `selectFrom` derives its rows from part of the ledger again (session-refill.ts). Deriving the
 * same ledger rows twice changes nothing: q_sessions replaces a session's row with an equal
 * one, and q_session_stats counts distinct event ids (uniqExact), keeps distinct decisions
 * and the latest close.
 */
export const SESSION_VIEWS: readonly { name: string; to: string; select: string; selectFrom: (source: string) => string }[] = [
  { name: 'agate.q_sessions_mv', to: 'agate.q_sessions', select: SESSIONS_SELECT, selectFrom: sessionsSelect },
  { name: 'agate.q_session_stats_mv', to: 'agate.q_session_stats', select: statsSelect('agate.ledger'), selectFrom: statsSelect },
];

/** Per-session counters merged: one row per session. */
export const STATS_MERGED = `SELECT session_id, uniqExactMerge(commands) AS commands, uniqExactMerge(denied) AS denied, max(closed_at) AS closed_at
      FROM agate.q_session_stats GROUP BY session_id`;

/** The SELECT list an answer to an approval and a refused attempt at one share: `approvals` and `approval_refusals` must list them alike. */
const DECISION_SELECT = `SELECT JSONExtractString(body, 'approval_id') AS approval_id, event_id AS decision_id,
      JSONExtractString(body, 'command_id') AS command_id, session_id, time, chain_id, seq,
      JSONExtractString(body, 'decision') AS decision,
      JSONExtractString(body, 'approver_issuer') AS approver_issuer,
      JSONExtractString(body, 'approver_subject') AS approver_subject,
      JSONExtract(body, 'comment', 'Nullable(String)') AS comment,`;

export const QUERY_DDL: readonly string[] = [
  `CREATE OR REPLACE VIEW agate.session_index AS
    SELECT session_id, opened_at, chain_id, seq, toString(protocol) AS protocol, toString(target) AS target,
      toString(issuer) AS issuer, subject, claims, client_address
    FROM agate.q_sessions FINAL`,
  `CREATE OR REPLACE VIEW agate.sessions AS
    SELECT s.session_id AS session_id, s.opened_at AS opened_at, toString(s.protocol) AS protocol, toString(s.target) AS target,
      toString(s.issuer) AS issuer, s.subject AS subject, s.client_address AS client_address, toString(s.proxy_id) AS proxy_id,
      if(toUnixTimestamp64Micro(st.closed_at) = 0, NULL, toNullable(st.closed_at)) AS closed_at,
      st.commands AS commands, st.denied AS denied,
      s.attributes['application_name'] AS application_name,
      if(s.protocol = 'ssh', s.attributes['upstream_user'], s.attributes['user']) AS target_user,
      s.claims AS claims, s.attributes AS attributes
    FROM agate.q_sessions AS s FINAL
    LEFT JOIN (${STATS_MERGED}) AS st ON st.session_id = s.session_id`,
  `CREATE OR REPLACE VIEW agate.approvals AS
    ${DECISION_SELECT}
      JSONExtract(body, 'refused_reason', 'Nullable(String)') AS refused_reason
    FROM agate.ledger WHERE event_type = 'ApprovalDecision' AND JSONExtract(body, 'refused_reason', 'Nullable(String)') IS NULL`,
  `CREATE OR REPLACE VIEW agate.approval_refusals AS
    ${DECISION_SELECT}
      JSONExtractString(body, 'refused_reason') AS refused_reason
    FROM agate.ledger WHERE event_type = 'ApprovalRefused'
      OR (event_type = 'ApprovalDecision' AND JSONExtract(body, 'refused_reason', 'Nullable(String)') IS NOT NULL)`,
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
        v.final != 'deny', 'approver', length(deniers) > 0, 'approver', v.final_time >= v.expires_at - toIntervalMicrosecond(${EXPIRY_SLACK_US}), 'timeout', 'agate') AS decided_by,
      arrayFilter(x -> x.1 <= v.final_time, a.answers) AS counted,
      arrayFilter(x -> x.3 = 'deny', counted) AS deniers,
      if(decided_by != 'approver', CAST([] AS Array(String)),
        if(v.final = 'deny', [deniers[1].2], arrayDistinct(arrayMap(x -> x.2, arrayFilter(x -> x.3 = 'approve', counted))))) AS approvers,
      v.final_rule AS rule_id, v.final_reason AS reason, toBool(v.held = 1) AS held, v.approval_id AS approval_id,
      r.status AS status, r.outcome AS outcome, r.rows AS rows, r.bytes AS bytes, r.error_message AS error_message,
      c.sequence AS sequence, if(v.final = '', NULL, toNullable(v.final_time)) AS decided_at,
      if(v.held = 1, toNullable(v.expires_at), NULL) AS expires_at, v.final_mask_set AS mask_set,
      toBool(r.undone > 0) AS rolled_back, r.rollback_reason AS rollback_reason
    FROM agate.commands AS c
    LEFT JOIN (
      SELECT command_id, argMaxIf(d, seq, d != 'hold') AS final, argMaxIf(source, seq, d != 'hold') AS final_source,
        argMaxIf(rule, seq, d != 'hold') AS final_rule, argMaxIf(reason, seq, d != 'hold') AS final_reason,
        argMaxIf(mask_set, seq, d != 'hold') AS final_mask_set,
        maxIf(time, d != 'hold') AS final_time, max(d = 'hold') AS held,
        anyIf(approval, d = 'hold') AS approval_id, fromUnixTimestamp64Micro(anyIf(expires, d = 'hold'), 'UTC') AS expires_at
      FROM (SELECT JSONExtractString(body, 'command_id') AS command_id, seq, time, JSONExtractString(body, 'decision') AS d,
          JSONExtractString(body, 'source') AS source, JSONExtract(body, 'rule_id', 'Nullable(String)') AS rule,
          JSONExtractString(body, 'reason') AS reason, JSONExtractString(body, 'approval_id') AS approval,
          JSONExtractInt(body, 'hold_expires_at') AS expires, JSONExtract(body, 'mask_set', 'Nullable(String)') AS mask_set
        FROM agate.ledger WHERE event_type = 'Verdict')
      GROUP BY command_id) AS v ON v.command_id = c.command_id
    LEFT JOIN (
      SELECT command_id, arraySort(groupArray((time, approver_subject, decision))) AS answers FROM agate.approvals GROUP BY command_id
    ) AS a ON a.command_id = c.command_id
    LEFT JOIN (
      SELECT command_id, argMin(status, seq) AS status, argMin(outcome, seq) AS outcome, argMin(rows, seq) AS rows, argMin(bytes, seq) AS bytes,
        argMin(error_message, seq) AS error_message,
        -- A later Response with status error and tag ROLLBACK: the statement's transaction did not commit (pg/transactions.ts).
        countIf(undo) AS undone, argMinIf(undo_reason, seq, undo) AS rollback_reason
      FROM (SELECT *, status = 'error' AND ifNull(command_tag, '') = 'ROLLBACK' AS undo, error_message AS undo_reason FROM agate.responses)
      GROUP BY command_id) AS r ON r.command_id = c.command_id`,
  // Who did what to which object, under which decision by whom: one row per command (the
  // decisions view plus what the statement is and touches, its session's application, and what
  // was masked). Facts come from q_command_facts (facts-index.ts); the masked columns from the
  // response's recorded sample, masked with the audit set and the client's.
  `CREATE OR REPLACE VIEW agate.activity AS
    SELECT d.command_id AS command_id, d.session_id AS session_id, d.sequence AS sequence, d.time AS time,
      d.protocol AS protocol, d.target AS target, d.issuer AS issuer, d.subject AS subject,
      s.application_name AS application_name, s.client_address AS client_address, d.text AS text,
      f.statement AS statement, f.kinds AS kinds, f.effects AS effects,
      arrayDistinct(arrayFilter((t, a) -> a = 'read', f.qualified, f.table_access)) AS tables_read,
      arrayDistinct(arrayFilter((t, a) -> a = 'write', f.qualified, f.table_access)) AS tables_written,
      f.unbounded_write AS unbounded_write, f.analysis_error AS analysis_error, f.attributes AS attributes,
      d.decision AS decision, d.decided_by AS decided_by, d.approvers AS approvers, d.rule_id AS rule_id, d.reason AS reason,
      d.held AS held, d.approval_id AS approval_id, d.decided_at AS decided_at, d.mask_set AS mask_set,
      d.status AS status, d.outcome AS outcome, r.command_tag AS command_tag, d.rows AS rows, d.bytes AS bytes, r.duration_us AS duration_us,
      d.error_message AS error_message, r.masked_values AS masked_values, r.masked_columns AS masked_columns,
      d.rolled_back AS rolled_back, d.rollback_reason AS rollback_reason
    FROM agate.decisions AS d
    LEFT JOIN (
      SELECT command_id, statement, kinds, effects, table_access, unbounded_write, analysis_error, attributes,
        arrayMap((n, sc) -> if(sc = '', n, concat(sc, '.', n)), table_names, table_schemas) AS qualified
      FROM agate.q_command_facts FINAL) AS f ON f.command_id = d.command_id
    LEFT JOIN (
      SELECT session_id, attributes['application_name'] AS application_name, client_address FROM agate.q_sessions FINAL
    ) AS s ON s.session_id = d.session_id
    LEFT JOIN (
      SELECT command_id, argMin(tag, seq) AS command_tag, argMin(duration, seq) AS duration_us, argMin(masked, seq) AS masked_values,
        argMin(arrayFilter((c, i) -> arrayExists(row -> startsWith(ifNull(row[i], ''), '[masked'), sample), columns, arrayEnumerate(columns)), seq) AS masked_columns
      FROM (SELECT JSONExtractString(body, 'command_id') AS command_id, seq,
          JSONExtract(body, 'command_tag', 'Nullable(String)') AS tag, JSONExtractInt(body, 'duration_us') AS duration,
          JSONExtractInt(body, 'masked_values') AS masked, JSONExtract(body, 'columns', 'Array(String)') AS columns,
          JSONExtract(body, 'sample', 'Array(Array(Nullable(String)))') AS sample
        FROM agate.ledger WHERE event_type = 'Response')
      GROUP BY command_id) AS r ON r.command_id = d.command_id`,
  // One row per table a command names: which commands read or wrote a table, and who decided them.
  `CREATE OR REPLACE VIEW agate.table_access AS
    SELECT d.command_id AS command_id, d.session_id AS session_id, d.time AS time, d.target AS target, d.issuer AS issuer,
      d.subject AS subject, d.text AS text, f.statement AS statement,
      f.table_name AS table_name, f.table_schema AS table_schema,
      if(f.table_schema = '', f.table_name, concat(f.table_schema, '.', f.table_name)) AS qualified_name, f.access AS access,
      d.decision AS decision, d.decided_by AS decided_by, d.approvers AS approvers, d.status AS status, d.rows AS rows,
      d.rolled_back AS rolled_back
    FROM (
      SELECT command_id, statement, table_name, table_schema, toString(access) AS access FROM agate.q_command_facts FINAL
      ARRAY JOIN table_names AS table_name, table_schemas AS table_schema, table_access AS access
    ) AS f
    INNER JOIN agate.decisions AS d ON d.command_id = f.command_id`,
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
  // A cluster's tables and views come from `agate schema --cluster`, applied by its operator (ledger schema.ts).
  if (await isDistributed(store, 'agate', 'ledger')) return;
  const existing = new Set((await store.query<{ name: string }>("SELECT name FROM system.tables WHERE database = 'agate'")).map((r) => `agate.${r.name}`));
  for (const ddl of SESSION_TABLES_DDL) await store.exec(ddl);
  await addSessionAttributes(store, existing);
  // Filled by the ledger's inserts: durable like the ledger's own tables (earlier versions made them without).
  await ensureDurable(store, 'agate', ['q_sessions', 'q_session_stats']);
  for (const v of SESSION_VIEWS) {
    await store.exec(`CREATE MATERIALIZED VIEW IF NOT EXISTS ${v.name} TO ${v.to} AS ${v.select}`);
    if (!existing.has(v.to)) await store.exec(`INSERT INTO ${v.to} ${v.select}`);
  }
  for (const ddl of QUERY_DDL) await store.exec(ddl);
}

/**
 * `q_sessions` made by an earlier version lacks `attributes` (application name, database user):
 * the column is added, the materialized view remade to fill it, and the table refilled from the
 * ledger (the ReplacingMergeTree keeps the refilled row of each session). `existing` loses the
 * table so that migrateQuery refills it after the new view exists.
 */
async function addSessionAttributes(store: Store, existing: Set<string>): Promise<void> {
  if (!existing.has('agate.q_sessions')) return;
  const [has] = await store.query<{ n: string }>("SELECT count() AS n FROM system.columns WHERE database = 'agate' AND table = 'q_sessions' AND name = 'attributes'");
  const mv = await store.query<{ q: string }>("SELECT create_table_query AS q FROM system.tables WHERE database = 'agate' AND name = 'q_sessions_mv'");
  if (Number(has?.n) > 0 && mv.every((r) => r.q.includes("'attributes'"))) return;
  await store.exec('ALTER TABLE agate.q_sessions ADD COLUMN IF NOT EXISTS attributes Map(String, String) AFTER proxy_id');
  await store.exec('DROP VIEW IF EXISTS agate.q_sessions_mv');
  existing.delete('agate.q_sessions');
}

/** The views analysts may query with SQL, documented in docs/analyst-sql.md. */
export const ANALYST_VIEWS = ['sessions', 'commands', 'decisions', 'activity', 'table_access', 'verdicts', 'responses', 'approvals', 'approval_refusals', 'approval_requests', 'checkpoints', 'auth_failures', 'session_index'] as const;

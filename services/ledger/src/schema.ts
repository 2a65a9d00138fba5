import { AgateError, ErrorCode } from '../../../core/src/errors.js';
import type { Store } from '../../../core/src/store/store.js';

/**
 * The ledger's tables and the analyst views over them. `ledger` is the hash-chained record;
 * `body` is the decoded event as JSON for querying, and verification checks it against
 * `payload`, so a view can never show what the chain does not prove.
 */
export const LEDGER_DDL: readonly string[] = [
  `CREATE DATABASE IF NOT EXISTS agate`,
  `CREATE TABLE IF NOT EXISTS agate.ledger (
    chain_id LowCardinality(String),
    seq UInt64,
    event_id String,
    event_type LowCardinality(String),
    session_id String,
    time DateTime64(6, 'UTC'),
    payload String COMMENT 'Avro single-object encoding, base64',
    body String COMMENT 'the decoded event as JSON',
    prev_hash String,
    hash String,
    recorded_at DateTime64(3, 'UTC') DEFAULT now64(3),
    INDEX event_id_idx event_id TYPE bloom_filter GRANULARITY 4,
    INDEX session_idx session_id TYPE bloom_filter GRANULARITY 4
  ) ENGINE = MergeTree ORDER BY (chain_id, seq)`,
  `CREATE OR REPLACE VIEW agate.sessions AS
    SELECT session_id,
      anyIf(time, event_type = 'SessionOpened') AS opened_at,
      anyIf(JSONExtractString(body, 'protocol'), event_type = 'SessionOpened') AS protocol,
      anyIf(JSONExtractString(body, 'target'), event_type = 'SessionOpened') AS target,
      anyIf(JSONExtractString(body, 'identity', 'issuer'), event_type = 'SessionOpened') AS issuer,
      anyIf(JSONExtractString(body, 'identity', 'subject'), event_type = 'SessionOpened') AS subject,
      anyIf(JSONExtractString(body, 'client_address'), event_type = 'SessionOpened') AS client_address,
      anyIf(JSONExtractString(body, 'proxy_id'), event_type = 'SessionOpened') AS proxy_id,
      if(countIf(event_type = 'SessionClosed') > 0, toNullable(anyIf(time, event_type = 'SessionClosed')), NULL) AS closed_at,
      countIf(event_type = 'Command') AS commands,
      countIf(event_type = 'Verdict' AND JSONExtractString(body, 'decision') = 'deny') AS denied
    FROM agate.ledger
    WHERE event_type IN ('SessionOpened', 'SessionClosed', 'Command', 'Verdict')
    GROUP BY session_id
    HAVING countIf(event_type = 'SessionOpened') > 0`,
  `CREATE OR REPLACE VIEW agate.commands AS
    SELECT event_id AS command_id, session_id, time, chain_id, seq,
      JSONExtractUInt(body, 'sequence') AS sequence,
      JSONExtractString(body, 'protocol') AS protocol,
      JSONExtractString(body, 'target') AS target,
      JSONExtractString(body, 'identity', 'issuer') AS issuer,
      JSONExtractString(body, 'identity', 'subject') AS subject,
      JSONExtractString(body, 'text') AS text
    FROM agate.ledger WHERE event_type = 'Command'`,
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
      JSONExtract(body, 'error_message', 'Nullable(String)') AS error_message
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
    FROM agate.ledger WHERE event_type = 'AuthenticationFailed'`,
];

/** The oldest ClickHouse whose SQL the ledger schema uses (DateTime64, query parameters, skip indexes). */
export const MIN_CLICKHOUSE = [22, 3] as const;

export async function migrate(store: Store): Promise<void> {
  const [row] = await store.query<{ v: string }>('SELECT version() AS v');
  const [major = 0, minor = 0] = (row?.v ?? '0.0').split('.').map(Number);
  if (major < MIN_CLICKHOUSE[0] || (major === MIN_CLICKHOUSE[0] && minor < MIN_CLICKHOUSE[1])) {
    throw new AgateError(ErrorCode.STORE_FAILED, `ClickHouse ${row?.v} is too old for Agate's ledger schema: it needs ${MIN_CLICKHOUSE.join('.')} or newer (DateTime64, query parameters, skip indexes)`);
  }
  for (const ddl of LEDGER_DDL) await store.exec(ddl);
}

/** `DateTime64(6)` text for a microsecond timestamp. */
export function microsToDateTime64(micros: number): string {
  const iso = new Date(Math.floor(micros / 1000)).toISOString(); // 2026-11-25T17:00:00.123Z
  return `${iso.slice(0, 10)} ${iso.slice(11, 23)}${String(micros % 1000).padStart(3, '0')}`;
}

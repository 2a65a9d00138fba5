import type { Store } from '../../../core/src/store/store.js';

/**
 * Views the query service owns, next to the ledger's (`services/ledger/src/schema.ts`). They read
 * decoded bodies only, never hash columns, so the ledger may change its chain layout freely.
 *
 * - `session_index`: one row per opened session with its identity and claims, for filtering.
 * - `approvals`: decisions on held commands, read from `Approval` events once the approval
 *   workflow records them (empty until then).
 * - `checkpoints`: signed ledger checkpoints. A placeholder with the documented columns until
 *   the ledger records checkpoints; created only if the ledger has not defined it already.
 */
export const QUERY_DDL: readonly string[] = [
  `CREATE OR REPLACE VIEW agate.session_index AS
    SELECT session_id, time AS opened_at, chain_id, seq,
      JSONExtractString(body, 'protocol') AS protocol,
      JSONExtractString(body, 'target') AS target,
      JSONExtractString(body, 'identity', 'issuer') AS issuer,
      JSONExtractString(body, 'identity', 'subject') AS subject,
      JSONExtract(body, 'identity', 'claims', 'Map(String, String)') AS claims,
      JSONExtractString(body, 'client_address') AS client_address
    FROM agate.ledger WHERE event_type = 'SessionOpened'`,
  `CREATE OR REPLACE VIEW agate.approvals AS
    SELECT event_id AS approval_id, JSONExtractString(body, 'command_id') AS command_id, session_id, time, chain_id, seq,
      JSONExtractString(body, 'decision') AS decision,
      JSONExtractString(body, 'approver', 'issuer') AS approver_issuer,
      JSONExtractString(body, 'approver', 'subject') AS approver_subject,
      JSONExtract(body, 'comment', 'Nullable(String)') AS comment
    FROM agate.ledger WHERE event_type = 'Approval'`,
  `CREATE VIEW IF NOT EXISTS agate.checkpoints AS
    SELECT CAST('' AS String) AS chain_id, CAST(0 AS UInt64) AS size, CAST('' AS String) AS root_hash,
      CAST(0 AS DateTime64(6, 'UTC')) AS signed_at, CAST('' AS String) AS key_id, CAST('' AS String) AS signature
    FROM system.one WHERE 0`,
];

/** Runs after the ledger's migration (the views read `agate.ledger`). Idempotent. */
export async function migrateQuery(store: Store): Promise<void> {
  for (const ddl of QUERY_DDL) await store.exec(ddl);
}

/** The views analysts may query with SQL, documented in README.md. */
export const ANALYST_VIEWS = ['sessions', 'commands', 'verdicts', 'responses', 'approvals', 'checkpoints', 'auth_failures', 'session_index'] as const;

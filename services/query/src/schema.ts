import type { Store } from '../../../core/src/store/store.js';

/**
 * Views the query service owns, next to the ledger's (`services/ledger/src/schema.ts`). They read
 * decoded bodies only, never hash columns, so the ledger may change its chain layout freely.
 *
 * - `session_index`: one row per opened session with its identity and claims, for filtering.
 * - `approvals`: every approver's answer to a held command (`ApprovalDecision` events), refused
 *   attempts included (`refused_reason` set).
 * - `approval_requests`: commands a `hold` rule held (`ApprovalRequested` events).
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
    SELECT JSONExtractString(body, 'approval_id') AS approval_id, event_id AS decision_id,
      JSONExtractString(body, 'command_id') AS command_id, session_id, time, chain_id, seq,
      JSONExtractString(body, 'decision') AS decision,
      JSONExtractString(body, 'approver_issuer') AS approver_issuer,
      JSONExtractString(body, 'approver_subject') AS approver_subject,
      JSONExtract(body, 'comment', 'Nullable(String)') AS comment,
      JSONExtract(body, 'refused_reason', 'Nullable(String)') AS refused_reason
    FROM agate.ledger WHERE event_type = 'ApprovalDecision'`,
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
      JSONExtractInt(body, 'expires_at') AS expires_at_us
    FROM agate.ledger WHERE event_type = 'ApprovalRequested'`,
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
export const ANALYST_VIEWS = ['sessions', 'commands', 'verdicts', 'responses', 'approvals', 'approval_requests', 'checkpoints', 'auth_failures', 'session_index'] as const;

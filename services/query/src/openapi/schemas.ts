import { z } from 'zod';

/*
 * The query API's response bodies, as zod schemas. Each `id` becomes a schema under
 * `components.schemas` in the generated OpenAPI document (document.ts), and every use of it a
 * `$ref`. Describe a field here and it is described in the document.
 */

export const ErrorBody = z.object({
  error: z.object({
    code: z.string(),
    message: z.string(),
  }),
}).meta({ id: 'Error' });

export const Row = z.looseObject({}).meta({ id: 'Row' });

export const Session = z.object({
  session_id: z.string(),
  opened_at: z.string(),
  closed_at: z.string().nullable().optional(),
  protocol: z.string(),
  target: z.string(),
  issuer: z.string().optional(),
  subject: z.string(),
  client_address: z.string().optional(),
  proxy_id: z.string().optional(),
  commands: z.number().int(),
  denied: z.number().int(),
}).meta({ id: 'Session' });

export const TimelineRow = z.object({
  command_id: z.string(),
  sequence: z.number().int(),
  time: z.string(),
  text: z.string(),
  decision: z.string().nullable().describe('The final decision (see FinalDecision).').optional(),
  rule_id: z.string().nullable().optional(),
  reason: z.string().nullable().optional(),
  verdict_source: z.string().nullable().optional(),
  status: z.string().nullable().optional(),
  command_tag: z.string().nullable().optional(),
  rows: z.number().int().nullable().optional(),
  bytes: z.number().int().nullable().optional(),
  digest: z.string().nullable().describe('sha256:<hex> over what the target returned (for an sftp file, its data)').optional(),
  duration_us: z.number().int().nullable().optional(),
  error_code: z.string().nullable().optional(),
  error_message: z.string().nullable().optional(),
  rolled_back: z.boolean().describe('The statement succeeded in a transaction that then did not commit (a later response with status error and tag ROLLBACK): its effects never happened; status is still what the target answered.'),
  rollback_reason: z.string().nullable().describe('What ended that transaction.'),
  decided_by: z.enum(['policy', 'approver', 'timeout', 'deadline', 'agate', 'pending']).nullable(),
  approvers: z.array(z.string()),
  approval_id: z.string().nullable(),
}).meta({ id: 'TimelineRow' });

export const TimelineEvent = z.object({
  kind: z.enum(['command', 'verdict', 'approval', 'approval_refused', 'response', 'notification']).describe('approval: an accepted answer; approval_refused: a refused attempt (reason holds refused_reason), recorded but never an answer; notification: a PostgreSQL notification the session received (command_id empty, text the masked payload, channel its channel).'),
  chain_id: z.string(),
  seq: z.number().int(),
  time: z.string(),
  event_id: z.string(),
  command_id: z.string(),
  text: z.string().nullable().optional(),
  decision: z.string().nullable().optional(),
  rule_id: z.string().nullable().optional(),
  reason: z.string().nullable().optional(),
  status: z.string().nullable().optional(),
  command_tag: z.string().nullable().optional(),
  rows: z.number().int().nullable().optional(),
  duration_us: z.number().int().nullable().optional(),
  error_code: z.string().nullable().optional(),
  approver: z.string().nullable().optional(),
  channel: z.string().nullable().optional(),
}).meta({ id: 'TimelineEvent' });

export const Command = z.object({
  command_id: z.string(),
  session_id: z.string(),
  time: z.string(),
  chain_id: z.string(),
  seq: z.number().int(),
  sequence: z.number().int().optional(),
  protocol: z.string().optional(),
  target: z.string().optional(),
  issuer: z.string().optional(),
  subject: z.string().optional(),
  text: z.string(),
}).meta({ id: 'Command' });

const FinalDecision = z.object({
  decision: z.enum(['allow', 'deny', 'mask', 'hold']).describe('What was enforced; hold only while the command still waits.'),
  decided_by: z.enum(['policy', 'approver', 'timeout', 'deadline', 'agate', 'pending']),
  rule_id: z.string().nullable(),
  reason: z.string(),
  verdict_id: z.string(),
  time: z.string(),
  approvers: z.array(z.object({})).describe('The approvers whose answers decided (those who approved, or the one who denied).'),
  hold: z.object({}).nullable().describe('The hold: approval_id, rule_id, held_at, expires_at, required, answers (counted) and refusals (refused attempts with refused_reason, never answers).'),
}).describe('The record\'s final decision, computed by one function from the command\'s verdicts, its hold and the approvers\' answers; every interface (API, CLI, OCSF export) reports it.').meta({ id: 'FinalDecision' });

export const CommandDetail = z.intersection(Command, z.object({
  verdict: z.object({}).nullable().describe('The verdict that settled the command (the hold\'s while it waits).'),
  response: z.object({}).nullable(),
  approvals: z.array(z.object({})).describe('Approvers\' answers that counted; refused attempts are in decision.hold.refusals.'),
  decision: FinalDecision.nullable(),
  verdicts: z.array(z.object({})).describe('Every verdict recorded for the command, in order.'),
})).meta({ id: 'CommandDetail' });

export const CountBucket = z.object({
  bucket: z.string(),
  commands: z.number().int(),
  allowed: z.number().int(),
  denied: z.number().int(),
  held: z.number().int().describe('Commands that were held, whatever their final decision.'),
  masked: z.number().int(),
  pending: z.number().int().describe('Held commands with no final decision yet.'),
}).describe('Each command once, by its final decision: allowed + denied + masked + pending = commands.').meta({ id: 'CountBucket' });

export const AuthFailure = z.object({
  event_id: z.string(),
  time: z.string(),
  protocol: z.string().optional(),
  target: z.string().optional(),
  client_address: z.string().optional(),
  reason_code: z.string(),
  message: z.string().optional(),
  claimed_issuer: z.string().nullable().optional(),
  claimed_subject: z.string().nullable().optional(),
}).meta({ id: 'AuthFailure' });

export const Approval = z.object({
  approval_id: z.string(),
  command_id: z.string(),
  session_id: z.string(),
  requested_at: z.string().optional(),
  rule_id: z.string().optional(),
  target: z.string().optional(),
  requester_issuer: z.string().optional(),
  requester_subject: z.string().optional(),
  text: z.string().optional(),
  required: z.number().int(),
  expires_at: z.string(),
  status: z.enum(['pending', 'approved', 'denied', 'expired']),
  approvals: z.number().int().describe('accepted approvals so far'),
  final_reason: z.string().nullable().optional(),
}).meta({ id: 'Approval' });

export const ApprovalDecision = z.object({
  decision_id: z.string(),
  decision: z.enum(['approve', 'deny']),
  approver_issuer: z.string().optional(),
  approver_subject: z.string(),
  comment: z.string().nullable().optional(),
  refused_reason: z.string().nullable().describe('set when the attempt was refused; it then counted for nothing').optional(),
  time: z.string().optional(),
}).meta({ id: 'ApprovalDecision' });

/** A signed checkpoint as the ledger stores it. */
export const StoredCheckpoint = z.object({
  chain_id: z.string(),
  size: z.number().int().describe('the tree size the checkpoint commits to'),
  origin: z.string().describe("the checkpoint's origin line: ORIGIN/CHAIN"),
  note: z.string().describe('the signed checkpoint in C2SP note format'),
}).meta({ id: 'StoredCheckpoint' });

export const InclusionProof = z.object({
  format: z.literal('agate-inclusion-proof/v1'),
  origin: z.string(),
  chain_id: z.string(),
  event_id: z.string(),
  leaf_index: z.number().int(),
  tree_size: z.number().int(),
  leaf: z.string().describe('the Avro-encoded event, base64: the Merkle leaf'),
  hashes: z.array(z.string()).describe('RFC 9162 inclusion path, base64'),
  checkpoint: z.string().describe('the signed checkpoint the proof was made for'),
}).describe('what `agate prove` writes and `agate verify-proof` checks').meta({ id: 'InclusionProof' });

export const ConsistencyProof = z.object({
  format: z.literal('agate-consistency-proof/v1'),
  origin: z.string(),
  old_size: z.number().int(),
  new_size: z.number().int(),
  hashes: z.array(z.string()).describe('RFC 9162 consistency proof, base64'),
  old_checkpoint: z.string(),
  new_checkpoint: z.string(),
}).describe('what `agate consistency OLD NEW` writes').meta({ id: 'ConsistencyProof' });

/** Every component, in document order. */
export const COMPONENTS = [
  ErrorBody, Row, Session, TimelineRow, TimelineEvent, Command, FinalDecision, CommandDetail, CountBucket, AuthFailure, Approval, ApprovalDecision,
  StoredCheckpoint, InclusionProof, ConsistencyProof,
] as const;

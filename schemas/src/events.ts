/**
 * TypeScript shapes of the Avro records in `schemas/*.avsc`. Field names follow the Avro
 * schemas exactly; `type` is the record name and is not part of the encoded bytes.
 * `time` is microseconds since the Unix epoch (Avro `timestamp-micros`).
 */
export type Protocol = 'postgres' | 'ssh' | 'kubernetes';
export type Decision = 'allow' | 'deny' | 'hold' | 'mask';
export type VerdictSource = 'policy' | 'deadline';
export type ResponseStatus = 'ok' | 'error' | 'refused' | 'skipped';
/** See Response.avsc: `observed` unless written at start-up for a command a crash left without a response. */
export type ResponseOutcome = 'observed' | 'unknown' | 'not_forwarded';

export interface Identity {
  issuer: string;
  subject: string;
  /** Verified claims; non-string values JSON-encoded. */
  claims: Record<string, string>;
}

interface EventHead {
  event_id: string;
  time: number;
  session_id: string;
}

export interface SessionOpened extends EventHead {
  type: 'SessionOpened';
  proxy_id: string;
  protocol: Protocol;
  target: string;
  client_address: string;
  identity: Identity;
  attributes: Record<string, string>;
}

export interface AuthenticationFailed extends EventHead {
  type: 'AuthenticationFailed';
  proxy_id: string;
  protocol: Protocol;
  target: string;
  client_address: string;
  reason_code: string;
  message: string;
  claimed_issuer: string | null;
  claimed_subject: string | null;
}

/** A request to Agate's own HTTP API refused before it could run (see the .avsc for why a type of its own). */
export interface ApiAuthenticationFailed extends EventHead {
  type: 'ApiAuthenticationFailed';
  proxy_id: string;
  protocol: 'http';
  target: 'query-api';
  client_address: string;
  reason_code: string;
  message: string;
  request: string;
  claimed_issuer: string | null;
  claimed_subject: string | null;
}

export interface Command extends EventHead {
  type: 'Command';
  proxy_id: string;
  sequence: number;
  protocol: Protocol;
  target: string;
  identity: Identity;
  text: string;
  parameters: (string | null)[];
  attributes: Record<string, string>;
  /** W3C `traceparent` of the proxy's span for this command (see Command.avsc); absent means null. */
  trace_parent?: string | null;
}

/**
 * The attribute of a command recorded after the fact, never decided before running because it
 * did not run: `skipped` (the target ignored it after an earlier error) or `failed` (the target
 * rejected it while preparing it). Policy still answers it, but never holds it for an approver.
 */
export const SETTLED_ATTRIBUTE = 'settled';

/**
 * The attribute of a command its proxy decided itself, without asking policy (Kubernetes
 * discovery, a refusal before policy): its value is the built-in rule id (`agate.…`) of the
 * verdict the proxy records for it. The policy service publishes no verdict for such a command,
 * so the record holds exactly one. Only proxy code writes it (see `proxyDecision`): every
 * command attribute key is a literal in a proxy, none is taken from the client. Were one forged
 * anyway, the proxy would wait on a verdict that never comes and refuse the command at its
 * deadline: fail closed.
 */
export const PROXY_DECIDED_ATTRIBUTE = 'proxy_decided';

/** The built-in rule a command's proxy decided it by, or undefined when policy decides it. */
export function proxyDecidedRule(command: Pick<Command, 'attributes'>): string | undefined {
  const rule = command.attributes[PROXY_DECIDED_ATTRIBUTE];
  return rule !== undefined && rule.startsWith('agate.') ? rule : undefined;
}

export interface Verdict extends EventHead {
  type: 'Verdict';
  command_id: string;
  decision: Decision;
  rule_id: string | null;
  reason: string;
  source: VerdictSource;
  policy_revision: string;
  /** With decision `mask`: the mask set applied to what the client receives. */
  mask_set: string | null;
  /** With decision `hold` (and on the final verdict after one): the approval's id. */
  approval_id: string | null;
  /** With decision `hold`: when the approval times out (microseconds). */
  hold_expires_at: number | null;
  /** W3C `traceparent` of the policy span that decided it, a child of the command's; absent means null. */
  trace_parent?: string | null;
}

/** A command held until `required` distinct approvers approve it, or refused at `expires_at`. */
export interface ApprovalRequested extends EventHead {
  type: 'ApprovalRequested';
  approval_id: string;
  command_id: string;
  rule_id: string;
  target: string;
  requester_issuer: string;
  requester_subject: string;
  text: string;
  required: number;
  /** JSON of the claims globs an approver must carry. */
  approvers: string;
  allow_self_approval: boolean;
  expires_at: number;
}

export type ApprovalChoice = 'approve' | 'deny';

/**
 * One approver's accepted answer. `refused_reason` is always null since schema v7 (refused
 * attempts are `ApprovalRefused`); records written before may carry one, and then count for nothing.
 */
export interface ApprovalDecision extends EventHead {
  type: 'ApprovalDecision';
  approval_id: string;
  command_id: string;
  decision: ApprovalChoice;
  approver_issuer: string;
  approver_subject: string;
  approver_claims: Record<string, string>;
  comment: string | null;
  refused_reason: string | null;
}

/** An attempt to answer a hold that was refused (403/409): recorded, never a decision. */
export interface ApprovalRefused extends EventHead {
  type: 'ApprovalRefused';
  approval_id: string;
  command_id: string;
  /** What the caller asked for. */
  decision: ApprovalChoice;
  approver_issuer: string;
  approver_subject: string;
  approver_claims: Record<string, string>;
  comment: string | null;
  refused_reason: string;
}

export interface Response extends EventHead {
  type: 'Response';
  command_id: string;
  status: ResponseStatus;
  command_tag: string | null;
  rows: number;
  bytes: number;
  duration_us: number;
  error_code: string | null;
  error_message: string | null;
  /** `sha256:<hex>` over the result bodies as delivered to the client; null when nothing came back. */
  digest: string | null;
  columns: string[];
  /** The first rows up to the configured cap, always masked. */
  sample: (string | null)[][];
  /** Values masked in what the client received. */
  masked_values: number;
  /** Rows of each Execute when a portal was fetched in parts (a row limit); empty when it came in one go. */
  fetches?: number[];
  /** Absent means `observed`. */
  outcome?: ResponseOutcome;
  /** The W3C `traceparent` its Command carries; absent means null. */
  trace_parent?: string | null;
}

export interface SessionClosed extends EventHead {
  type: 'SessionClosed';
  reason: string;
  commands: number;
  duration_us: number;
}

/** An administrator asked that a live session end; the proxy holding it closes it (SessionClosed follows). */
interface SessionTerminationRequested extends EventHead {
  type: 'SessionTerminationRequested';
  requested_by_issuer: string;
  requested_by_subject: string;
  reason: string;
}

/**
 * A PostgreSQL notification (LISTEN/NOTIFY) the target delivered to the session. It answers no
 * command, so it is not a Response (one per Command): a record of its own, in session order.
 */
export interface Notification extends EventHead {
  type: 'Notification';
  sender_pid: number;
  /** Masked with the audit set (and the client's). */
  channel: string;
  /** Masked like `channel`, cut to the recorded value length. */
  payload: string;
  /** Bytes of the payload as delivered to the client. */
  payload_bytes: number;
  /** `sha256:<hex>` over the payload as delivered to the client. */
  digest: string;
  /** Values masked in what the client received. */
  masked_values: number;
}

/** A signed ledger checkpoint, published so consumers outside the store can keep it. */
interface Checkpoint extends EventHead {
  type: 'Checkpoint';
  chain_id: string;
  origin: string;
  size: number;
  /** base64 */
  root_hash: string;
  note: string;
}

export type AgateEvent = SessionOpened | AuthenticationFailed | Command | Verdict | Response | SessionClosed | Checkpoint | ApprovalRequested | ApprovalDecision | ApprovalRefused | ApiAuthenticationFailed | SessionTerminationRequested | Notification;
export type EventType = AgateEvent['type'];

export const EVENT_TYPES: readonly EventType[] = [
  'SessionOpened',
  'AuthenticationFailed',
  'Command',
  'Verdict',
  'Response',
  'SessionClosed',
  'Checkpoint',
  'ApprovalRequested',
  'ApprovalDecision',
  'ApiAuthenticationFailed',
  'ApprovalRefused',
  'SessionTerminationRequested',
  'Notification',
];

/** Current time in Avro `timestamp-micros`. */
export function nowMicros(): number {
  return Math.round((performance.timeOrigin + performance.now()) * 1000);
}

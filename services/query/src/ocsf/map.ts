import type { ResponseOutcome } from '../../../../schemas/src/events.js';
import { decisionJson } from '../queries.js';
import type { FinalDecision } from '../final-decision.js';
import { OCSF_VERSION, PRODUCT } from './product.js';
import { sqlActivity } from './sql-activity.js';

/** A command with its final decision and response, or a login, as read from the ledger. */
type ExportRecord = CommandRecord | LoginRecord;

interface Position {
  chain_id: string;
  /** The ledger position that completes this record (the response, or the login event). */
  seq: number;
  /** The ledger event id of that position: the exported event's `metadata.uid`, provable by it. */
  event_id: string;
  session_id: string;
  /** Store time text, UTC: `YYYY-MM-DD hh:mm:ss.ffffff`. */
  time: string;
}

export interface CommandRecord extends Position {
  kind: 'command';
  command_id: string;
  /** When the command was issued (store time text); `time` is when its outcome was recorded. */
  command_time: string;
  protocol: string;
  target: string;
  issuer: string;
  subject: string;
  /** The agent's verified token claims (repository, workflow, ref, …). */
  claims: Record<string, string>;
  client_address: string;
  text: string;
  attributes: Record<string, string>;
  /** The record's final decision (final-decision.ts); null when no verdict was recorded. */
  final: FinalDecision | null;
  status: string;
  command_tag: string | null;
  rows: number;
  bytes: number;
  duration_us: number;
  error_code: string | null;
  error_message: string | null;
  /** `unknown`: Agate stopped after forwarding it and cannot say what the target did (Response.outcome). */
  outcome: ResponseOutcome;
}

export interface LoginRecord extends Position {
  kind: 'login';
  outcome: 'success' | 'failure';
  protocol: string;
  target: string;
  issuer: string | null;
  /** Verified for a success; for a failure, what the refused token claimed (unverified). */
  subject: string | null;
  claims: Record<string, string>;
  client_address: string;
  reason_code: string | null;
  message: string | null;
}

export type OcsfEvent = Record<string, unknown> & { class_uid: number; time: number; metadata: Record<string, unknown> & { sequence: number; log_name: string } };

/** Store time text → OCSF `timestamp_t` (milliseconds since the epoch). */
function toEpochMs(storeTime: string): number {
  return Date.parse(storeTime.replace(' ', 'T') + 'Z');
}

function endpoint(address: string): { ip: string; port?: number } {
  const i = address.lastIndexOf(':');
  const ip = i > 0 ? address.slice(0, i).replace(/^\[|\]$/g, '') : address;
  const port = i > 0 ? Number(address.slice(i + 1)) : NaN;
  return Number.isInteger(port) ? { ip, port } : { ip };
}

const firstWord = (text: string) => (/^\s*([A-Za-z_]+)/.exec(text)?.[1] ?? '').toUpperCase();

/** OCSF API Activity ids for a Kubernetes verb or HTTP method. */
function apiActivity(r: CommandRecord): number {
  const verb = (r.attributes.verb ?? firstWord(r.text)).toUpperCase();
  if (['GET', 'LIST', 'WATCH', 'HEAD'].includes(verb)) return 2; // Read
  if (['CREATE', 'POST'].includes(verb)) return 1; // Create
  if (['UPDATE', 'PATCH', 'PUT', 'APPLY'].includes(verb)) return 3; // Update
  if (['DELETE', 'DELETECOLLECTION'].includes(verb)) return 4; // Delete
  return 99;
}

/**
 * OCSF status: the outcome of the command itself (a refused command failed). A command Agate
 * forwarded and then stopped before seeing its answer (recorded at the next start with status
 * error) may have succeeded: its status is Unknown, not Failure.
 */
function status(r: CommandRecord): { status_id: number; status: string } {
  if (r.outcome === 'unknown') return { status_id: 0, status: 'Unknown' };
  if (r.status === 'ok') return { status_id: 1, status: 'Success' };
  if (r.status === 'refused' || r.status === 'error') return { status_id: 2, status: 'Failure' };
  return { status_id: 99, status: 'Other' }; // skipped: never ran (an earlier statement of its message failed)
}

const SEVERITY: Record<string, number> = { allow: 1, mask: 1, hold: 2, deny: 3 }; // Informational, Low, Medium

/** security_control's action and disposition for the enforced decision. */
function control(d: FinalDecision | null): Record<string, unknown> {
  const decision = d?.decision ?? 'deny';
  if (decision === 'deny') return { action_id: 2, action: 'Denied', disposition_id: 2, disposition: 'Blocked' };
  if (decision === 'hold') return { action_id: 99, action: 'Held', disposition_id: 14, disposition: 'Delayed' };
  return { action_id: 1, action: 'Allowed', disposition_id: 1, disposition: 'Allowed' };
}

/** One sentence naming the decision and who made it, e.g. `denied by approver alice (held by rule drop-needs-dba)`. */
function decisionMessage(d: FinalDecision | null): string {
  if (d === null) return 'refused: no verdict was recorded';
  const verb = d.decision === 'deny' ? 'denied' : d.decision === 'hold' ? 'held, awaiting approval' : d.decision === 'mask' ? 'allowed with masking' : 'allowed';
  const rule = d.rule_id === null ? 'the policy default' : `rule ${d.rule_id}`;
  switch (d.decided_by) {
    case 'approver':
      return `${verb} by approver ${d.approvers.map((a) => a.approver_subject).join(', ')} (held by ${rule})`;
    case 'timeout':
      return `${verb}: no approval before the hold's deadline (held by ${rule})`;
    case 'deadline':
      return `${verb}: no verdict reached the proxy in time`;
    case 'agate':
      return `${verb} by Agate: ${d.reason}`;
    case 'pending':
      return `${verb} (${rule})`;
    default:
      return `${verb} by ${rule}`;
  }
}

function observable(name: string, typeId: number, type: string, value: string): Record<string, unknown> {
  return { name, type_id: typeId, type, value };
}

function base(r: ExportRecord, classUid: number, activityId: number, severityId: number, profiles: string[]): OcsfEvent {
  return {
    class_uid: classUid,
    category_uid: Math.floor(classUid / 1000),
    activity_id: activityId,
    type_uid: classUid * 100 + activityId,
    severity_id: severityId,
    time: toEpochMs(r.time),
    metadata: {
      version: OCSF_VERSION,
      product: PRODUCT,
      uid: r.event_id,
      correlation_uid: r.session_id,
      log_name: r.chain_id,
      sequence: r.seq,
      ...(profiles.length > 0 ? { profiles } : {}),
    },
  };
}

function mapCommand(r: CommandRecord): OcsfEvent {
  const d = r.final;
  const user = { name: r.subject, uid: r.subject, ...(r.issuer ? { domain: r.issuer } : {}) };
  const src = endpoint(r.client_address);
  const observables = [
    observable('actor.user.name', 4, 'User Name', r.subject),
    ...(src.ip ? [observable('src_endpoint.ip', 2, 'IP Address', src.ip)] : []),
    ...(r.protocol === 'ssh' ? [observable('device.hostname', 1, 'Hostname', r.target)] : []),
    ...(d?.approvers ?? []).map((a) => observable('unmapped.agate.decision.approvers.approver_subject', 4, 'User Name', a.approver_subject)),
  ];
  const common = {
    ...status(r),
    ...(r.error_code ? { status_code: r.error_code } : {}),
    ...(r.error_message ? { status_detail: r.error_message } : {}),
    start_time: toEpochMs(r.command_time),
    duration: Math.round(r.duration_us / 1000),
    message: decisionMessage(d),
    observables,
    unmapped: {
      agate: {
        command_id: r.command_id, protocol: r.protocol, target: r.target, client_address: r.client_address, claims: r.claims,
        decision: d === null ? null : decisionJson(d), rows: r.rows, bytes: r.bytes, command_tag: r.command_tag, outcome: r.outcome,
        ledger: { chain_id: r.chain_id, seq: r.seq },
      },
    },
  };
  const severity = SEVERITY[d?.decision ?? 'deny'] ?? 3;
  if (r.protocol === 'ssh') {
    // Process Activity has no source endpoint: the client address is an observable and in unmapped.
    return {
      ...base(r, 1007, 1, severity, ['security_control']), ...common, ...control(d),
      actor: { user, session: { uid: r.session_id } },
      device: { hostname: r.target, name: r.target, type_id: 1, type: 'Server' },
      // The target's pid is not known to the gateway; the command's id identifies this run.
      process: { cmd_line: r.text, name: r.text.trim().split(/\s+/)[0] ?? '', uid: r.command_id },
    };
  }
  if (r.protocol === 'kubernetes' || r.protocol === 'http') {
    // API Activity has no security_control profile in 1.3.0: the decision is in status and message.
    return {
      ...base(r, 6003, apiActivity(r), severity, []), ...common,
      actor: { user, session: { uid: r.session_id } },
      src_endpoint: src,
      api: { operation: (r.attributes.verb ?? r.text.trim().split(/\s+/)[0] ?? '').toLowerCase() || 'unknown', service: { name: r.target }, request: { uid: r.command_id } },
      dst_endpoint: { svc_name: r.target },
    };
  }
  return {
    ...base(r, 6005, sqlActivity(r.text), severity, ['security_control']), ...common, ...control(d),
    actor: { user, session: { uid: r.session_id } },
    src_endpoint: src,
    database: { name: r.target, type_id: 1, type: 'Relational' },
    dst_endpoint: { svc_name: r.target },
    query_info: { uid: r.command_id, query_string: r.text, bytes: r.bytes, ...(r.rows >= 0 ? { data: { rows: r.rows } } : {}) },
    type_id: 1,
    type: 'Database',
  };
}

function mapLogin(r: LoginRecord): OcsfEvent {
  const ok = r.outcome === 'success';
  // A refused token's subject was never verified: it is kept as claimed, marked so, not as the user.
  const name = ok ? (r.subject ?? 'unknown') : 'unknown';
  const src = endpoint(r.client_address);
  return {
    ...base(r, 3002, 1, ok ? 1 : 3, []),
    user: { name, ...(ok ? { uid: name } : {}), ...(ok && r.issuer ? { domain: r.issuer } : {}) },
    session: { uid: r.session_id },
    service: { name: r.target },
    dst_endpoint: { svc_name: r.target },
    src_endpoint: src,
    auth_protocol_id: 99,
    auth_protocol: 'OIDC',
    is_remote: true,
    status_id: ok ? 1 : 2,
    status: ok ? 'Success' : 'Failure',
    ...(r.reason_code ? { status_code: r.reason_code } : {}),
    ...(r.message ? { status_detail: r.message } : {}),
    message: ok ? `${name} logged in to ${r.target}` : `login to ${r.target} refused${r.subject ? ` (the token claimed subject ${r.subject}, unverified)` : ''}`,
    observables: [
      ...(ok ? [observable('user.name', 4, 'User Name', name)] : []),
      ...(src.ip ? [observable('src_endpoint.ip', 2, 'IP Address', src.ip)] : []),
    ],
    unmapped: {
      agate: {
        protocol: r.protocol, target: r.target, claims: r.claims, ledger: { chain_id: r.chain_id, seq: r.seq },
        ...(ok ? {} : { claimed_subject: r.subject, claimed_issuer: r.issuer, verified: false }),
      },
    },
  };
}

/** One OCSF event for one export record. */
export function toOcsf(r: ExportRecord): OcsfEvent {
  return r.kind === 'command' ? mapCommand(r) : mapLogin(r);
}

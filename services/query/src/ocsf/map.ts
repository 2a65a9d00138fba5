import { OCSF_VERSION, PRODUCT } from './product.js';

/** A command with its verdict and response, or a login, as read from the analyst views. */
export type ExportRecord = CommandRecord | LoginRecord;

interface Position {
  chain_id: string;
  /** The ledger position that completes this record (the response, or the login event). */
  seq: number;
  event_id: string;
  session_id: string;
  /** Store time text, UTC: `YYYY-MM-DD hh:mm:ss.ffffff`. */
  time: string;
}

export interface CommandRecord extends Position {
  kind: 'command';
  command_id: string;
  protocol: string;
  target: string;
  issuer: string;
  subject: string;
  client_address: string;
  text: string;
  decision: string | null;
  rule_id: string | null;
  reason: string | null;
  status: string;
  command_tag: string | null;
  rows: number;
  duration_us: number;
  error_code: string | null;
}

export interface LoginRecord extends Position {
  kind: 'login';
  outcome: 'success' | 'failure';
  protocol: string;
  target: string;
  issuer: string | null;
  subject: string | null;
  client_address: string;
  reason_code: string | null;
}

export type OcsfEvent = Record<string, unknown> & { class_uid: number; time: number; metadata: Record<string, unknown> & { sequence: number; log_name: string } };

/** Store time text → OCSF `timestamp_t` (milliseconds since the epoch). */
export function toEpochMs(storeTime: string): number {
  return Date.parse(storeTime.replace(' ', 'T') + 'Z');
}

function endpoint(address: string): Record<string, unknown> {
  const i = address.lastIndexOf(':');
  const ip = i > 0 ? address.slice(0, i).replace(/^\[|\]$/g, '') : address;
  const port = i > 0 ? Number(address.slice(i + 1)) : NaN;
  return Number.isInteger(port) ? { ip, port } : { ip };
}

const firstWord = (text: string) => (/^\s*([A-Za-z_]+)/.exec(text)?.[1] ?? '').toUpperCase();

/** OCSF Datastore Activity ids for a statement's leading keyword. */
function datastoreActivity(text: string): number {
  switch (firstWord(text)) {
    case 'SELECT': case 'WITH': case 'SHOW': case 'EXPLAIN': case 'TABLE': case 'VALUES': return 4; // Query
    case 'INSERT': case 'COPY': case 'MERGE': return 5; // Write
    case 'UPDATE': case 'ALTER': return 2; // Update
    case 'CREATE': return 6; // Create
    case 'DELETE': case 'DROP': case 'TRUNCATE': return 7; // Delete
    default: return 99; // Other
  }
}

/** OCSF API Activity ids for a Kubernetes verb or HTTP method. */
function apiActivity(text: string): number {
  const verb = firstWord(text);
  if (['GET', 'LIST', 'WATCH', 'HEAD'].includes(verb)) return 2; // Read
  if (['CREATE', 'POST'].includes(verb)) return 1; // Create
  if (['UPDATE', 'PATCH', 'PUT', 'APPLY'].includes(verb)) return 3; // Update
  if (['DELETE', 'DELETECOLLECTION'].includes(verb)) return 4; // Delete
  return 99;
}

const SEVERITY: Record<string, number> = { allow: 1, mask: 1, hold: 2, deny: 3 }; // Informational, Low, Medium
const DISPOSITION: Record<string, [number, string]> = { allow: [1, 'Allowed'], mask: [1, 'Allowed'], deny: [2, 'Blocked'], hold: [14, 'Delayed'] };

function base(r: ExportRecord, classUid: number, activityId: number, severityId: number): OcsfEvent {
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
      profiles: ['security_control'],
    },
  };
}

function mapCommand(r: CommandRecord): OcsfEvent {
  const decision = r.decision ?? 'deny';
  const actor = { user: { name: r.subject, uid: r.subject, ...(r.issuer ? { domain: r.issuer } : {}) }, session: { uid: r.session_id } };
  const [dispositionId, disposition] = DISPOSITION[decision] ?? [0, 'Unknown'];
  const common = {
    actor,
    src_endpoint: endpoint(r.client_address),
    status_id: r.status === 'ok' ? 1 : r.status === 'skipped' ? 0 : 2,
    status: r.status,
    ...(r.error_code ? { status_code: r.error_code } : {}),
    action_id: decision === 'deny' ? 2 : 1,
    action: decision === 'deny' ? 'Denied' : 'Allowed',
    disposition_id: dispositionId,
    disposition,
    duration: Math.round(r.duration_us / 1000),
    message: decision === 'deny' ? `refused by rule ${r.rule_id ?? '(default)'}` : `${r.command_tag ?? r.status}`,
    unmapped: {
      agate: { command_id: r.command_id, decision, rule_id: r.rule_id, reason: r.reason, protocol: r.protocol, target: r.target, rows: r.rows, ledger: { chain_id: r.chain_id, seq: r.seq } },
    },
  };
  const severity = SEVERITY[decision] ?? 3;
  if (r.protocol === 'ssh') {
    return {
      ...base(r, 1007, 1, severity), ...common,
      device: { hostname: r.target, name: r.target, type_id: 1 }, // Server
      process: { cmd_line: r.text, name: r.text.trim().split(/\s+/)[0] ?? '' },
    };
  }
  if (r.protocol === 'kubernetes' || r.protocol === 'http') {
    return {
      ...base(r, 6003, apiActivity(r.text), severity), ...common,
      api: { operation: r.text.trim().split(/\s+/)[0]?.toLowerCase() || 'unknown', service: { name: r.target }, request: { uid: r.command_id } },
      dst_endpoint: { svc_name: r.target },
    };
  }
  return {
    ...base(r, 6005, datastoreActivity(r.text), severity), ...common,
    database: { name: r.target, type_id: 1, type: 'Relational' },
    dst_endpoint: { svc_name: r.target },
    query_info: { query_string: r.text, ...(r.rows >= 0 ? { data: { rows: r.rows } } : {}) },
    type_id: 1, // Database
  };
}

function mapLogin(r: LoginRecord): OcsfEvent {
  const ok = r.outcome === 'success';
  const name = r.subject ?? 'unknown';
  return {
    ...base(r, 3002, 1, ok ? 1 : 3),
    user: { name, uid: name, ...(r.issuer ? { domain: r.issuer } : {}) },
    service: { name: r.target },
    dst_endpoint: { svc_name: r.target },
    src_endpoint: endpoint(r.client_address),
    auth_protocol_id: 99,
    auth_protocol: 'OIDC',
    is_remote: true,
    status_id: ok ? 1 : 2,
    status: ok ? 'Success' : 'Failure',
    ...(r.reason_code ? { status_detail: r.reason_code } : {}),
    unmapped: { agate: { protocol: r.protocol, target: r.target, ledger: { chain_id: r.chain_id, seq: r.seq } } },
  };
}

/** One OCSF event for one export record. */
export function toOcsf(r: ExportRecord): OcsfEvent {
  return r.kind === 'command' ? mapCommand(r) : mapLogin(r);
}

import type { Store } from '../../../core/src/store/store.js';

export interface SessionRow {
  session_id: string;
  opened_at: string;
  closed_at: string | null;
  protocol: string;
  target: string;
  issuer: string;
  subject: string;
  client_address: string;
  proxy_id: string;
  commands: number;
  denied: number;
}

export interface TimelineRow {
  command_id: string;
  sequence: number;
  time: string;
  text: string;
  decision: string | null;
  rule_id: string | null;
  reason: string | null;
  verdict_source: string | null;
  status: string | null;
  command_tag: string | null;
  rows: number | null;
  duration_us: number | null;
  error_code: string | null;
  error_message: string | null;
}

export interface SessionFilter {
  subject?: string;
  target?: string;
  /** Only sessions opened strictly before this time (a cursor from the previous page). */
  before?: string;
  limit: number;
}

export async function listSessions(store: Store, f: SessionFilter): Promise<SessionRow[]> {
  const where: string[] = [];
  const params: Record<string, unknown> = { limit: f.limit };
  if (f.subject !== undefined) (where.push('subject = {subject:String}'), (params.subject = f.subject));
  if (f.target !== undefined) (where.push('target = {target:String}'), (params.target = f.target));
  if (f.before !== undefined) (where.push("opened_at < parseDateTime64BestEffort({before:String}, 6, 'UTC')"), (params.before = f.before));
  const rows = await store.query<SessionRow>(
    `SELECT * FROM agate.sessions ${where.length > 0 ? 'WHERE ' + where.join(' AND ') : ''} ORDER BY opened_at DESC, session_id LIMIT {limit:UInt32}`,
    params,
  );
  return rows.map((r) => ({ ...r, commands: Number(r.commands), denied: Number(r.denied) }));
}

export async function getSession(store: Store, sessionId: string): Promise<SessionRow | undefined> {
  const [row] = await store.query<SessionRow>('SELECT * FROM agate.sessions WHERE session_id = {id:String}', { id: sessionId });
  return row === undefined ? undefined : { ...row, commands: Number(row.commands), denied: Number(row.denied) };
}

/** A session's commands in order, each with its verdict and response. */
export async function sessionTimeline(store: Store, sessionId: string): Promise<TimelineRow[]> {
  const rows = await store.query<TimelineRow>(
    `SELECT c.command_id AS command_id, c.sequence AS sequence, c.time AS time, c.text AS text,
       v.decision AS decision, v.rule_id AS rule_id, v.reason AS reason, v.source AS verdict_source,
       r.status AS status, r.command_tag AS command_tag, r.rows AS rows, r.duration_us AS duration_us,
       r.error_code AS error_code, r.error_message AS error_message
     FROM (SELECT * FROM agate.commands WHERE session_id = {id:String}) AS c
     LEFT JOIN (SELECT * FROM agate.verdicts WHERE session_id = {id:String}) AS v ON v.command_id = c.command_id
     LEFT JOIN (SELECT * FROM agate.responses WHERE session_id = {id:String}) AS r ON r.command_id = c.command_id
     ORDER BY c.seq
     SETTINGS join_use_nulls = 1`,
    { id: sessionId },
  );
  return rows.map((r) => ({ ...r, sequence: Number(r.sequence), rows: r.rows === null ? null : Number(r.rows), duration_us: r.duration_us === null ? null : Number(r.duration_us) }));
}

export interface AuthFailureRow {
  event_id: string;
  time: string;
  protocol: string;
  target: string;
  client_address: string;
  reason_code: string;
  message: string;
  claimed_issuer: string | null;
  claimed_subject: string | null;
}

export async function listAuthFailures(store: Store, limit: number): Promise<AuthFailureRow[]> {
  return store.query<AuthFailureRow>(
    'SELECT event_id, time, protocol, target, client_address, reason_code, message, claimed_issuer, claimed_subject FROM agate.auth_failures ORDER BY time DESC LIMIT {limit:UInt32}',
    { limit },
  );
}

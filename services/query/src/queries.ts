import type { Store } from '../../../core/src/store/store.js';

/*
 * The forensic queries behind the API and the CLI. Every value reaches the engine as a bound
 * `{name:Type}` parameter; only fixed SQL fragments are concatenated.
 */

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

export type Decision = 'allow' | 'deny' | 'hold' | 'mask';

export interface SessionFilter {
  subject?: string;
  issuer?: string;
  target?: string;
  protocol?: string;
  /** Claim name → exact value; all must match. */
  claims?: Record<string, string>;
  /** Sessions with at least one verdict of this decision. */
  verdict?: Decision;
  /** Opened at or after / strictly before, in microseconds since the epoch. */
  fromMicros?: number;
  toMicros?: number;
  /** Only sessions opened strictly before this time (the legacy cursor), in microseconds. */
  beforeMicros?: number;
  /** Keyset cursor: sessions strictly after this one in newest-first order. */
  after?: { opened_at: string; session_id: string };
  limit: number;
}

const toSession = (r: SessionRow): SessionRow => ({ ...r, commands: Number(r.commands), denied: Number(r.denied) });
const num = (v: unknown): number | null => (v === null || v === undefined ? null : Number(v));
const micros = "fromUnixTimestamp64Micro({%:Int64}, 'UTC')";

/** Sessions, newest first. Filters run on the opened-session index before the per-session aggregation. */
export async function listSessions(store: Store, f: SessionFilter): Promise<SessionRow[]> {
  const idx: string[] = [];
  const outer: string[] = [];
  const params: Record<string, unknown> = { limit: f.limit };
  const bind = (name: string, value: unknown) => ((params[name] = value), name);
  if (f.subject !== undefined) idx.push(`subject = {${bind('subject', f.subject)}:String}`);
  if (f.issuer !== undefined) idx.push(`issuer = {${bind('issuer', f.issuer)}:String}`);
  if (f.target !== undefined) idx.push(`target = {${bind('target', f.target)}:String}`);
  if (f.protocol !== undefined) idx.push(`protocol = {${bind('protocol', f.protocol)}:String}`);
  if (f.fromMicros !== undefined) idx.push(`opened_at >= ${micros.replace('%', bind('from', f.fromMicros))}`);
  if (f.toMicros !== undefined) idx.push(`opened_at < ${micros.replace('%', bind('to', f.toMicros))}`);
  if (f.beforeMicros !== undefined) idx.push(`opened_at < ${micros.replace('%', bind('before', f.beforeMicros))}`);
  Object.entries(f.claims ?? {}).forEach(([k, v], i) => idx.push(`claims[{${bind(`ck${i}`, k)}:String}] = {${bind(`cv${i}`, v)}:String}`));
  if (f.verdict !== undefined) idx.push(`session_id IN (SELECT session_id FROM agate.verdicts WHERE decision = {${bind('verdict', f.verdict)}:String})`);
  if (f.after !== undefined) {
    const cond = `(opened_at, session_id) < (toDateTime64({${bind('ct', f.after.opened_at)}:String}, 6, 'UTC'), {${bind('cid', f.after.session_id)}:String})`;
    idx.push(cond);
    outer.push(cond);
  }
  // The index narrows to at most `limit` session ids; the aggregate view then reads only those.
  const ids = `SELECT session_id FROM agate.session_index ${idx.length > 0 ? 'WHERE ' + idx.join(' AND ') : ''} ORDER BY opened_at DESC, session_id DESC LIMIT {limit:UInt32}`;
  const rows = await store.query<SessionRow>(
    `SELECT * FROM agate.sessions WHERE session_id IN (${ids}) ${outer.length > 0 ? 'AND ' + outer.join(' AND ') : ''}
     ORDER BY opened_at DESC, session_id DESC LIMIT {limit:UInt32}`,
    params,
  );
  return rows.map(toSession);
}

export async function getSession(store: Store, sessionId: string): Promise<SessionRow | undefined> {
  const [row] = await store.query<SessionRow>('SELECT * FROM agate.sessions WHERE session_id = {id:String}', { id: sessionId });
  return row === undefined ? undefined : toSession(row);
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
     ORDER BY c.chain_id, c.seq
     SETTINGS join_use_nulls = 1`,
    { id: sessionId },
  );
  return rows.map((r) => ({ ...r, sequence: Number(r.sequence), rows: num(r.rows), duration_us: num(r.duration_us) }));
}

export type TimelineKind = 'command' | 'verdict' | 'approval' | 'response';

/** One recorded event of a session, flattened so it fits JSON, NDJSON and CSV alike. */
export interface TimelineEvent {
  kind: TimelineKind;
  chain_id: string;
  seq: number;
  time: string;
  event_id: string;
  command_id: string;
  text: string | null;
  decision: string | null;
  rule_id: string | null;
  reason: string | null;
  status: string | null;
  command_tag: string | null;
  rows: number | null;
  duration_us: number | null;
  error_code: string | null;
  approver: string | null;
}

/**
 * Commands, verdicts, approvals and responses of one session in ledger order, which is the order
 * Agate recorded them. `afterSeq` pages through long sessions.
 */
export async function sessionEvents(store: Store, sessionId: string, afterSeq: number, limit: number): Promise<TimelineEvent[]> {
  const n = (t: string) => `CAST(NULL AS Nullable(${t}))`;
  const rows = await store.query<TimelineEvent>(
    `SELECT * FROM (
       SELECT 'command' AS kind, chain_id, seq, time, command_id AS event_id, command_id, toNullable(text) AS text,
         ${n('String')} AS decision, ${n('String')} AS rule_id, ${n('String')} AS reason, ${n('String')} AS status,
         ${n('String')} AS command_tag, ${n('Int64')} AS rows, ${n('Int64')} AS duration_us, ${n('String')} AS error_code, ${n('String')} AS approver
       FROM agate.commands WHERE session_id = {id:String}
       UNION ALL
       SELECT 'verdict', chain_id, seq, time, verdict_id, command_id, ${n('String')}, toNullable(decision), rule_id, toNullable(reason),
         ${n('String')}, ${n('String')}, ${n('Int64')}, ${n('Int64')}, ${n('String')}, ${n('String')}
       FROM agate.verdicts WHERE session_id = {id:String}
       UNION ALL
       SELECT 'approval', chain_id, seq, time, approval_id, command_id, comment, toNullable(decision), ${n('String')}, ${n('String')},
         ${n('String')}, ${n('String')}, ${n('Int64')}, ${n('Int64')}, ${n('String')}, toNullable(approver_subject)
       FROM agate.approvals WHERE session_id = {id:String}
       UNION ALL
       SELECT 'response', chain_id, seq, time, response_id, command_id, ${n('String')}, ${n('String')}, ${n('String')}, error_message,
         toNullable(status), command_tag, toNullable(rows), toNullable(duration_us), error_code, ${n('String')}
       FROM agate.responses WHERE session_id = {id:String}
     ) WHERE seq > {after:UInt64} ORDER BY chain_id, seq LIMIT {limit:UInt32}`,
    { id: sessionId, after: afterSeq, limit },
  );
  return rows.map((r) => ({ ...r, seq: Number(r.seq), rows: num(r.rows), duration_us: num(r.duration_us) }));
}

export interface CommandRow {
  command_id: string;
  session_id: string;
  time: string;
  chain_id: string;
  seq: number;
  sequence: number;
  protocol: string;
  target: string;
  issuer: string;
  subject: string;
  text: string;
}

export interface CommandDetail extends CommandRow {
  verdict: { decision: string; rule_id: string | null; reason: string; source: string; policy_revision: string; time: string; seq: number } | null;
  response: { status: string; command_tag: string | null; rows: number; bytes: number; duration_us: number; error_code: string | null; error_message: string | null; time: string; seq: number } | null;
  approvals: { decision: string; approver_issuer: string; approver_subject: string; comment: string | null; time: string; seq: number }[];
}

const toCommand = (r: CommandRow): CommandRow => ({ ...r, seq: Number(r.seq), sequence: Number(r.sequence) });

export async function commandDetail(store: Store, commandId: string): Promise<CommandDetail | undefined> {
  const [command] = await store.query<CommandRow>('SELECT * FROM agate.commands WHERE command_id = {id:String} LIMIT 1', { id: commandId });
  if (command === undefined) return undefined;
  const p = { id: commandId, session: command.session_id };
  const [verdicts, responses, approvals] = await Promise.all([
    store.query<NonNullable<CommandDetail['verdict']>>('SELECT decision, rule_id, reason, source, policy_revision, time, seq FROM agate.verdicts WHERE session_id = {session:String} AND command_id = {id:String} ORDER BY seq LIMIT 1', p),
    store.query<NonNullable<CommandDetail['response']>>('SELECT status, command_tag, rows, bytes, duration_us, error_code, error_message, time, seq FROM agate.responses WHERE session_id = {session:String} AND command_id = {id:String} ORDER BY seq LIMIT 1', p),
    store.query<CommandDetail['approvals'][number]>('SELECT decision, approver_issuer, approver_subject, comment, time, seq FROM agate.approvals WHERE session_id = {session:String} AND command_id = {id:String} ORDER BY seq', p),
  ]);
  const v = verdicts[0];
  const r = responses[0];
  return {
    ...toCommand(command),
    verdict: v === undefined ? null : { ...v, seq: Number(v.seq) },
    response: r === undefined ? null : { ...r, rows: Number(r.rows), bytes: Number(r.bytes), duration_us: Number(r.duration_us), seq: Number(r.seq) },
    approvals: approvals.map((a) => ({ ...a, seq: Number(a.seq) })),
  };
}

export interface CommandSearch {
  /** Case-insensitive substring of the command text. */
  text?: string;
  subject?: string;
  target?: string;
  protocol?: string;
  sessionId?: string;
  fromMicros?: number;
  toMicros?: number;
  after?: { time: string; command_id: string };
  limit: number;
}

/** Commands matching a text and filters, newest first. */
export async function searchCommands(store: Store, s: CommandSearch): Promise<CommandRow[]> {
  const where: string[] = [];
  const params: Record<string, unknown> = { limit: s.limit };
  const bind = (name: string, value: unknown) => ((params[name] = value), name);
  if (s.text !== undefined) where.push(`positionCaseInsensitiveUTF8(text, {${bind('text', s.text)}:String}) > 0`);
  if (s.subject !== undefined) where.push(`subject = {${bind('subject', s.subject)}:String}`);
  if (s.target !== undefined) where.push(`target = {${bind('target', s.target)}:String}`);
  if (s.protocol !== undefined) where.push(`protocol = {${bind('protocol', s.protocol)}:String}`);
  if (s.sessionId !== undefined) where.push(`session_id = {${bind('session', s.sessionId)}:String}`);
  if (s.fromMicros !== undefined) where.push(`time >= ${micros.replace('%', bind('from', s.fromMicros))}`);
  if (s.toMicros !== undefined) where.push(`time < ${micros.replace('%', bind('to', s.toMicros))}`);
  if (s.after !== undefined) where.push(`(time, command_id) < (toDateTime64({${bind('ct', s.after.time)}:String}, 6, 'UTC'), {${bind('cid', s.after.command_id)}:String})`);
  const rows = await store.query<CommandRow>(
    `SELECT * FROM agate.commands ${where.length > 0 ? 'WHERE ' + where.join(' AND ') : ''} ORDER BY time DESC, command_id DESC LIMIT {limit:UInt32}`,
    params,
  );
  return rows.map(toCommand);
}

export type Interval = 'minute' | 'hour' | 'day';

export interface CountBucket {
  bucket: string;
  commands: number;
  allowed: number;
  denied: number;
  held: number;
}

/** Commands per time bucket with their verdicts, oldest bucket first. */
export async function commandCounts(store: Store, q: { interval: Interval; fromMicros: number; toMicros: number; subject?: string; target?: string }): Promise<CountBucket[]> {
  const params: Record<string, unknown> = { from: q.fromMicros, to: q.toMicros };
  const where = [`time >= ${micros.replace('%', 'from')}`, `time < ${micros.replace('%', 'to')}`];
  if (q.subject !== undefined) (where.push('subject = {subject:String}'), (params.subject = q.subject));
  if (q.target !== undefined) (where.push('target = {target:String}'), (params.target = q.target));
  const unit = { minute: 'MINUTE', hour: 'HOUR', day: 'DAY' }[q.interval];
  const rows = await store.query<CountBucket>(
    `SELECT toStartOfInterval(c.time, INTERVAL 1 ${unit}) AS bucket, count() AS commands,
       countIf(v.decision = 'allow') AS allowed, countIf(v.decision = 'deny') AS denied, countIf(v.decision = 'hold') AS held
     FROM (SELECT command_id, session_id, time FROM agate.commands WHERE ${where.join(' AND ')}) AS c
     LEFT JOIN (SELECT command_id, decision FROM agate.verdicts WHERE ${where.slice(0, 1).join(' AND ')}) AS v ON v.command_id = c.command_id
     GROUP BY bucket ORDER BY bucket`,
    params,
  );
  return rows.map((r) => ({ bucket: r.bucket, commands: Number(r.commands), allowed: Number(r.allowed), denied: Number(r.denied), held: Number(r.held) }));
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

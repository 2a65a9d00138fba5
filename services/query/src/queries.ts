import type { Store } from '../../../core/src/store/store.js';
import { microsToDateTime64 } from '../../ledger/src/schema.js';
import type { ApprovalDecision, ApprovalRefused, ApprovalRequested, Verdict } from '../../../schemas/src/events.js';
import { finalDecision, type DecidedBy, type FinalDecision } from './final-decision.js';

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
  /** Who settled the command (final-decision.ts): policy, approver, timeout, deadline, agate, pending. */
  decided_by: DecidedBy | null;
  /** The approvers whose answers decided a held command (subjects), empty otherwise. */
  approvers: string[];
  /** The hold's approval id when the command was held. */
  approval_id: string | null;
  status: string | null;
  command_tag: string | null;
  rows: number | null;
  /** Bytes the response carried (for an upload over ssh the tag also says what went up). */
  bytes: number | null;
  /** `sha256:<hex>` over what the target returned (or, for an sftp file, the file's data). */
  digest: string | null;
  duration_us: number | null;
  error_code: string | null;
  error_message: string | null;
  /** A later Response says the statement's transaction did not commit (status error, tag ROLLBACK): its effects never happened. */
  rolled_back: boolean;
  /** What ended that transaction, when it did not commit. */
  rollback_reason: string | null;
}

export type Decision = 'allow' | 'deny' | 'hold' | 'mask';

interface SessionFilter {
  subject?: string;
  issuer?: string;
  target?: string;
  protocol?: string;
  /** Claim name → exact value; all must match. */
  claims?: Record<string, string>;
  /** Sessions with at least one verdict of this decision. */
  verdict?: Decision;
  /** Sessions with at least one command whose text contains this (case-insensitive). */
  text?: string;
  /** Opened at or after / strictly before, in microseconds since the epoch. */
  fromMicros?: number;
  toMicros?: number;
  /** Only sessions opened strictly before this time (the legacy cursor), in microseconds. */
  beforeMicros?: number;
  /** Keyset cursor: sessions strictly after this one in newest-first order. */
  after?: { opened_at: string; session_id: string };
  limit: number;
}

const micros = "fromUnixTimestamp64Micro({%:Int64}, 'UTC')";

/** The opened-session columns of a SessionRow, as stored in `agate.q_sessions`. */
const OPENED_COLUMNS = `session_id, opened_at, toString(protocol) AS protocol, toString(target) AS target, toString(issuer) AS issuer,
  subject, client_address, toString(proxy_id) AS proxy_id`;
type OpenedRow = Omit<SessionRow, 'closed_at' | 'commands' | 'denied'>;

/**
 * Sessions, newest first: a range read of the session table sorted by (subject, opened_at),
 * then the counters of just those sessions (schema.ts).
 */
export async function listSessions(store: Store, f: SessionFilter): Promise<SessionRow[]> {
  const where: string[] = [];
  const params: Record<string, unknown> = { limit: f.limit };
  const bind = (name: string, value: unknown) => ((params[name] = value), name);
  if (f.subject !== undefined) where.push(`subject = {${bind('subject', f.subject)}:String}`);
  if (f.issuer !== undefined) where.push(`issuer = {${bind('issuer', f.issuer)}:String}`);
  if (f.target !== undefined) where.push(`target = {${bind('target', f.target)}:String}`);
  if (f.protocol !== undefined) where.push(`protocol = {${bind('protocol', f.protocol)}:String}`);
  if (f.fromMicros !== undefined) where.push(`opened_at >= ${micros.replace('%', bind('from', f.fromMicros))}`);
  if (f.toMicros !== undefined) where.push(`opened_at < ${micros.replace('%', bind('to', f.toMicros))}`);
  if (f.beforeMicros !== undefined) where.push(`opened_at < ${micros.replace('%', bind('before', f.beforeMicros))}`);
  Object.entries(f.claims ?? {}).forEach(([k, v], i) => where.push(`claims[{${bind(`ck${i}`, k)}:String}] = {${bind(`cv${i}`, v)}:String}`));
  if (f.verdict !== undefined) where.push(`session_id IN (SELECT session_id FROM agate.q_session_stats WHERE has(decisions, {${bind('verdict', f.verdict)}:String}))`);
  if (f.text !== undefined) where.push(`session_id IN (SELECT session_id FROM agate.ledger WHERE event_type = 'Command' AND ${textContains(f.text, bind).join(' AND ')})`);
  if (f.after !== undefined) {
    where.push(`(opened_at, session_id) < (toDateTime64({${bind('ct', f.after.opened_at)}:String}, 6, 'UTC'), {${bind('cid', f.after.session_id)}:String})`);
  }
  const opened = await store.query<OpenedRow>(
    `SELECT ${OPENED_COLUMNS} FROM agate.q_sessions FINAL ${where.length > 0 ? 'WHERE ' + where.join(' AND ') : ''}
     ORDER BY opened_at DESC, session_id DESC LIMIT {limit:UInt32}`,
    params,
  );
  return withCounters(store, opened);
}

export async function getSession(store: Store, sessionId: string): Promise<SessionRow | undefined> {
  const opened = await store.query<OpenedRow>(`SELECT ${OPENED_COLUMNS} FROM agate.q_sessions FINAL WHERE session_id = {id:String} LIMIT 1`, { id: sessionId });
  return (await withCounters(store, opened))[0];
}

/** Adds each session's counters, read by primary key for these sessions only. */
async function withCounters(store: Store, opened: OpenedRow[]): Promise<SessionRow[]> {
  if (opened.length === 0) return [];
  const counters = await store.query<{ session_id: string; closed_at: string | null; commands: string; denied: string }>(
    `SELECT session_id, if(toUnixTimestamp64Micro(max(closed_at)) = 0, NULL, toNullable(max(closed_at))) AS closed_at,
       uniqExactMerge(commands) AS commands, uniqExactMerge(denied) AS denied
     FROM agate.q_session_stats WHERE session_id IN {ids:Array(String)} GROUP BY session_id`,
    { ids: opened.map((o) => o.session_id) },
  );
  const by = new Map(counters.map((c) => [c.session_id, c]));
  return opened.map((o) => {
    const c = by.get(o.session_id);
    // Key order as in the agate.sessions view: CSV columns follow it.
    return { ...o, closed_at: c?.closed_at ?? null, commands: Number(c?.commands ?? 0), denied: Number(c?.denied ?? 0) };
  });
}

/** One ledger row of a session, as the timeline readers take it. */
interface SessionEventRow {
  event_type: string;
  chain_id: string;
  seq: string;
  time: string;
  event_id: string;
  body: string;
}

/** A session's events of the given types in ledger order: one read of the ledger, bodies parsed here. */
async function sessionRows(store: Store, sessionId: string, types: readonly string[], afterSeq = 0, limit?: number): Promise<(SessionEventRow & { e: Record<string, unknown> })[]> {
  const rows = await store.query<SessionEventRow>(
    `SELECT event_type, chain_id, seq, time, event_id, body FROM agate.ledger
     WHERE session_id = {id:String} AND event_type IN {types:Array(String)} AND seq > {after:UInt64}
     ORDER BY chain_id, seq ${limit === undefined ? '' : 'LIMIT {limit:UInt32}'}`,
    { id: sessionId, types, after: afterSeq, ...(limit === undefined ? {} : { limit }) },
  );
  return rows.map((r) => ({ ...r, e: JSON.parse(r.body) as Record<string, unknown> }));
}

const str = (v: unknown): string | null => (v === null || v === undefined ? null : String(v));
const int = (v: unknown): number => (typeof v === 'number' ? v : Number(v ?? 0));

/** A session's commands in order, each with its final decision (final-decision.ts) and first response. */
export async function sessionTimeline(store: Store, sessionId: string): Promise<TimelineRow[]> {
  const rows = await sessionRows(store, sessionId, ['Command', 'Verdict', 'ApprovalRequested', 'ApprovalDecision', 'ApprovalRefused', 'Response']);
  const decisions = decisionEventsByCommand(rows.map((r) => ({ event_type: r.event_type, e: r.e })));
  const responses = new Map<string, Record<string, unknown>>();
  const undone = new Map<string, string | null>();
  for (const { event_type, e } of rows) {
    if (event_type !== 'Response') continue;
    const id = String(e.command_id);
    if (!responses.has(id)) responses.set(id, e);
    else if (isRollbackRecord(e) && !undone.has(id)) undone.set(id, str(e.error_message));
  }
  return rows.filter((r) => r.event_type === 'Command').map(({ event_id, time, e }) => {
    const d = finalDecision(decisions.get(event_id) ?? { verdicts: [] });
    const source = d === undefined ? null : decisions.get(event_id)!.verdicts.find((v) => v.event_id === d.verdict_id)?.source ?? null;
    const r = responses.get(event_id);
    return {
      command_id: event_id, sequence: int(e.sequence), time, text: String(e.text ?? ''),
      decision: d?.decision ?? null, rule_id: d?.rule_id ?? null, reason: d?.reason ?? null, verdict_source: source,
      decided_by: d?.decided_by ?? null, approvers: d?.approvers.map((a) => a.approver_subject) ?? [], approval_id: d?.hold?.approval_id ?? null,
      status: str(r?.status), command_tag: str(r?.command_tag), rows: r === undefined ? null : int(r.rows),
      bytes: r === undefined ? null : int(r.bytes), digest: str(r?.digest), duration_us: r === undefined ? null : int(r.duration_us),
      error_code: str(r?.error_code), error_message: str(r?.error_message),
      rolled_back: undone.has(event_id), rollback_reason: undone.get(event_id) ?? null,
    };
  });
}

/** The second Response a PostgreSQL statement gets when its transaction did not commit (pg/transactions.ts). */
function isRollbackRecord(e: Record<string, unknown>): boolean {
  return e.status === 'error' && e.command_tag === 'ROLLBACK';
}

/** One command's recorded verdicts, approval requests, answers and refused attempts to answer. */
export interface DecisionEvents { verdicts: Verdict[]; requests: ApprovalRequested[]; answers: ApprovalDecision[]; refused: ApprovalRefused[] }

export const DECISION_LISTS: Record<string, keyof DecisionEvents | undefined> = { Verdict: 'verdicts', ApprovalRequested: 'requests', ApprovalDecision: 'answers', ApprovalRefused: 'refused' };

/** Groups recorded verdicts, approval requests, answers and refusals by the command they concern, in the order given. */
function decisionEventsByCommand(rows: Iterable<{ event_type: string; e: Record<string, unknown> }>): Map<string, DecisionEvents> {
  const out = new Map<string, DecisionEvents>();
  for (const { event_type, e } of rows) {
    const list = DECISION_LISTS[event_type];
    if (list === undefined) continue;
    const id = String(e.command_id);
    let entry = out.get(id);
    if (entry === undefined) out.set(id, (entry = { verdicts: [], requests: [], answers: [], refused: [] }));
    (entry[list] as unknown[]).push(e);
  }
  return out;
}

/** One ledger row of a command's decision events: its position, time and parsed body. */
interface DecisionRow { event_type: string; event_id: string; seq: number; time: string; e: Record<string, unknown> }

/** The recorded verdicts, approval requests and answers of one command, in ledger order (one read). */
async function commandDecisionRows(store: Store, sessionId: string, commandId: string): Promise<DecisionRow[]> {
  const rows = await store.query<{ event_type: string; event_id: string; seq: string; time: string; body: string }>(
    `SELECT event_type, event_id, seq, time, body FROM agate.ledger
     WHERE session_id = {session:String} AND event_type IN ('Verdict', 'ApprovalRequested', 'ApprovalDecision', 'ApprovalRefused') AND JSONExtractString(body, 'command_id') = {id:String}
     ORDER BY chain_id, seq`,
    { session: sessionId, id: commandId },
  );
  return rows.map((r) => ({ event_type: r.event_type, event_id: r.event_id, seq: Number(r.seq), time: r.time, e: JSON.parse(r.body) as Record<string, unknown> }));
}

/** A final decision as the API shows it: times as store time text like every other time it returns. */
export function decisionJson(d: FinalDecision): Record<string, unknown> {
  const at = (us: number) => microsToDateTime64(us);
  const answer = <T extends { time: number }>(a: T) => ({ ...a, time: at(a.time) });
  return {
    ...d, time: at(d.time), approvers: d.approvers.map(answer),
    hold: d.hold === null ? null : {
      ...d.hold, held_at: at(d.hold.held_at), expires_at: d.hold.expires_at === null ? null : at(d.hold.expires_at),
      answers: d.hold.answers.map(answer), refusals: d.hold.refusals.map(answer),
    },
  };
}

/**
 * `approval`: an answer that was accepted; `approval_refused`: an attempt refused (403/409), recorded but never an answer;
 * `notification`: a PostgreSQL notification the session received (no command: `command_id` is empty, `text` the payload).
 */
type TimelineKind = 'command' | 'verdict' | 'approval' | 'approval_refused' | 'response' | 'notification';

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
  /** A notification's channel. */
  channel: string | null;
}

/**
 * Commands, verdicts, approvals, responses and notifications of one session in ledger order, which is the order
 * Agate recorded them. `afterSeq` pages through long sessions.
 */
export async function sessionEvents(store: Store, sessionId: string, afterSeq: number, limit: number): Promise<TimelineEvent[]> {
  const rows = await sessionRows(store, sessionId, ['Command', 'Verdict', 'ApprovalDecision', 'ApprovalRefused', 'Response', 'Notification'], afterSeq, limit);
  return rows.map(({ event_type, chain_id, seq, time, event_id, e }): TimelineEvent => {
    const base = { chain_id, seq: Number(seq), time, text: null, decision: null, rule_id: null, reason: null, status: null, command_tag: null, rows: null, duration_us: null, error_code: null, approver: null, channel: null };
    switch (event_type) {
      case 'Command':
        return { ...base, kind: 'command', event_id, command_id: event_id, text: String(e.text ?? '') };
      case 'Verdict':
        return { ...base, kind: 'verdict', event_id, command_id: String(e.command_id), decision: str(e.decision), rule_id: str(e.rule_id), reason: str(e.reason) };
      case 'ApprovalDecision':
      case 'ApprovalRefused': {
        // Records before schema v7 marked a refused attempt with refused_reason on an ApprovalDecision.
        const refused = str(e.refused_reason);
        return {
          ...base, kind: refused === null ? 'approval' : 'approval_refused', event_id: String(e.approval_id), command_id: String(e.command_id),
          text: str(e.comment), decision: str(e.decision), approver: str(e.approver_subject), reason: refused,
        };
      }
      case 'Notification':
        return { ...base, kind: 'notification', event_id, command_id: '', text: str(e.payload), channel: str(e.channel) };
      default:
        return {
          ...base, kind: 'response', event_id, command_id: String(e.command_id), reason: str(e.error_message), status: str(e.status),
          command_tag: str(e.command_tag), rows: int(e.rows), duration_us: int(e.duration_us), error_code: str(e.error_code),
        };
    }
  });
}

interface CommandRow {
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

interface CommandDetail extends CommandRow {
  /** The record's final decision (final-decision.ts, times as store text): what every interface reports. */
  decision: Record<string, unknown> | null;
  /** The verdict that settled the command (the hold's while it waits). */
  verdict: { decision: string; rule_id: string | null; reason: string; source: string; policy_revision: string; time: string; seq: number } | null;
  /** Every verdict recorded for it, in order: a held command has the hold and then the final one. */
  verdicts: { event_id: string; decision: string; rule_id: string | null; reason: string; source: string; policy_revision: string; time: string; seq: number }[];
  response: { status: string; command_tag: string | null; rows: number; bytes: number; duration_us: number; error_code: string | null; error_message: string | null; time: string; seq: number } | null;
  /** Approvers' answers that counted. Refused attempts are in `decision.hold.refusals`, never here. */
  approvals: { decision: string; approver_issuer: string; approver_subject: string; comment: string | null; time: string; seq: number }[];
}

const toCommand = (r: CommandRow): CommandRow => ({ ...r, seq: Number(r.seq), sequence: Number(r.sequence) });

export async function commandDetail(store: Store, commandId: string): Promise<CommandDetail | undefined> {
  const [command] = await store.query<CommandRow>('SELECT * FROM agate.commands WHERE command_id = {id:String} LIMIT 1', { id: commandId });
  if (command === undefined) return undefined;
  const p = { id: commandId, session: command.session_id };
  // Verdicts and answers come from one read, so the decision and the lists shown beside it agree.
  const [responses, rows] = await Promise.all([
    store.query<NonNullable<CommandDetail['response']>>('SELECT status, command_tag, rows, bytes, duration_us, error_code, error_message, time, seq FROM agate.responses WHERE session_id = {session:String} AND command_id = {id:String} ORDER BY seq LIMIT 1', p),
    commandDecisionRows(store, command.session_id, commandId),
  ]);
  const final = finalDecision(decisionEventsByCommand(rows).get(commandId) ?? { verdicts: [] });
  const verdicts = rows.filter((r) => r.event_type === 'Verdict').map(({ event_id, seq, time, e }) => ({
    event_id, decision: String(e.decision), rule_id: str(e.rule_id), reason: String(e.reason ?? ''), source: String(e.source ?? ''), policy_revision: String(e.policy_revision ?? ''), time, seq,
  }));
  const v = verdicts.find((x) => x.event_id === final?.verdict_id);
  const r = responses[0];
  // An answer is listed when the final decision counted it (the same approver at the same time).
  const counted = new Set(final?.hold?.answers.map((a) => `${a.approver_issuer} ${a.approver_subject} ${a.time}`) ?? []);
  const approvals = rows
    .filter((x) => x.event_type === 'ApprovalDecision' && counted.has(`${String(x.e.approver_issuer)} ${String(x.e.approver_subject)} ${int(x.e.time)}`))
    .map(({ seq, time, e }) => ({ decision: String(e.decision), approver_issuer: String(e.approver_issuer), approver_subject: String(e.approver_subject), comment: str(e.comment), time, seq }));
  return {
    ...toCommand(command),
    decision: final === undefined ? null : decisionJson(final),
    verdict: v === undefined ? null : { decision: v.decision, rule_id: v.rule_id, reason: v.reason, source: v.source, policy_revision: v.policy_revision, time: v.time, seq: v.seq },
    verdicts,
    response: r === undefined ? null : { ...r, rows: Number(r.rows), bytes: Number(r.bytes), duration_us: Number(r.duration_us), seq: Number(r.seq) },
    approvals,
  };
}

interface CommandSearch {
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

/**
 * Conditions on the ledger's `text` column: contains `text`, case-insensitively. For ASCII text a
 * LIKE on `lower(text)` is added, which the n-gram index on `lower(text)` can skip granules with.
 */
function textContains(text: string, bind: (name: string, value: unknown) => string): string[] {
  const conditions = [`positionCaseInsensitiveUTF8(text, {${bind('text', text)}:String}) > 0`];
  // ASCII lower-casing agrees with the case-insensitive match only for ASCII text.
  if (/^[\x20-\x7e]*$/.test(text)) conditions.push(`lower(text) LIKE {${bind('like', `%${text.toLowerCase().replace(/[\\%_]/g, (c) => '\\' + c)}%`)}:String}`);
  return conditions;
}

/**
 * Commands matching a text and filters, newest first. The filters run on the ledger's own
 * columns (no JSON parsing), with the n-gram index on `lower(text)` skipping granules for an
 * ASCII search text; only the top `limit` rows are then read through the commands view.
 */
export async function searchCommands(store: Store, s: CommandSearch): Promise<CommandRow[]> {
  const where: string[] = ["event_type = 'Command'"];
  const params: Record<string, unknown> = { limit: s.limit };
  const bind = (name: string, value: unknown) => ((params[name] = value), name);
  if (s.text !== undefined) where.push(...textContains(s.text, bind));
  if (s.subject !== undefined) where.push(`subject = {${bind('subject', s.subject)}:String}`);
  if (s.target !== undefined) where.push(`target = {${bind('target', s.target)}:String}`);
  if (s.protocol !== undefined) where.push(`JSONExtractString(body, 'protocol') = {${bind('protocol', s.protocol)}:String}`);
  if (s.sessionId !== undefined) where.push(`session_id = {${bind('session', s.sessionId)}:String}`);
  if (s.fromMicros !== undefined) where.push(`time >= ${micros.replace('%', bind('from', s.fromMicros))}`);
  if (s.toMicros !== undefined) where.push(`time < ${micros.replace('%', bind('to', s.toMicros))}`);
  if (s.after !== undefined) where.push(`(time, event_id) < (toDateTime64({${bind('ct', s.after.time)}:String}, 6, 'UTC'), {${bind('cid', s.after.command_id)}:String})`);
  const rows = await store.query<CommandRow>(
    `SELECT * FROM agate.commands WHERE (chain_id, seq) IN (
       SELECT chain_id, seq FROM agate.ledger WHERE ${where.join(' AND ')} ORDER BY time DESC, event_id DESC LIMIT {limit:UInt32})
     ORDER BY time DESC, command_id DESC LIMIT {limit:UInt32}`,
    params,
  );
  return rows.map(toCommand);
}

export type Interval = 'minute' | 'hour' | 'day';

interface CountBucket {
  bucket: string;
  commands: number;
  /** Each command once, by its final decision: allowed + denied + masked + pending = commands. */
  allowed: number;
  denied: number;
  masked: number;
  /** Held and not yet settled. */
  pending: number;
  /** Commands that were held, whatever their final decision. */
  held: number;
}

/**
 * Commands per time bucket by final decision, oldest bucket first. The final decision is the last
 * verdict that is not a hold, as in final-decision.ts; counted in the store, one row per command
 * (a held command has two verdicts and was counted twice when verdicts were joined directly).
 */
export async function commandCounts(store: Store, q: { interval: Interval; fromMicros: number; toMicros: number; subject?: string; target?: string }): Promise<CountBucket[]> {
  const params: Record<string, unknown> = { from: q.fromMicros, to: q.toMicros };
  const where = [`time >= ${micros.replace('%', 'from')}`, `time < ${micros.replace('%', 'to')}`];
  if (q.subject !== undefined) (where.push('subject = {subject:String}'), (params.subject = q.subject));
  if (q.target !== undefined) (where.push('target = {target:String}'), (params.target = q.target));
  const unit = { minute: 'MINUTE', hour: 'HOUR', day: 'DAY' }[q.interval];
  const rows = await store.query<CountBucket>(
    `SELECT toStartOfInterval(c.time, INTERVAL 1 ${unit}) AS bucket, count() AS commands,
       countIf(v.final = 'allow') AS allowed, countIf(v.final = 'deny') AS denied, countIf(v.final = 'mask') AS masked,
       countIf(v.final = '' AND v.held = 1) AS pending, countIf(v.held = 1) AS held
     FROM (SELECT command_id, session_id, time FROM agate.commands WHERE ${where.join(' AND ')}) AS c
     LEFT JOIN (
       SELECT command_id, argMaxIf(decision, seq, decision != 'hold') AS final, max(decision = 'hold') AS held
       FROM agate.verdicts WHERE ${where.slice(0, 1).join(' AND ')} GROUP BY command_id) AS v ON v.command_id = c.command_id
     GROUP BY bucket ORDER BY bucket`,
    params,
  );
  return rows.map((r) => ({
    bucket: r.bucket, commands: Number(r.commands), allowed: Number(r.allowed), denied: Number(r.denied), masked: Number(r.masked),
    pending: Number(r.pending), held: Number(r.held),
  }));
}

interface AuthFailureRow {
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

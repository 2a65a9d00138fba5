import { AgateError, ErrorCode } from '../../../core/src/errors.js';
import type { Store } from '../../../core/src/store/store.js';
import { microsToDateTime64 } from '../../ledger/src/schema.js';
import type { Command, Decision, VerdictSource } from '../../../schemas/src/events.js';
import { Backtest, type BacktestSummary, type RecordedDecision } from './backtest.js';
import type { CompiledPolicy } from './engine.js';

/*
 * Reading the record for a backtest: the Command events of a period in ledger order, a page at a
 * time, each with the first verdict policy gave it. Commands come from the ledger's `body` (the
 * decoded event as recorded, so text and parameters are masked as recorded).
 */

/** A period of the record: [from, to) in microseconds since the epoch. */
interface Period {
  fromMicros: number;
  toMicros: number;
}

interface BacktestOptions {
  period: Period;
  /** At most this many commands are decided; the summary says where it stopped. */
  maxCommands?: number;
  /** At most this many changes are listed (all are counted). */
  maxChanges?: number;
  pageSize?: number;
  signal?: AbortSignal;
}

export interface BacktestReport extends BacktestSummary {
  /** ISO 8601 bounds of the period asked for. */
  since: string;
  until: string;
  /** Commands in the period that no policy verdict answered (refused at the verdict deadline): not compared. */
  unanswered: number;
  /** True when `maxCommands` stopped the run before the end of the period; `examined_until` is the last command's time. */
  truncated: boolean;
  examined_until: string | null;
}

const UNIT_MS: Record<string, number> = { m: 60_000, h: 3_600_000, d: 86_400_000, w: 7 * 86_400_000 };

/**
 * A point in time from `30d`, `12h`, `90m`, `2w` (that long before `now`) or an ISO 8601 time.
 * @example timeSpecMicros('30d', Date.now()) // thirty days ago, in microseconds
 */
export function timeSpecMicros(spec: string, nowMs: number, name = 'since'): number {
  const rel = /^(\d{1,6})([mhdw])$/.exec(spec.trim());
  if (rel !== null) return (nowMs - Number(rel[1]) * UNIT_MS[rel[2]!]!) * 1000;
  const ms = /^\d{4}-\d{2}-\d{2}/.test(spec) ? Date.parse(spec) : NaN;
  if (Number.isNaN(ms)) throw new AgateError(ErrorCode.API_BAD_REQUEST, `${name} must be a duration back from now (30d, 12h, 90m, 2w) or an ISO 8601 time, got "${spec}"`);
  return ms * 1000;
}

interface CommandRow {
  chain_id: string;
  position: string;
  body: string;
}

interface VerdictRow {
  command_id: string;
  decision: Decision;
  rule_id: string | null;
  mask_set: string | null;
  source: VerdictSource;
  policy_revision: string;
}

/** Runs `candidate` over the commands recorded in the period and reports every verdict it changes. */
export async function backtestRecord(store: Store, candidate: CompiledPolicy, options: BacktestOptions): Promise<BacktestReport> {
  const { period, maxCommands = 1_000_000, maxChanges = 1000, pageSize = 10_000 } = options;
  const run = new Backtest(candidate, maxChanges);
  let unanswered = 0;
  let seen = 0;
  let last: Command | undefined;
  let truncated = false;
  for await (const page of recordedPages(store, period, pageSize)) {
    options.signal?.throwIfAborted();
    const room = maxCommands - seen;
    const take = page.slice(0, room);
    const decided = take.filter((r): r is RecordedDecision => r.decision !== undefined);
    unanswered += take.length - decided.length;
    run.add(decided);
    seen += take.length;
    if (take.length > 0) last = take[take.length - 1]!.command;
    if (page.length > room) {
      truncated = true;
      break;
    }
  }
  return {
    since: new Date(period.fromMicros / 1000).toISOString(), until: new Date(period.toMicros / 1000).toISOString(),
    ...run.summary(), unanswered, truncated, examined_until: last === undefined ? null : new Date(Math.floor(last.time / 1000)).toISOString(),
  };
}

type Recorded = Omit<RecordedDecision, 'decision'> & { decision: Decision | undefined };

/** The period's commands in (chain, seq) order, a page at a time, each with its first policy verdict. */
async function* recordedPages(store: Store, period: Period, pageSize: number): AsyncGenerator<Recorded[]> {
  const from = microsToDateTime64(period.fromMicros);
  const to = microsToDateTime64(period.toMicros);
  let after = { chain: '', seq: '0' };
  for (;;) {
    const rows = await store.query<CommandRow>(
      `SELECT chain_id, toString(seq) AS position, body FROM agate.ledger
       WHERE event_type = 'Command' AND time >= toDateTime64({from:String}, 6, 'UTC') AND time < toDateTime64({to:String}, 6, 'UTC')
         AND (chain_id, seq) > ({chain:String}, {seq:UInt64})
       ORDER BY chain_id, seq LIMIT {limit:UInt32}`,
      { from, to, chain: after.chain, seq: after.seq, limit: pageSize },
    );
    if (rows.length === 0) return;
    const commands = rows.map((r) => JSON.parse(r.body) as Command);
    const verdicts = await firstVerdicts(store, commands);
    yield commands.map((command) => {
      const v = verdicts.get(command.event_id);
      return { command, decision: v?.decision, rule_id: v?.rule_id ?? null, mask_set: v?.mask_set ?? null, source: v?.source ?? 'policy', policy_revision: v?.policy_revision ?? '' };
    });
    const tail = rows[rows.length - 1]!;
    after = { chain: tail.chain_id, seq: tail.position };
    if (rows.length < pageSize) return;
  }
}

/**
 * How long after its command a first policy verdict is looked for. Policy answers within the
 * proxy's verdict deadline (seconds; a hold is answered at once with the hold itself), so ten
 * minutes is generous, and it keeps each page's read of verdicts to the page's own stretch of time.
 */
const VERDICT_WINDOW_US = 600 * 1e6;

/**
 * Each command's first verdict from policy: for a held command the hold, not the approvers'
 * outcome (that is what policy decided). Verdicts follow their command, so only those from the
 * page's first command to ten minutes after its last are read.
 */
async function firstVerdicts(store: Store, commands: Command[]): Promise<Map<string, VerdictRow>> {
  const times = commands.map((c) => c.time);
  const since = microsToDateTime64(Math.min(...times));
  const until = microsToDateTime64(Math.max(...times) + VERDICT_WINDOW_US);
  const rows = await store.query<VerdictRow>(
    `SELECT cid AS command_id, argMin(d, (t, s)) AS decision, argMin(r, (t, s)) AS rule_id,
       argMin(m, (t, s)) AS mask_set, argMin(src, (t, s)) AS source, argMin(rev, (t, s)) AS policy_revision
     FROM (SELECT JSONExtractString(body, 'command_id') AS cid, time AS t, seq AS s, JSONExtractString(body, 'decision') AS d,
         JSONExtract(body, 'rule_id', 'Nullable(String)') AS r, JSONExtract(body, 'mask_set', 'Nullable(String)') AS m,
         JSONExtractString(body, 'source') AS src, JSONExtractString(body, 'policy_revision') AS rev
       FROM agate.ledger WHERE event_type = 'Verdict' AND time >= toDateTime64({since:String}, 6, 'UTC') AND time <= toDateTime64({until:String}, 6, 'UTC')
         AND src = 'policy' AND cid IN {ids:Array(String)})
     GROUP BY cid`,
    { since, until, ids: commands.map((c) => c.event_id) },
  );
  return new Map(rows.map((r) => [r.command_id, r]));
}

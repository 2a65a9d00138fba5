import { proxyDecidedRule, type Command, type Decision, type VerdictSource } from '../../../schemas/src/events.js';
import type { CompiledPolicy, PolicyDecision } from './engine.js';

/*
 * Policy backtest: a candidate policy decides the commands the record holds, and every command
 * whose decision would differ from the one recorded is reported. The record is the input, so the
 * answer is about what really ran, not about examples someone thought of. Pure: the store reader
 * (recorded-commands.ts) feeds it, the API and the CLI show it.
 */

/** A recorded command and the first verdict policy gave it (a hold, not its approval outcome). */
export interface RecordedDecision {
  command: Command;
  decision: Decision;
  rule_id: string | null;
  mask_set: string | null;
  source: VerdictSource;
  policy_revision: string;
}

/** One command whose verdict the candidate changes. */
interface BacktestChange {
  command_id: string;
  session_id: string;
  /** ISO 8601, UTC. */
  time: string;
  protocol: Command['protocol'];
  target: string;
  subject: string;
  text: string;
  recorded: { decision: Decision; rule_id: string | null; mask_set: string | null; policy_revision: string };
  candidate: { decision: Decision; rule_id: string | null; mask_set: string | null; reason: string };
}

export interface BacktestSummary {
  candidate_revision: string;
  /** Commands decided by the candidate. */
  examined: number;
  /** Of those, commands whose decision (or mask set) changes. */
  changed: number;
  /** Counts per change, keyed `recorded→candidate` (e.g. `allow→deny`). */
  transitions: Record<string, number>;
  /** The changes in the record's order, up to the cap; `changes_truncated` says more were counted. */
  changes: BacktestChange[];
  changes_truncated: boolean;
}

/** A verdict changes when the decision does, or, for a mask, the mask set applied. */
export function verdictChanges(recorded: Pick<RecordedDecision, 'decision' | 'mask_set'>, candidate: PolicyDecision): boolean {
  if (recorded.decision !== candidate.decision) return true;
  return candidate.decision === 'mask' && recorded.mask_set !== candidate.mask_set;
}

/**
 * Accumulates a backtest over recorded decisions, in the order given. Commands arrive in pages
 * from the store; `add` may be called any number of times, `summary` at any point.
 */
export class Backtest {
  readonly #policy: CompiledPolicy;
  readonly #maxChanges: number;
  #examined = 0;
  #changed = 0;
  readonly #transitions = new Map<string, number>();
  readonly #changes: BacktestChange[] = [];

  constructor(candidate: CompiledPolicy, maxChanges = 1000) {
    this.#policy = candidate;
    this.#maxChanges = maxChanges;
  }

  add(records: Iterable<RecordedDecision>): void {
    for (const r of records) {
      // Decided by its proxy's built-in rule (discovery, a refusal before policy): no policy ever decides it.
      if (proxyDecidedRule(r.command) !== undefined) continue;
      const d = this.#policy.evaluate(r.command);
      this.#examined++;
      if (!verdictChanges(r, d)) continue;
      this.#changed++;
      const key = `${r.decision}→${d.decision}`;
      this.#transitions.set(key, (this.#transitions.get(key) ?? 0) + 1);
      if (this.#changes.length < this.#maxChanges) this.#changes.push(change(r, d));
    }
  }

  summary(): BacktestSummary {
    return {
      candidate_revision: this.#policy.revision, examined: this.#examined, changed: this.#changed,
      transitions: Object.fromEntries([...this.#transitions].sort((a, b) => b[1] - a[1])),
      changes: [...this.#changes], changes_truncated: this.#changed > this.#changes.length,
    };
  }
}

function change(r: RecordedDecision, d: PolicyDecision): BacktestChange {
  const c = r.command;
  return {
    command_id: c.event_id, session_id: c.session_id, time: new Date(Math.floor(c.time / 1000)).toISOString(),
    protocol: c.protocol, target: c.target, subject: c.identity.subject, text: c.text,
    recorded: { decision: r.decision, rule_id: r.rule_id, mask_set: r.mask_set, policy_revision: r.policy_revision },
    candidate: { decision: d.decision, rule_id: d.rule_id, mask_set: d.mask_set, reason: d.reason },
  };
}

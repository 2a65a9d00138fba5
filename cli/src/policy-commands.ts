import { readFileSync } from 'node:fs';
import { basename } from 'node:path';
import { parsePolicyCandidate, type AgateConfig, type RuleConfig } from '../../core/src/config.js';
import { AgateError, ErrorCode } from '../../core/src/errors.js';
import { CompiledPolicy, loadParsers } from '../../services/policy/src/engine.js';
import { backtestRecord, timeSpecMicros, type BacktestReport } from '../../services/policy/src/recorded-commands.js';
import { tryCommand } from '../../services/policy/src/try-command.js';
import { GUARDED_EFFECTS } from '../../core/src/sql/effects.js';
import type { Protocol } from '../../schemas/src/events.js';
import { ApiClient } from './api-client.js';
import { visibleText } from '../../core/src/visible-text.js';
import { table } from './format.js';
import { UsageError } from './usage.js';

export interface PolicyTestInput {
  sql?: string;
  text?: string;
  claims: Record<string, string>;
  target?: string;
  protocol?: Protocol;
  issuer?: string;
  subject?: string;
}

/** `agate policy test`: the verdict the configured policy gives one command, and the rule that decided. */
export async function policyTest(config: AgateConfig, input: PolicyTestInput, json: boolean): Promise<number> {
  await loadParsers();
  const policy = new CompiledPolicy(config.policy, config.masking.audit);
  const protocol = input.protocol ?? (input.sql !== undefined ? 'postgres' : 'ssh');
  const out = tryCommand(policy, {
    text: input.sql ?? input.text ?? '', protocol, target: input.target ?? config.targets[0]?.name ?? 'default',
    issuer: input.issuer, subject: input.subject, claims: input.claims,
  });
  if (json) console.log(JSON.stringify(out, null, 2));
  else {
    for (const c of out.shell_commands ?? []) {
      const how = [c.via.length > 0 ? `via ${c.via.join(' > ')}` : '', c.downloaded ? 'runs downloaded code' : ''].filter(Boolean).join('; ');
      console.log(`command: ${c.program}  flags: ${c.flags.join(' ') || '-'}  operands: ${JSON.stringify(c.operands)}${how ? `  (${how})` : ''}`);
    }
    console.log(`${out.decision.toUpperCase()}  rule: ${out.rule_id ?? '(policy default)'}`);
    console.log(`reason: ${out.reason}`);
    if (out.mask_set !== null) console.log(`mask set: ${out.mask_set}`);
    if (out.approval !== null) console.log(`approval: ${out.approval.required} approver(s), timeout ${out.approval.timeout_s} s, approver claims ${JSON.stringify(out.approval.approvers.claims)}`);
  }
  // Scripts can branch on the exit code: 0 allowed (possibly masked), 3 held, 4 denied.
  return out.decision === 'deny' ? 4 : out.decision === 'hold' ? 3 : 0;
}

export interface BacktestInput {
  candidate: string;
  since: string;
  until?: string;
  maxCommands?: number;
  offline: boolean;
  token?: string;
  url?: string;
}

/**
 * `agate policy backtest`: the candidate policy decides the commands recorded in the period; every
 * verdict it would change is listed. Through the running query API, or (--offline) the store
 * directly while Agate is stopped. Exit 0 when no verdict changes, 3 when some do.
 */
export async function policyBacktest(config: AgateConfig, input: BacktestInput, json: boolean): Promise<number> {
  let text: string;
  try {
    text = readFileSync(input.candidate, 'utf8');
  } catch (cause) {
    throw new AgateError(ErrorCode.CONFIG_UNREADABLE, `cannot read the candidate policy ${input.candidate}: ${(cause as Error).message}`, { cause });
  }
  let report: BacktestReport;
  if (input.offline) {
    const candidate = parsePolicyCandidate(text, input.candidate, config.masking);
    await loadParsers();
    const now = Date.now();
    const period = { fromMicros: timeSpecMicros(input.since, now), toMicros: input.until === undefined ? now * 1000 : timeSpecMicros(input.until, now, 'until') };
    const store = await (await import('./components.js')).openStore(config); // loaded only for --offline: it brings every service
    try {
      report = await backtestRecord(store, new CompiledPolicy(candidate.policy, candidate.masking.audit), { period, maxCommands: input.maxCommands });
    } finally {
      await store.close();
    }
  } else {
    const api = await ApiClient.fromConfig(config, input.token, input.url);
    report = await api.post<BacktestReport>('/v1/policy/backtest', { candidate: text, source: basename(input.candidate), since: input.since, until: input.until, max_commands: input.maxCommands });
  }
  if (json) console.log(JSON.stringify(report, null, 2));
  else console.log(renderBacktest(report));
  return report.changed === 0 ? 0 : 3;
}

function renderBacktest(r: BacktestReport): string {
  const lines = [`candidate ${r.candidate_revision}: ${r.examined} recorded commands from ${r.since} to ${r.until}${r.truncated ? ` (stopped at ${r.examined_until}: --max-commands)` : ''}`];
  if (r.unanswered > 0) lines.push(`${r.unanswered} commands had no policy verdict (refused at the verdict deadline) and were not compared`);
  lines.push(r.changed === 0 ? 'no verdict would change' : `${r.changed} verdicts would change: ${Object.entries(r.transitions).map(([k, n]) => `${k} ${n}`).join(', ')}`);
  if (r.changes.length > 0) {
    const rows = r.changes.map((c) => ({
      time: c.time, subject: c.subject, target: c.target, recorded: `${c.recorded.decision} (${c.recorded.rule_id ?? 'default'})`,
      candidate: `${c.candidate.decision} (${c.candidate.rule_id ?? 'default'})`, text: c.text.length > 80 ? `${c.text.slice(0, 79)}…` : c.text,
    }));
    lines.push('', table(rows, ['time', 'subject', 'target', 'recorded', 'candidate', 'text']));
    if (r.changes_truncated) lines.push(`(first ${r.changes.length} of ${r.changed} listed; --json has the same list)`);
  }
  return lines.join('\n');
}

/** One finding of `agate policy lint`. */
export interface LintFinding {
  rule: string;
  problem: string;
}

/**
 * Findings beyond what config validation refuses: rules that can never match because an earlier
 * rule matches everything they match, and hold rules any approver may release.
 */
export function lintPolicy(rules: readonly RuleConfig[]): LintFinding[] {
  const findings: LintFinding[] = [];
  for (const [i, r] of rules.entries()) {
    const shadow = rules.slice(0, i).find((earlier) => covers(earlier, r));
    if (shadow !== undefined) findings.push({ rule: r.id, problem: `never matches: rule "${shadow.id}" above it matches every command it does` });
    if (r.action === 'hold' && Object.keys(r.approval?.approvers.claims ?? {}).length === 0) {
      findings.push({ rule: r.id, problem: 'any identity with the approver role may approve; consider approval.approvers.claims' });
    }
  }
  return findings;
}

/** True when every command `b` matches is matched by `a` too (conservatively: false when unsure). */
function covers(a: RuleConfig, b: RuleConfig): boolean {
  const ma = a.match;
  const mb = b.match;
  const subset = (x: readonly string[] | undefined, y: readonly string[] | undefined) => x === undefined || (y !== undefined && y.every((v) => x.includes(v)));
  if (!subset(ma.protocols, mb.protocols) || !subset(ma.targets, mb.targets) || !subset(ma.sql?.statements, mb.sql?.statements)) return false;
  const same = (x: unknown, y: unknown) => x === undefined || JSON.stringify(x) === JSON.stringify(y);
  // Table, effect, WHERE, Kubernetes, shell, ssh and git conditions: only an identical condition is known to cover.
  for (const key of ['tables', 'tables_read', 'tables_written', 'effects', 'without_where'] as const) if (!same(ma.sql?.[key], mb.sql?.[key])) return false;
  if (!same(ma.kubernetes, mb.kubernetes)) return false;
  // An allow rule never matches a statement with a guarded effect (dynamic, opaque, unknown) it does
  // not name; such a statement goes on to `b`, unless `b` is an allow rule with the same limit.
  const unnamed = GUARDED_EFFECTS.filter((e) => ma.sql?.effects?.includes(e) !== true);
  const bMaySeeSql = (mb.protocols === undefined || mb.protocols.includes('postgres')) && mb.shell === undefined && mb.ssh === undefined && mb.kubernetes === undefined;
  if (a.action === 'allow' && unnamed.length > 0 && bMaySeeSql && (b.action !== 'allow' || unnamed.some((e) => mb.sql?.effects?.includes(e) === true))) return false;
  if (!same(ma.shell, mb.shell) || !same(ma.ssh, mb.ssh) || !same(ma.git, mb.git)) return false;
  // An allow rule's SQL kinds must cover everything in a statement, a deny rule's anything: across actions, don't guess.
  if (ma.sql?.statements !== undefined && (a.action === 'allow') !== (b.action === 'allow')) return false;
  for (const [name, globs] of Object.entries(ma.claims ?? {})) {
    const other = mb.claims?.[name];
    if (other === undefined || JSON.stringify([globs].flat().sort()) !== JSON.stringify([other].flat().sort())) {
      if (!([globs].flat().includes('*') && other !== undefined)) return false;
    }
  }
  return true;
}

/** `agate policy lint`: the config already loaded (so it is valid); report what would still surprise. */
export function policyLint(config: AgateConfig, json: boolean): number {
  const findings = lintPolicy(config.policy.rules);
  if (json) console.log(JSON.stringify({ valid: true, rules: config.policy.rules.length, findings }, null, 2));
  else {
    console.log(`${config.source}: policy valid, ${config.policy.rules.length} rules, default ${config.policy.default}`);
    for (const f of findings) console.log(`warning: rule ${f.rule}: ${f.problem}`);
  }
  return findings.length === 0 ? 0 : 1;
}

export interface ApprovalListRow {
  approval_id: string;
  status: string;
  requester_subject: string;
  rule_id: string;
  target: string;
  approvals: number;
  required: number;
  expires_at: string;
  text: string;
}

const APPROVAL_STATUSES = ['pending', 'approved', 'denied', 'expired', 'all'];

/** `agate approvals`: held commands (pending by default). */
export async function approvalsCommand(config: AgateConfig, v: { token?: string; url?: string; status?: string; json?: boolean }): Promise<number> {
  const api = await ApiClient.fromConfig(config, v.token, v.url);
  const status = v.status ?? 'pending';
  if (!APPROVAL_STATUSES.includes(status)) throw new UsageError(`--status must be one of ${APPROVAL_STATUSES.join(', ')}`);
  const { approvals } = await api.get<{ approvals: ApprovalListRow[] }>(`/v1/approvals${status === 'all' ? '' : `?status=${encodeURIComponent(status)}`}`);
  if (v.json) console.log(JSON.stringify(approvals, null, 2));
  else if (approvals.length === 0) console.log(`(no ${status === 'all' ? '' : status + ' '}approvals)`);
  else {
    console.log(table(approvals as unknown as Record<string, unknown>[], ['approval_id', 'status', 'requester_subject', 'rule_id', 'target', 'approvals', 'required', 'expires_at', 'text']));
    // The table cuts the text to its column; an approver decides on all of it.
    for (const a of approvals) console.log(`\n${a.approval_id} holds:\n${visibleText(a.text)}`);
  }
  return 0;
}

/** `agate approve ID` / `agate deny ID`: one approver's answer, recorded whether or not it is accepted. */
export async function answerCommand(config: AgateConfig, decision: 'approve' | 'deny', id: string, v: { token?: string; url?: string; comment?: string }): Promise<number> {
  const api = await ApiClient.fromConfig(config, v.token, v.url, 'approver');
  await api.post(`/v1/approvals/${encodeURIComponent(id)}/${decision}`, v.comment === undefined ? {} : { comment: v.comment });
  console.log(`${decision === 'approve' ? 'approved' : 'denied'} ${id}`);
  return 0;
}

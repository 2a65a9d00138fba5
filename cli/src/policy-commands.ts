import { randomUUID } from 'node:crypto';
import type { AgateConfig, RuleConfig } from '../../core/src/config.js';
import { CompiledPolicy, loadParsers } from '../../services/policy/src/engine.js';
import { GUARDED_EFFECTS } from '../../core/src/sql/effects.js';
import { analyzeShell } from '../../core/src/shell/analyze.js';
import type { Command, Protocol } from '../../schemas/src/events.js';
import { ApiClient } from './api-client.js';
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
  const command: Command = {
    type: 'Command', event_id: randomUUID(), time: Date.now() * 1000, session_id: randomUUID(), proxy_id: 'policy-test', sequence: 1,
    protocol, target: input.target ?? config.targets[0]?.name ?? 'default',
    identity: { issuer: input.issuer ?? 'policy-test', subject: input.subject ?? input.claims.sub ?? 'policy-test', claims: input.claims },
    text: input.sql ?? input.text ?? '', parameters: [], attributes: {},
  };
  const d = policy.evaluate(command);
  // For a shell line, what the parser saw: the simple commands the rules were tried on.
  const shell = protocol === 'ssh' ? analyzeShell(command.text) : undefined;
  const shellCommands = shell?.ok === true ? shell.commands.map(({ program, argv, flags, operands, via, downloaded }) => ({ program, argv, flags, operands, via, downloaded })) : null;
  const out = { decision: d.decision, rule_id: d.rule_id, reason: d.reason, mask_set: d.mask_set, approval: d.approval ?? null, policy_revision: policy.revision, shell_commands: shellCommands };
  if (json) console.log(JSON.stringify(out, null, 2));
  else {
    for (const c of shellCommands ?? []) {
      const how = [c.via.length > 0 ? `via ${c.via.join(' > ')}` : '', c.downloaded ? 'runs downloaded code' : ''].filter(Boolean).join('; ');
      console.log(`command: ${c.program}  flags: ${c.flags.join(' ') || '-'}  operands: ${JSON.stringify(c.operands)}${how ? `  (${how})` : ''}`);
    }
    console.log(`${d.decision.toUpperCase()}  rule: ${d.rule_id ?? '(policy default)'}`);
    console.log(`reason: ${d.reason}`);
    if (d.mask_set !== null) console.log(`mask set: ${d.mask_set}`);
    if (d.approval !== undefined) console.log(`approval: ${d.approval.required} approver(s), timeout ${d.approval.timeout_s} s, approver claims ${JSON.stringify(d.approval.approvers.claims)}`);
  }
  // Scripts can branch on the exit code: 0 allowed (possibly masked), 3 held, 4 denied.
  return d.decision === 'deny' ? 4 : d.decision === 'hold' ? 3 : 0;
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
  // Table, effect, WHERE, Kubernetes, shell and ssh conditions: only an identical condition is known to cover.
  for (const key of ['tables', 'tables_read', 'tables_written', 'effects', 'without_where'] as const) if (!same(ma.sql?.[key], mb.sql?.[key])) return false;
  if (!same(ma.kubernetes, mb.kubernetes)) return false;
  // An allow rule never matches a statement with a guarded effect (dynamic, opaque, unknown) it does
  // not name; such a statement goes on to `b`, unless `b` is an allow rule with the same limit.
  const unnamed = GUARDED_EFFECTS.filter((e) => ma.sql?.effects?.includes(e) !== true);
  const bMaySeeSql = (mb.protocols === undefined || mb.protocols.includes('postgres')) && mb.shell === undefined && mb.ssh === undefined && mb.kubernetes === undefined;
  if (a.action === 'allow' && unnamed.length > 0 && bMaySeeSql && (b.action !== 'allow' || unnamed.some((e) => mb.sql?.effects?.includes(e) === true))) return false;
  if (!same(ma.shell, mb.shell) || !same(ma.ssh, mb.ssh)) return false;
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
  else console.log(approvals.length === 0 ? `(no ${status === 'all' ? '' : status + ' '}approvals)` : table(approvals as unknown as Record<string, unknown>[], ['approval_id', 'status', 'requester_subject', 'rule_id', 'target', 'approvals', 'required', 'expires_at', 'text']));
  return 0;
}

/** `agate approve ID` / `agate deny ID`: one approver's answer, recorded whether or not it is accepted. */
export async function answerCommand(config: AgateConfig, decision: 'approve' | 'deny', id: string, v: { token?: string; url?: string; comment?: string }): Promise<number> {
  const api = await ApiClient.fromConfig(config, v.token, v.url, 'approver');
  await api.post(`/v1/approvals/${encodeURIComponent(id)}/${decision}`, v.comment === undefined ? {} : { comment: v.comment });
  console.log(`${decision === 'approve' ? 'approved' : 'denied'} ${id}`);
  return 0;
}

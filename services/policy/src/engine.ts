import { createHash } from 'node:crypto';
import type { PolicyConfig, RuleConfig } from '../../../core/src/config.js';
import { analyzeShell } from '../../../core/src/shell/analyze.js';
import { SqlAnalysisCache } from '../../../core/src/sql/analyze.js';
import type { Command } from '../../../schemas/src/events.js';
import { anyGlob } from '../../../core/src/glob.js';

export interface PolicyDecision {
  /** `mask`: allowed, with the results the client receives masked by `mask_set`. */
  decision: 'allow' | 'deny' | 'mask';
  /** The rule that decided; null when the default applied. */
  rule_id: string | null;
  reason: string;
  mask_set: string | null;
}

/** Rule id used when the command cannot be parsed: Agate never allows what it cannot read. */
export const UNPARSEABLE_RULE = 'agate.unparseable';

interface CompiledRule {
  config: RuleConfig;
  matches(command: Command, statementKind: string | undefined): boolean;
}

/**
 * A validated policy, ready to evaluate. Evaluation order: for each statement of the command,
 * rules are tried top to bottom and the first whose every condition matches decides; when
 * none matches, the policy default decides. A command is allowed only if every statement is.
 */
export class CompiledPolicy {
  readonly revision: string;
  readonly #rules: CompiledRule[];
  readonly #default: 'allow' | 'deny';
  readonly #auditMaskSet: string;
  /** Parsed once per distinct text: a prepared statement executed 10,000 times is parsed once. */
  readonly #sql = new SqlAnalysisCache();
  /** Shell lines are analysed only when a rule looks at programs; otherwise nothing depends on it. */
  readonly #usesShell: boolean;

  /** `auditMaskSet` is the set `mask_client: true` refers to (config `masking.audit`). */
  constructor(config: PolicyConfig, auditMaskSet = 'default') {
    this.revision = 'sha256:' + createHash('sha256').update(JSON.stringify(config)).digest('hex').slice(0, 16);
    this.#default = config.default;
    this.#auditMaskSet = auditMaskSet;
    this.#rules = config.rules.map(compileRule);
    this.#usesShell = config.rules.some((r) => r.match.shell !== undefined);
  }

  evaluate(command: Command): PolicyDecision {
    let kinds: (string | undefined)[] = [undefined];
    if (command.protocol === 'postgres') {
      const analysis = this.#sql.analyze(command.text);
      if (!analysis.ok) return { decision: 'deny', rule_id: UNPARSEABLE_RULE, reason: `the statement cannot be parsed: ${analysis.error}`, mask_set: null };
      if (analysis.statements.length > 0) kinds = analysis.statements.map((s) => s.kind);
    } else if (command.protocol === 'ssh' && this.#usesShell && (command.attributes.request ?? 'exec') === 'exec') {
      // Each simple command's program is decided like a statement: any deny refuses the line.
      const analysis = analyzeShell(command.text);
      if (!analysis.ok) return { decision: 'deny', rule_id: UNPARSEABLE_RULE, reason: `the command line cannot be analysed: ${analysis.error}`, mask_set: null };
      if (analysis.programs.length > 0) kinds = analysis.programs;
    }
    // Any deny wins; otherwise a mask anywhere masks the whole command's results.
    let first: PolicyDecision | undefined;
    for (const kind of kinds) {
      const d = this.#decide(command, kind);
      if (d.decision === 'deny') return d;
      if (first === undefined || (d.decision === 'mask' && first.decision !== 'mask')) first = d;
    }
    return first!;
  }

  #decide(command: Command, kind: string | undefined): PolicyDecision {
    for (const rule of this.#rules) {
      if (!rule.matches(command, kind)) continue;
      const { id, action, message, mask_client } = rule.config;
      const reason = message ?? `${action === 'allow' ? 'allowed' : 'denied'} by rule ${id}`;
      if (action === 'allow' && mask_client !== false) {
        return { decision: 'mask', rule_id: id, reason, mask_set: mask_client === true ? this.#auditMaskSet : mask_client };
      }
      return { decision: action, rule_id: id, reason, mask_set: null };
    }
    return { decision: this.#default, rule_id: null, reason: `no rule matched; the policy default is ${this.#default}`, mask_set: null };
  }
}

function compileRule(config: RuleConfig): CompiledRule {
  const { claims, targets, protocols, sql, shell } = config.match;
  const claimTests = Object.entries(claims ?? {}).map(([name, globs]) => ({ name, test: anyGlob(globs) }));
  const targetTest = targets === undefined ? undefined : anyGlob(targets);
  const kinds = sql === undefined ? undefined : new Set(sql.statements);
  const program = shell === undefined ? undefined : anyGlob(shell.commands);
  return {
    config,
    matches(command, kind) {
      if (protocols !== undefined && !protocols.includes(command.protocol)) return false;
      if (targetTest !== undefined && !targetTest(command.target)) return false;
      for (const c of claimTests) {
        const value = claimValue(command, c.name);
        if (value === undefined || !c.test(value)) return false;
      }
      // `kind` is a statement kind for postgres and a program name for ssh.
      if (kinds !== undefined && (command.protocol !== 'postgres' || kind === undefined || !kinds.has(kind))) return false;
      if (program !== undefined && (command.protocol !== 'ssh' || kind === undefined || !program(kind))) return false;
      return true;
    },
  };
}

/** `iss` and `sub` come from the verified identity; other names from its claims. */
function claimValue(command: Command, name: string): string | undefined {
  if (name === 'iss') return command.identity.issuer;
  if (name === 'sub') return command.identity.subject;
  return command.identity.claims[name];
}

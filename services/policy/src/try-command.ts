import { randomUUID } from 'node:crypto';
import { analyzeShell } from '../../../core/src/shell/analyze.js';
import type { ApprovalConfig } from '../../../core/src/config.js';
import type { Command, Decision, Protocol } from '../../../schemas/src/events.js';
import type { CompiledPolicy } from './engine.js';

/** One command to try against a policy (`agate policy test`, the console's "try a command"). */
interface TryInput {
  text: string;
  protocol: Protocol;
  target: string;
  issuer?: string;
  subject?: string;
  claims: Record<string, string>;
}

interface TryResult {
  decision: Decision;
  rule_id: string | null;
  reason: string;
  mask_set: string | null;
  approval: ApprovalConfig | null;
  policy_revision: string;
  /** For a shell line, the simple commands the rules were tried on; null otherwise or when unreadable. */
  shell_commands: { program: string; argv: string[]; flags: string[]; operands: string[]; via: string[]; downloaded: boolean }[] | null;
}

/** The verdict `policy` gives one command, as if an identity with these claims sent it now. */
export function tryCommand(policy: CompiledPolicy, input: TryInput): TryResult {
  const command: Command = {
    type: 'Command', event_id: randomUUID(), time: Date.now() * 1000, session_id: randomUUID(), proxy_id: 'policy-test', sequence: 1,
    protocol: input.protocol, target: input.target,
    identity: { issuer: input.issuer ?? 'policy-test', subject: input.subject ?? input.claims.sub ?? 'policy-test', claims: input.claims },
    text: input.text, parameters: [], attributes: {},
  };
  const d = policy.evaluate(command);
  const shell = input.protocol === 'ssh' ? analyzeShell(command.text) : undefined;
  const shellCommands = shell?.ok === true ? shell.commands.map(({ program, argv, flags, operands, via, downloaded }) => ({ program, argv, flags, operands, via, downloaded })) : null;
  return { decision: d.decision, rule_id: d.rule_id, reason: d.reason, mask_set: d.mask_set, approval: d.approval ?? null, policy_revision: policy.revision, shell_commands: shellCommands };
}

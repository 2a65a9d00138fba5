import { parsePolicyCandidate } from '../../../../core/src/config.js';
import { AgateError, ConfigError, ErrorCode } from '../../../../core/src/errors.js';
import type { Store } from '../../../../core/src/store/store.js';
import type { Protocol } from '../../../../schemas/src/events.js';
import { CompiledPolicy, loadParsers } from '../../../policy/src/engine.js';
import type { PolicyInForce } from '../../../policy/src/in-force.js';
import { backtestRecord, timeSpecMicros } from '../../../policy/src/recorded-commands.js';
import { tryCommand } from '../../../policy/src/try-command.js';
import type { Route } from '../router.js';

const MAX_TRY_BODY = 64 * 1024;
const MAX_CANDIDATE_BODY = 1024 * 1024;
const PROTOCOLS: readonly Protocol[] = ['postgres', 'ssh', 'kubernetes'];

/**
 * The policy as people look at it: the rules in force (`GET /v1/policy`), one command tried
 * against them (`POST /v1/policy/test`, what `agate policy test` does) and a candidate policy run
 * over the record (`POST /v1/policy/backtest`). One backtest runs at a time: it decides every
 * recorded command of the period, and a second one would only compete with the first for CPU.
 */
export function policyRoutes(store: Store, inForce: PolicyInForce | undefined): Route[] {
  const policy = () => {
    if (inForce === undefined) throw new AgateError(ErrorCode.API_UNAVAILABLE, 'this query service was started without the policy (no config file)');
    return inForce.current();
  };
  let running = false;
  return [
    {
      method: 'GET', path: '/v1/policy', permission: 'read',
      async handler() {
        const p = policy();
        return { kind: 'json', body: { revision: p.compiled.revision, default: p.policy.default, rules: p.policy.rules, mask_sets: Object.keys(p.masking.sets), reload_error: p.reload_error } };
      },
    },
    {
      method: 'POST', path: '/v1/policy/test', permission: 'read',
      async handler(ctx) {
        const body = jsonObject(await ctx.body(MAX_TRY_BODY));
        const text = str(body, 'text', true)!;
        const protocol = (str(body, 'protocol') ?? 'postgres') as Protocol;
        if (!PROTOCOLS.includes(protocol)) throw bad(`protocol must be one of ${PROTOCOLS.join(', ')}`);
        const claims = body.claims ?? {};
        if (claims === null || typeof claims !== 'object' || Array.isArray(claims) || Object.values(claims).some((v) => typeof v !== 'string')) throw bad('claims must be an object of strings');
        await loadParsers();
        const result = tryCommand(policy().compiled, { text, protocol, target: str(body, 'target') ?? 'default', subject: str(body, 'subject'), issuer: str(body, 'issuer'), claims: claims as Record<string, string> });
        return { kind: 'json', body: result };
      },
    },
    {
      method: 'POST', path: '/v1/policy/backtest', permission: 'read',
      async handler(ctx) {
        const body = jsonObject(await ctx.body(MAX_CANDIDATE_BODY));
        const text = str(body, 'candidate', true)!;
        const source = str(body, 'source') ?? 'candidate';
        let candidate;
        try {
          candidate = parsePolicyCandidate(text, source, policy().masking);
        } catch (err) {
          if (err instanceof ConfigError) throw bad(`the candidate policy is not valid: ${err.message}`);
          throw err;
        }
        const now = Date.now();
        const fromMicros = timeSpecMicros(str(body, 'since', true)!, now);
        const until = str(body, 'until');
        const toMicros = until === undefined ? now * 1000 : timeSpecMicros(until, now, 'until');
        if (toMicros <= fromMicros) throw bad('until must be after since');
        const max = body.max_commands;
        if (max !== undefined && max !== null && (!Number.isInteger(max) || (max as number) < 1 || (max as number) > 10_000_000)) throw bad('max_commands must be an integer from 1 to 10000000');
        if (running) throw new AgateError(ErrorCode.API_CONFLICT, 'a backtest is already running on this query service; try again when it has finished');
        running = true;
        try {
          await loadParsers();
          const compiled = new CompiledPolicy(candidate.policy, candidate.masking.audit);
          const report = await backtestRecord(store, compiled, { period: { fromMicros, toMicros }, maxCommands: (max as number | null | undefined) ?? undefined, signal: ctx.signal });
          return { kind: 'json', body: report };
        } finally {
          running = false;
        }
      },
    },
  ];
}

const bad = (message: string) => new AgateError(ErrorCode.API_BAD_REQUEST, message);

function jsonObject(raw: Buffer): Record<string, unknown> {
  let parsed: unknown;
  try {
    parsed = JSON.parse(raw.toString('utf8'));
  } catch {
    throw bad('the body must be a JSON object');
  }
  if (parsed === null || typeof parsed !== 'object' || Array.isArray(parsed)) throw bad('the body must be a JSON object');
  return parsed as Record<string, unknown>;
}

function str(body: Record<string, unknown>, key: string, required = false): string | undefined {
  const v = body[key];
  if (v === undefined || v === null) {
    if (required) throw bad(`"${key}" is required`);
    return undefined;
  }
  if (typeof v !== 'string' || v.length === 0) throw bad(`"${key}" must be a non-empty string`);
  return v;
}

import type { QueryRolesConfig } from '../../../core/src/config.js';
import { anyGlob } from '../../../core/src/glob.js';
import type { Identity } from '../../../schemas/src/events.js';

export type Role = 'analyst' | 'auditor' | 'approver' | 'admin';
/**
 * What a route needs; each role grants a fixed set (SECURITY.md has the table).
 * - `read`: sessions, commands, their results and timelines, stats, refused logins
 * - `sql`: analyst SQL over the views
 * - `export`: the OCSF export
 * - `verify`: ledger verification, signed checkpoints and proofs
 * - `approvals`: held commands and the answers to them
 * - `answer`: approving or denying; every authenticated identity may try, and the route itself
 *   checks the approver role so that a refused attempt is recorded in the ledger too
 * - `terminate`: ending a live session (admins only)
 */
export type Permission = 'read' | 'sql' | 'export' | 'verify' | 'approvals' | 'answer' | 'terminate';

const GRANTS: Record<Role, readonly Permission[]> = {
  analyst: ['read', 'sql', 'export', 'verify', 'approvals'],
  // Auditors check the record and take it away, but do not explore it with SQL.
  auditor: ['read', 'export', 'verify', 'approvals'],
  // Approvers see what they are asked to approve, not the whole trail.
  approver: ['approvals'],
  admin: ['read', 'sql', 'export', 'verify', 'approvals', 'terminate'],
};

const ROLES: readonly Role[] = ['analyst', 'auditor', 'approver', 'admin'];

/** A compiled role mapping: identity → roles, from one claim (a string or a JSON list of strings). */
export function roleResolver(cfg: QueryRolesConfig): (identity: Identity) => Set<Role> {
  const tests = ROLES.map((role) => ({ role, test: anyGlob(cfg[role]) }));
  return (identity) => {
    const raw = cfg.claim === 'sub' ? identity.subject : identity.claims[cfg.claim];
    const values = raw === undefined ? [] : claimValues(raw);
    const roles = new Set<Role>(tests.filter((t) => cfg[t.role].length > 0 && values.some((v) => t.test(v))).map((t) => t.role));
    if (roles.size === 0 && cfg.default_role !== 'none') roles.add(cfg.default_role);
    return roles;
  };
}

export function allows(roles: ReadonlySet<Role>, permission: Permission): boolean {
  if (permission === 'answer') return true;
  for (const r of roles) if (GRANTS[r].includes(permission)) return true;
  return false;
}

// Non-string claims arrive JSON-encoded (see core/src/identity/oidc.ts), e.g. groups lists.
function claimValues(raw: string): string[] {
  if (!raw.startsWith('[')) return [raw];
  try {
    const parsed: unknown = JSON.parse(raw);
    return Array.isArray(parsed) ? parsed.filter((v): v is string => typeof v === 'string') : [raw];
  } catch {
    return [raw];
  }
}

import type { QueryRolesConfig } from '../../../core/src/config.js';
import { anyGlob } from '../../../core/src/glob.js';
import type { Identity } from '../../../schemas/src/events.js';

export type Role = 'analyst' | 'approver' | 'admin';
/** What a route needs; each role grants a fixed set. */
export type Permission = 'read' | 'sql' | 'export' | 'verify';

const GRANTS: Record<Role, readonly Permission[]> = {
  analyst: ['read', 'sql', 'export', 'verify'],
  // Approvers see what they approve; the approval routes check the approver role themselves,
  // so that a refused attempt is recorded in the ledger too.
  approver: ['read'],
  admin: ['read', 'sql', 'export', 'verify'],
};

const ROLES: readonly Role[] = ['analyst', 'approver', 'admin'];

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

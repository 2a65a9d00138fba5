import { anyGlob } from '../../../core/src/glob.js';
import type { Identity } from '../../../schemas/src/events.js';

/**
 * `query.require_claims`: the claims a verified token must carry, each matching one of its globs
 * (as in policy), before the identity may use the query API at all. `sub` and `iss` are the
 * identity's subject and issuer; a claim the token lacks fails.
 */
export function claimsAuthorizer(required: Readonly<Record<string, string | readonly string[]>>): (identity: Identity) => boolean {
  const tests = Object.entries(required).map(([name, globs]) => ({ name, test: anyGlob(globs) }));
  return (identity) => tests.every(({ name, test }) => {
    const value = claimOf(identity, name);
    return value !== undefined && test(value);
  });
}

function claimOf(identity: Identity, name: string): string | undefined {
  if (name === 'sub') return identity.subject;
  if (name === 'iss') return identity.issuer;
  return identity.claims[name];
}

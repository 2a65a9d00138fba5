import type { TokenVerifier } from '../../../core/src/identity/oidc.js';
import type { Identity } from '../../../schemas/src/events.js';

/** The longest delay setTimeout keeps; a longer one fires at once. */
const MAX_DELAY_MS = 2 ** 31 - 1;

/**
 * Calls `expired` when the token that vouches for `identity` runs out (its `exp` plus
 * `identity.session_grace_s`, `TokenVerifier.sessionDeadline`): a session lives no longer than
 * the token it opened with. Nothing for an identity no token vouches for (an SSH public key).
 * Returns what cancels it.
 */
export function endAtTokenExpiry(verifier: TokenVerifier, identity: Identity, expired: (message: string) => void): () => void {
  const deadline = verifier.sessionDeadline(identity);
  let timer: NodeJS.Timeout | undefined;
  const wait = () => {
    const left = deadline! - Date.now();
    if (left > 0) return void (timer = setTimeout(wait, Math.min(left, MAX_DELAY_MS)).unref());
    expired(`the token expired at ${new Date(Number(identity.claims.exp) * 1000).toISOString()}; connect again with a fresh token`);
  };
  if (deadline !== undefined) wait();
  return () => clearTimeout(timer);
}

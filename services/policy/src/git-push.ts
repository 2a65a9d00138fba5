import type { Command } from '../../../schemas/src/events.js';

/**
 * One ref update of a push, as the SSH proxy records it in a `git-push` Command's
 * `attributes.git_updates` (services/ingress-proxy/src/ssh/git/push-command.ts). `forced`:
 * `unknown` when the proxy could not prove the update fast-forward.
 */
export interface GitUpdate {
  ref: string;
  action: 'create' | 'update' | 'delete';
  forced: 'true' | 'false' | 'unknown';
}

/** The updates of a push; undefined for any other command, or when they cannot be read. */
export function gitUpdates(command: Command): GitUpdate[] | undefined {
  const a = command.attributes;
  if (command.protocol !== 'ssh' || a.request !== 'git-push' || a.git_updates === undefined) return undefined;
  let parsed: unknown;
  try {
    parsed = JSON.parse(a.git_updates);
  } catch {
    return undefined;
  }
  if (!Array.isArray(parsed) || parsed.length === 0) return undefined;
  const valid = parsed.every((u: Partial<GitUpdate>) =>
    typeof u.ref === 'string' && ['create', 'update', 'delete'].includes(u.action as string) && ['true', 'false', 'unknown'].includes(u.forced as string));
  return valid ? parsed.map((u: GitUpdate) => ({ ref: u.ref, action: u.action, forced: u.forced })) : undefined;
}

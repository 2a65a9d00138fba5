import type { Forced } from './fast-forward.js';
import { quote } from './invocation.js';
import type { RefUpdate } from './push-gate.js';

/**
 * The Command a push is decided as: one per push, after the exec of `git-receive-pack` was
 * allowed. Policy reads each update from `attributes.git_updates` (JSON, see `GitUpdateFact`;
 * services/policy/src/git-push.ts reads it back);
 * `forced` is `true` when any update is not a fast-forward, `unknown` when one cannot be proven
 * either way, else `false`.
 */
interface GitUpdateFact {
  ref: string;
  action: RefUpdate['action'];
  forced: Forced;
  old: string;
  new: string;
}

export function pushCommand(repo: string, updates: readonly RefUpdate[]): { text: string; attributes: Record<string, string> } {
  const facts: GitUpdateFact[] = updates.map((u) => ({ ref: u.ref, action: u.action, forced: u.forced, old: u.old, new: u.new }));
  const described = updates.map((u) => {
    const how = u.action === 'update' ? ` ${u.old.slice(0, 12)}..${u.new.slice(0, 12)}${u.forced === 'true' ? ' (forced)' : u.forced === 'unknown' ? ' (fast-forward not proven)' : ''}` : '';
    return `${u.action} ${u.ref}${how}`;
  });
  const forced = updates.some((u) => u.forced === 'true') ? 'true' : updates.some((u) => u.forced === 'unknown') ? 'unknown' : 'false';
  return {
    text: `git push ${quote(repo)}: ${described.join(', ')}`,
    attributes: { request: 'git-push', git_repo: repo, git_updates: JSON.stringify(facts), refs: updates.map((u) => u.ref).join(' '), forced },
  };
}

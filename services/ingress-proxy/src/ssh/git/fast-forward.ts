import type { RefCommand } from './push-request.js';

/**
 * Whether an update moves its ref to a descendant of where it was. `unknown` when Agate cannot
 * prove either answer; policy treats it like a forced update (fail closed).
 */
export type Forced = 'true' | 'false' | 'unknown';

/** Asks the target whether `old` is an ancestor of (or equal to) any of `tips`. */
export type AncestryCheck = (old: string, tips: string[]) => Promise<'yes' | 'no' | 'unknown'>;

/** Commits the target is asked about at most, per update; beyond that the answer is unknown. */
const MAX_TIPS = 32;

/**
 * An update is fast-forward when `old` is an ancestor of `new`. The new commits arrive in the
 * pack, so the walk goes from `new` through the pack's commits; where it leaves the pack, the
 * commits it reaches are already on the target, and the target answers for them. old is an
 * ancestor of new exactly when the walk meets it or it is an ancestor of one of those commits.
 */
export async function forcedUpdate(command: RefCommand, packParents: ReadonlyMap<string, readonly string[]>, check: AncestryCheck): Promise<Forced> {
  if (command.action !== 'update') return 'false';
  const tips = new Set<string>();
  const seen = new Set<string>();
  const stack = [command.new];
  while (stack.length > 0) {
    const oid = stack.pop()!;
    if (oid === command.old) return 'false';
    if (seen.has(oid)) continue;
    seen.add(oid);
    const parents = packParents.get(oid);
    if (parents === undefined) tips.add(oid);
    else stack.push(...parents);
  }
  // A new root commit (no parents) with nothing of the target's history: a rewrite.
  if (tips.size === 0) return 'true';
  if (tips.size > MAX_TIPS) return 'unknown';
  const answer = await check(command.old, [...tips]);
  return answer === 'yes' ? 'false' : answer === 'no' ? 'true' : 'unknown';
}

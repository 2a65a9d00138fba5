import type { Client } from 'ssh2';
import { quote } from './invocation.js';
import type { AncestryCheck } from './fast-forward.js';

/** How long the target may take to answer; past it the answer is unknown. */
const CHECK_TIMEOUT_MS = 10_000;

/**
 * Runs `git merge-base --is-ancestor` in the pushed repository on the target, over Agate's own
 * connection, before the push is forwarded. Exit 0: old is an ancestor of one of the tips; 1:
 * of none; anything else (an unknown commit, no repository) leaves the answer unknown.
 */
export function targetAncestry(upstream: Client, repo: string): AncestryCheck {
  return (old, tips) =>
    new Promise((resolve) => {
      const oid = /^[0-9a-f]{40,64}$/;
      if (!oid.test(old) || !tips.every((t) => oid.test(t))) return resolve('unknown');
      const dir = repoDirectory(repo);
      if (dir === undefined) return resolve('unknown');
      // receive-pack also finds `<path>.git`; a non-bare repository is found from its work tree.
      const script = `cd -- ${dir} 2>/dev/null || cd -- ${dir}.git || exit 3; r=1; for t in ${tips.join(' ')}; do git merge-base --is-ancestor ${old} "$t"; s=$?; [ $s = 0 ] && exit 0; [ $s = 1 ] || r=3; done; exit $r`;
      let settled = false;
      const done = (a: 'yes' | 'no' | 'unknown') => {
        if (!settled) resolve(a);
        settled = true;
      };
      const timer = setTimeout(() => done('unknown'), CHECK_TIMEOUT_MS);
      upstream.exec(script, (err, stream) => {
        if (err) return done('unknown');
        stream.resume();
        stream.stderr.resume();
        stream.on('exit', (code: number | null) => done(code === 0 ? 'yes' : code === 1 ? 'no' : 'unknown'));
        stream.on('close', () => {
          clearTimeout(timer);
          done('unknown');
        });
      });
    });
}

/**
 * The repository path as a shell word. receive-pack expands a leading `~` or `~user` itself
 * (the path reaches it quoted), so the same expansion is left to the shell here.
 */
function repoDirectory(repo: string): string | undefined {
  const m = /^~([a-z_][a-z0-9_-]*)?(\/.*)?$/.exec(repo);
  if (m === null) return quote(repo);
  return `~${m[1] ?? ''}${m[2] === undefined ? '' : `/${quote(m[2].slice(1))}`}`;
}

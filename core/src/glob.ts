/** Compiles a glob where `*` matches any run of characters (including `/`) into an anchored RegExp. */
export function compileGlob(glob: string): RegExp {
  const escaped = glob.split('*').map((part) => part.replace(/[.+?^${}()|[\]\\]/g, '\\$&'));
  return new RegExp(`^${escaped.join('.*')}$`, 's');
}

/**
 * A matcher for one glob. The common shapes (exact, `prefix*`, `*suffix`, `*`) become plain
 * string comparisons: the policy engine tests thousands of globs per second.
 */
export function globTest(glob: string): (value: string) => boolean {
  const stars = glob.split('*').length - 1;
  if (stars === 0) return (v) => v === glob;
  if (glob === '*') return () => true;
  if (stars === 1 && glob.endsWith('*')) {
    const prefix = glob.slice(0, -1);
    return (v) => v.startsWith(prefix);
  }
  if (stars === 1 && glob.startsWith('*')) {
    const suffix = glob.slice(1);
    return (v) => v.endsWith(suffix);
  }
  const re = compileGlob(glob);
  return (v) => re.test(v);
}

export function anyGlob(globs: string | readonly string[]): (value: string) => boolean {
  const tests = (typeof globs === 'string' ? [globs] : globs).map(globTest);
  if (tests.length === 1) return tests[0]!;
  return (value) => tests.some((t) => t(value));
}

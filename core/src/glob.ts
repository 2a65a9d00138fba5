/** Compiles a glob where `*` matches any run of characters (including `/`) into an anchored RegExp. */
export function compileGlob(glob: string): RegExp {
  const escaped = glob.split('*').map((part) => part.replace(/[.+?^${}()|[\]\\]/g, '\\$&'));
  return new RegExp(`^${escaped.join('.*')}$`, 's');
}

interface GlobOptions {
  /**
   * Letters match in either case, as `compileGlob` with the `i` flag would. An ASCII glob is
   * compared with the value lower-cased, which matches at least what the RegExp matches (the
   * Kelvin sign lower-cases to `k`; for masking, matching more is the safe side).
   */
  ignoreCase?: boolean;
}

const ASCII = /^[\x00-\x7f]*$/;

/**
 * A matcher for one glob. The common shapes (exact, `prefix*`, `*suffix`, `*infix*`, `*`) become
 * plain string comparisons: the policy engine tests thousands of globs per second, and a mask
 * set tests every key of every recorded object against each of its column globs.
 */
export function globTest(glob: string, options: GlobOptions = {}): (value: string) => boolean {
  if (options.ignoreCase === true) {
    if (!ASCII.test(glob)) {
      const re = new RegExp(compileGlob(glob).source, 'is');
      return (v) => re.test(v);
    }
    const test = globTest(glob.toLowerCase());
    return (v) => test(v.toLowerCase());
  }
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
  if (stars === 2 && glob.length > 2 && glob.startsWith('*') && glob.endsWith('*')) {
    const infix = glob.slice(1, -1);
    return (v) => v.includes(infix);
  }
  const re = compileGlob(glob);
  return (v) => re.test(v);
}

export function anyGlob(globs: string | readonly string[], options: GlobOptions = {}): (value: string) => boolean {
  const tests = (typeof globs === 'string' ? [globs] : globs).map((g) => globTest(g, options));
  if (tests.length === 1) return tests[0]!;
  return (value) => tests.some((t) => t(value));
}

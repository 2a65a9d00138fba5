/** Compiles a glob where `*` matches any run of characters (including `/`) into an anchored RegExp. */
export function compileGlob(glob: string): RegExp {
  const escaped = glob.split('*').map((part) => part.replace(/[.+?^${}()|[\]\\]/g, '\\$&'));
  return new RegExp(`^${escaped.join('.*')}$`, 's');
}

export function anyGlob(globs: string | readonly string[]): (value: string) => boolean {
  const res = (typeof globs === 'string' ? [globs] : globs).map(compileGlob);
  return (value) => res.some((re) => re.test(value));
}

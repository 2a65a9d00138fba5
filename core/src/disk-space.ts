/**
 * Whether `err`, or an error it was caused by, says a disk is full: ENOSPC or EDQUOT from the
 * operating system, NOT_ENOUGH_SPACE (code 243) from ClickHouse, which reserves room for a part
 * before it writes one. Callers say so by name (on /readyz, in the log): freeing space is the
 * remedy, and what was waiting resumes by itself.
 */
export function isOutOfSpace(err: unknown): boolean {
  for (let e = err, depth = 0; e instanceof Error && depth < 8; e = e.cause, depth++) {
    const code = (e as NodeJS.ErrnoException).code;
    if (code === 'ENOSPC' || code === 'EDQUOT') return true;
    if (/NOT_ENOUGH_SPACE|no space left on device|disk quota exceeded/i.test(e.message)) return true;
  }
  return false;
}

/**
 * A command line the CLI cannot run: an unknown command or option, a missing or malformed
 * argument. `agate` prints the message and the usage and exits 2, whichever command found it.
 */
export class UsageError extends Error {
  override readonly name = 'UsageError';
}

/** Node's parseArgs rejects unknown options and missing values with these codes. */
export function isUsageError(err: unknown): boolean {
  return err instanceof UsageError || (typeof (err as { code?: unknown })?.code === 'string' && (err as { code: string }).code.startsWith('ERR_PARSE_ARGS_'));
}

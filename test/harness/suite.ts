import { suite as uvuSuite, type Callback, type Test } from 'uvu';

/*
 * uvu's `suite`, with one change: an error thrown by a `before` hook fails the suite's tests with
 * that error's message. uvu 0.5 runs its hooks inside a `try` whose `finally` returns, so a hook
 * that throws (a harness that cannot start PostgreSQL, a port in use) leaves only "(0 / N)", no
 * message, and exit status 0. Every test file imports `suite` or `test` from here, never from
 * 'uvu' (test/harness/suite.test.ts checks it).
 */

type Context = Record<string, any>;

/** A `before` hook threw: the tests of its suite did not run. */
export class BeforeHookFailed extends Error {
  constructor(cause: unknown, first: boolean) {
    const text = cause instanceof Error ? `${cause.name}: ${cause.message}` : String(cause);
    const line = text.split('\n')[0];
    // In full, with the hook's frames, under the first test only: a harness error can carry a
    // service's log, and N tests need not print it N times.
    super(`before hook failed, test not run: ${first ? text : `${line} (in full under the first test)`}`, { cause });
    this.name = 'BeforeHookFailed';
    // uvu prints the message, then the stack's lines after its first.
    const frames = first && cause instanceof Error ? (cause.stack ?? '').split('\n').filter((l) => /^\s+at /.test(l)) : [];
    this.stack = [`${this.name}: ${line}`, ...frames].join('\n');
  }
}

/** uvu's `suite` whose `before` hooks report their errors (see above). */
export function suite<T = Context>(title?: string, context?: T): Test<T> {
  const s = uvuSuite<T>(title, context);
  const register = s.before;
  let failed: { error: unknown } | undefined;
  let reported = false;
  // Registered first, so it runs before each test and before the suite's own `before.each` hooks.
  register.each(() => {
    if (failed === undefined) return;
    const error = new BeforeHookFailed(failed.error, !reported);
    reported = true;
    throw error;
  });
  const before = ((hook: Callback<T>) =>
    register(async (ctx) => {
      if (failed !== undefined) return; // as in uvu, the hooks after a failed one do not run
      try {
        await hook(ctx);
      } catch (error) {
        failed = { error };
      }
    })) as Test<T>['before'];
  before.each = register.each;
  s.before = before;
  return s;
}

/** uvu's unnamed default suite, built the same way. */
export const test = suite();

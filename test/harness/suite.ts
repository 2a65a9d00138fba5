import { suite as uvuSuite, type Callback, type Test } from 'uvu';

/*
 * uvu's `suite`, with its per-test hooks run by us so that no error is lost. uvu 0.5 runs a
 * suite inside a `try` whose `finally` returns, so whatever escapes its per-test `catch` vanishes:
 * a `before` hook that throws (a harness that cannot start PostgreSQL) leaves only "(0 / N)", no
 * message and exit status 0; so does an `after.each` that throws (uvu calls it again from the
 * catch) or a test that throws something other than an Error (formatting it throws). Here:
 * - a `before` hook's error fails every test of its suite with that error (in full under the
 *   first test), and the `before` hooks after it do not run, as in uvu;
 * - `before.each`, the test and every `after.each` run inside the test's own handler, so the
 *   first error among them fails that test, and the `after.each` hooks always run;
 * - a thrown non-Error is reported as an Error naming it.
 * Every test file imports `suite` or `test` from here, never from 'uvu'
 * (test/harness/suite.test.ts checks it).
 */

type Context = Record<string, any>;
type Hook = 'before' | 'after.each';

/** A hook threw; the test it failed is named by uvu beside this error. */
class HookFailed extends Error {
  constructor(hook: Hook, cause: unknown, inFull: boolean) {
    const text = describe(cause);
    const line = text.split('\n')[0];
    const what = hook === 'before' ? 'before hook failed, test not run' : 'after.each hook failed';
    // In full, with the hook's frames, once: a harness error can carry a service's log, and N
    // tests need not print it N times.
    super(`${what}: ${inFull ? text : `${line} (in full under the first test)`}`, { cause });
    this.name = 'HookFailed';
    // uvu prints the message, then the stack's lines after its first.
    this.stack = [`${this.name}: ${line}`, ...(inFull ? framesOf(cause) : [])].join('\n');
  }
}

function describe(value: unknown): string {
  return value instanceof Error ? `${value.name}: ${value.message}` : `${typeof value} thrown: ${String(value)}`;
}

function framesOf(value: unknown): string[] {
  return value instanceof Error ? (value.stack ?? '').split('\n').filter((l) => /^\s+at /.test(l)) : [];
}

/** uvu's `suite` whose hooks and tests cannot lose an error (see above). */
export function suite<T = Context>(title?: string, context?: T): Test<T> {
  const s = uvuSuite<T>(title, context);
  const beforeEach: Array<Callback<T>> = [];
  const afterEach: Array<Callback<T>> = [];
  let beforeFailure: { error: unknown; reported: boolean } | undefined;

  const wrap = (handler: Callback<T>): Callback<T> => async (ctx) => {
    if (beforeFailure !== undefined) {
      const inFull = !beforeFailure.reported;
      beforeFailure.reported = true;
      throw new HookFailed('before', beforeFailure.error, inFull);
    }
    let failure: { error: unknown } | undefined;
    try {
      for (const hook of beforeEach) await hook(ctx);
      await handler(ctx);
    } catch (error) {
      failure = { error };
    }
    for (const hook of afterEach) {
      try {
        await hook(ctx);
      } catch (error) {
        failure ??= { error: new HookFailed('after.each', error, true) };
      }
    }
    if (failure === undefined) return;
    throw failure.error instanceof Error ? failure.error : new Error(describe(failure.error), { cause: failure.error });
  };

  const t = ((name: string, handler: Callback<T>) => s(name, wrap(handler))) as Test<T>;
  t.only = (name, handler) => s.only(name, wrap(handler));
  t.skip = (name, handler) => s.skip(name, handler);
  t.before = Object.assign(
    (hook: Callback<T>) =>
      s.before(async (ctx) => {
        if (beforeFailure !== undefined) return;
        try {
          await hook(ctx);
        } catch (error) {
          beforeFailure = { error, reported: false };
        }
      }),
    { each: (hook: Callback<T>) => void beforeEach.push(hook) },
  );
  // An `after` hook's error escapes uvu's `finally` as an unhandled rejection: Node prints it and
  // exits 1, so it is passed through as is.
  t.after = Object.assign((hook: Callback<T>) => s.after(hook), { each: (hook: Callback<T>) => void afterEach.push(hook) });
  t.run = () => s.run();
  return t;
}

/** uvu's unnamed default suite, built the same way. */
export const test = suite();

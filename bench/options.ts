/**
 * A benchmark's options, declared once and read the same way by every bench: `--name value` for
 * numbers and strings (the value taken as it is, so `--node-args "--max-semi-space-size=64"`
 * works), `--name` alone for flags, and options that may be given several times. An option not
 * declared, one without its value, or a number that is not one stops the bench with the option's
 * name, instead of a NaN in its figures or a misspelt option silently ignored.
 *
 * @example
 * const o = readOptions(args, { numbers: { seconds: 10, rate: 0 }, flags: ['diagnosis'] });
 * o.seconds; // 10 unless `--seconds N` was given
 */
interface OptionSpec<N extends string, S extends string, F extends string, R extends string> {
  numbers?: Readonly<Record<N, number>>;
  strings?: Readonly<Record<S, string>>;
  flags?: readonly F[];
  /** Options that may repeat: each value, in order. */
  repeated?: readonly R[];
}

type Options<N extends string, S extends string, F extends string, R extends string> =
  { [K in N]: number } & { [K in S]: string } & { [K in F]: boolean } & { [K in R]: string[] };

export function readOptions<N extends string = never, S extends string = never, F extends string = never, R extends string = never>(
  args: readonly string[],
  spec: OptionSpec<N, S, F, R>,
): Options<N, S, F, R> {
  const numbers: Readonly<Record<string, number>> = spec.numbers ?? {};
  const flags: readonly string[] = spec.flags ?? [];
  const repeated: readonly string[] = spec.repeated ?? [];
  const out: Record<string, unknown> = { ...numbers, ...spec.strings };
  for (const f of flags) out[f] = false;
  for (const r of repeated) out[r] = [];
  for (let i = 0; i < args.length; i++) {
    const name = args[i]!.startsWith('--') ? args[i]!.slice(2) : '';
    if (!Object.hasOwn(out, name)) throw new Error(`unknown option ${JSON.stringify(args[i])}; this bench takes ${Object.keys(out).map((k) => `--${k}`).join(' ')}`);
    if (flags.includes(name)) {
      out[name] = true;
      continue;
    }
    const value = args[++i];
    if (value === undefined) throw new Error(`--${name} needs a value`);
    if (repeated.includes(name)) (out[name] as string[]).push(value);
    else if (Object.hasOwn(numbers, name)) out[name] = number(name, value);
    else out[name] = value;
  }
  return out as Options<N, S, F, R>;
}

function number(name: string, value: string): number {
  const n = Number(value);
  if (value.trim() === '' || !Number.isFinite(n)) throw new Error(`--${name} takes a number, not ${JSON.stringify(value)}`);
  return n;
}

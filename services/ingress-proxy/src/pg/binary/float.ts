/*
 * float4 and float8 as the server prints them (extra_float_digits 1, the default since
 * PostgreSQL 12): the shortest digits that read back as the same value, in fixed notation for
 * decimal exponents from −4 up to 14 (float8) or 5 (float4), otherwise as `1.5e+20`.
 */

// float4: 4-byte IEEE 754 single, big-endian
export function float4Text(b: Buffer): string | undefined {
  if (b.length !== 4) return undefined;
  const x = b.readFloatBE();
  return special(x) ?? format(shortestSingle(x), 6);
}

// float8: 8-byte IEEE 754 double, big-endian
export function float8Text(b: Buffer): string | undefined {
  if (b.length !== 8) return undefined;
  const x = b.readDoubleBE();
  return special(x) ?? format(x.toExponential(), 15); // JavaScript's own digits are the shortest for a double
}

function special(x: number): string | undefined {
  if (Number.isNaN(x)) return 'NaN';
  if (x === Infinity) return 'Infinity';
  if (x === -Infinity) return '-Infinity';
  if (Object.is(x, -0)) return '-0';
  return undefined;
}

/** The fewest significant digits that round back to the same single-precision value. */
function shortestSingle(x: number): string {
  for (let digits = 1; digits < 9; digits++) {
    const s = x.toExponential(digits - 1);
    if (Math.fround(Number(s)) === x) return s;
  }
  return x.toExponential(8);
}

/** `d.ddde±x` → the server's fixed or scientific spelling. */
function format(exponential: string, fixedBelow: number): string {
  const m = /^(-?)(\d)(?:\.(\d+))?e([+-]\d+)$/.exec(exponential)!;
  const [, sign, first, rest = '', exp] = m;
  const digits = first! + rest;
  const e = Number(exp);
  if (e < -4 || e >= fixedBelow) return `${sign}${first}${rest ? `.${rest}` : ''}e${e < 0 ? '-' : '+'}${String(Math.abs(e)).padStart(2, '0')}`;
  if (e < 0) return `${sign}0.${'0'.repeat(-e - 1)}${digits}`;
  const int = digits.slice(0, e + 1).padEnd(e + 1, '0');
  const frac = digits.slice(e + 1);
  return `${sign}${int}${frac ? `.${frac}` : ''}`;
}

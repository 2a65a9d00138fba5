/*
 * numeric's binary send format (src/backend/utils/adt/numeric.c, numeric_send):
 * Int16 ndigits | Int16 weight | Int16 sign | Int16 dscale | ndigits × Int16 base-10000 digit.
 * The value is Σ digit[i] × 10000^(weight − i); dscale is the number of decimal places shown.
 */

const SIGN = { positive: 0x0000, negative: 0x4000, nan: 0xc000, infinity: 0xd000, negativeInfinity: 0xf000 } as const;
/** numeric's own limits: 1000 digits of precision, so at most this many base-10000 digits. */
const MAX_DIGITS = 1000;

export function numericText(b: Buffer): string | undefined {
  if (b.length < 8) return undefined;
  const ndigits = b.readUInt16BE(0);
  const weight = b.readInt16BE(2);
  const sign = b.readUInt16BE(4);
  const dscale = b.readUInt16BE(6);
  if (b.length !== 8 + 2 * ndigits || ndigits > MAX_DIGITS || dscale > 0x3fff) return undefined;
  if (sign === SIGN.nan) return 'NaN';
  if (sign === SIGN.infinity) return 'Infinity';
  if (sign === SIGN.negativeInfinity) return '-Infinity';
  if (sign !== SIGN.positive && sign !== SIGN.negative) return undefined;
  const digits: number[] = [];
  for (let i = 0; i < ndigits; i++) {
    const d = b.readUInt16BE(8 + 2 * i);
    if (d > 9999) return undefined;
    digits.push(d);
  }
  const group = (i: number) => String(digits[i] ?? 0).padStart(4, '0');
  // Integer part: the groups of weight 0 and above; leading zeros of the first dropped.
  let int = '';
  for (let i = 0; i <= weight; i++) int += group(i);
  int = int.replace(/^0+/, '') || '0';
  // Fraction: the groups below weight 0, cut to dscale digits.
  let frac = '';
  for (let w = -1; frac.length < dscale; w--) frac += group(weight - w);
  frac = frac.slice(0, dscale);
  const text = frac === '' ? int : `${int}.${frac}`;
  return sign === SIGN.negative && /[1-9]/.test(text) ? `-${text}` : text;
}

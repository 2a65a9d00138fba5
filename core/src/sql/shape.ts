/**
 * A statement's shape: its text with every standalone unsigned integer replaced by `0`, for
 * texts simple enough that this is certain to change nothing but those numbers' values. Texts
 * that differ only in such numbers (`... WHERE aid = 14940` and `... WHERE aid = 57569`: every
 * statement of a client that builds SQL without parameters) then parse to the same tree shape,
 * with the same statement kinds, relations and clauses, so policy facts worked out for one hold
 * for all of them.
 *
 * Undefined (no shape) when the text has anything that could make a digit part of something
 * else: quotes of any kind (string, identifier, dollar, escape strings), a backslash, a comment,
 * or a character outside printable ASCII (an unquoted identifier may hold letters such as `é`,
 * which the digit rule below would not see as part of a name).
 */
export function sqlShape(text: string): string | undefined {
  if (UNSHAPED.test(text)) return undefined;
  // A digit run next to a letter, digit, `_` or `$` belongs to a name (t1), a parameter ($1) or
  // a number with an exponent or radix prefix (1e5, 0x1F): left as it is.
  return text.replace(STANDALONE_INTEGER, '0');
}

const UNSHAPED = /['"$\\`]|--|\/\*|[^\x20-\x7e\t\n\r]/;
const STANDALONE_INTEGER = /(?<![A-Za-z0-9_$])[0-9]+(?![A-Za-z0-9_$])/g;

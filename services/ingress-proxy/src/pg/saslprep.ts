import { violatesBidiRule } from './stringprep-bidi.js';

/**
 * SASLprep (RFC 4013) as PostgreSQL applies it to SCRAM passwords: pure ASCII passes through
 * untouched; otherwise map, NFKC-normalise, then check for prohibited code points and the
 * bidirectional-text rule (RFC 3454 section 6, stringprep-bidi.ts). When the result would be
 * refused, PostgreSQL (server and libpq alike) falls back to the raw password, so this returns
 * the input unchanged in that case rather than failing.
 */

/** RFC 3454 C.1.2: non-ASCII space characters, mapped to U+0020. */
const NON_ASCII_SPACE = /[\u00A0\u1680\u2000-\u200A\u202F\u205F\u3000]/g;
/** RFC 3454 B.1: characters commonly mapped to nothing (soft hyphen, joiners, variation selectors...). */
const MAPPED_TO_NOTHING = /[\u00AD\u034F\u1806\u180B-\u180D\u200B-\u200D\u2060\uFE00-\uFE0F\uFEFF]/g;
/**
 * RFC 3454 C.2-C.9 plus unassigned code points (A.1): controls, private use, non-characters,
 * surrogates, characters inappropriate for plain text or canonical representation, change-display
 * and tagging characters.
 */
const PROHIBITED =
  /[\u0000-\u001F\u007F-\u009F\u0340\u0341\u06DD\u070F\u180E\u200C-\u200F\u2028-\u202E\u2060-\u2063\u206A-\u206F\u2FF0-\u2FFB\uFEFF\uFFF9-\uFFFD\u{1D173}-\u{1D17A}\u{E0001}\u{E0020}-\u{E007F}\p{Co}\p{Cs}\p{Cn}\p{Noncharacter_Code_Point}]/u;

/** Prepares a password for SCRAM the way PostgreSQL does. */
export function saslprep(password: string): string {
  if (/^[\x00-\x7F]*$/.test(password)) return password;
  const prepared = password.replace(NON_ASCII_SPACE, ' ').replace(MAPPED_TO_NOTHING, '').normalize('NFKC');
  return PROHIBITED.test(prepared) || violatesBidiRule(prepared) ? password : prepared;
}

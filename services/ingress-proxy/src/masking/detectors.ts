import type { DetectorName } from '../../../../core/src/config.js';

/**
 * Value detectors: each finds one kind of secret inside free text. `hint` is a cheap substring
 * test run first, so ordinary values (the vast majority) never reach a regular expression.
 */
export interface Detector {
  name: DetectorName;
  hint: (text: string) => boolean;
  /** Global, so `replace` visits every match. */
  pattern: RegExp;
  /** Extra check on a match (e.g. Luhn); absent means every match counts. */
  accept?: (match: string) => boolean;
}

const DETECTORS: Record<DetectorName, Detector> = {
  // PEM and OpenSSH private keys; a block cut short (no END line) is masked to the end of the value.
  private_key: {
    name: 'private_key',
    hint: (t) => t.includes('PRIVATE KEY'),
    pattern: /-----BEGIN ([A-Z0-9]+ )*PRIVATE KEY-----[\s\S]*?(-----END ([A-Z0-9]+ )*PRIVATE KEY-----|$)/g,
  },
  // Three base64url parts, the first two JSON objects ("eyJ" is the encoding of '{"').
  jwt: {
    name: 'jwt',
    hint: (t) => t.includes('eyJ'),
    pattern: /eyJ[A-Za-z0-9_-]{4,}\.eyJ[A-Za-z0-9_-]{4,}\.[A-Za-z0-9_-]*/g,
  },
  // AWS access key ids, GitHub, GitLab, Google API and Slack tokens.
  cloud_access_key: {
    name: 'cloud_access_key',
    hint: (t) => /A[KS]IA|gh[pousr]_|glpat-|AIza|xox[abprs]-/.test(t),
    pattern: /\b(?:A[KS]IA[A-Z0-9]{16}|gh[pousr]_[A-Za-z0-9]{36,255}|glpat-[A-Za-z0-9_-]{20,}|AIza[0-9A-Za-z_-]{35}|xox[abprs]-[A-Za-z0-9-]{10,})\b/g,
  },
  // bcrypt, argon2, sha-crypt, PostgreSQL md5 and SCRAM verifiers.
  password_hash: {
    name: 'password_hash',
    hint: (t) => t.includes('$') || t.includes('md5'),
    pattern: /\$2[abxy]?\$\d{2}\$[./A-Za-z0-9]{53}|\$argon2(?:id|i|d)\$[^\s'",]+|\$[56]\$(?:rounds=\d+\$)?[./A-Za-z0-9]{1,16}\$[./A-Za-z0-9]{43,86}|\bmd5[0-9a-f]{32}\b|SCRAM-SHA-256\$\d+:[A-Za-z0-9+/=]+\$[A-Za-z0-9+/=]+:[A-Za-z0-9+/=]+/g,
  },
  // 13 to 19 digits, optionally grouped by spaces or dashes, passing the Luhn check. Not when
  // the run touches a hex digit or a dash: then it is a piece of a dash-grouped hex value such as
  // a UUID (11111111-2222-3333-4444-555555555555 passes Luhn across its dashes).
  card_number: {
    name: 'card_number',
    hint: (t) => /\d{4}/.test(t),
    pattern: /(?<![\dA-Fa-f-]|\d\.)\d(?:[ -]?\d){12,18}(?![\dA-Fa-f-]|\.\d)/g,
    accept: (m) => luhn(m.replace(/[ -]/g, '')),
  },
  // The password of a libpq key=value string (`host=db password=…`), of an ADO/JDBC string or URL
  // query (`Password=…;`, `?password=…&`), and of a URI's user info (`postgres://u:…@host`).
  connection_string: {
    name: 'connection_string',
    hint: (t) => /password|:\/\//i.test(t),
    pattern: /(?<=\bpassword\s*=\s*)(?!\[masked)(?:'(?:[^'\\]|\\.)*'?|[^\s'&;]+)|(?<=\b[A-Za-z][A-Za-z0-9+.-]*:\/\/[^\s:/@]*:)[^\s@/]+(?=@)/gi,
  },
  email: {
    name: 'email',
    hint: (t) => t.includes('@'),
    pattern: /[A-Za-z0-9._%+-]+@[A-Za-z0-9-]+(?:\.[A-Za-z0-9-]+)*\.[A-Za-z]{2,}/g,
  },
};

export function detector(name: DetectorName): Detector {
  return DETECTORS[name];
}

/** The Luhn (mod 10) check digit test used by payment card numbers. */
export function luhn(digits: string): boolean {
  if (digits.length < 13 || digits.length > 19) return false;
  let sum = 0;
  for (let i = 0; i < digits.length; i++) {
    let d = digits.charCodeAt(digits.length - 1 - i) - 48;
    if (i % 2 === 1) {
      d *= 2;
      if (d > 9) d -= 9;
    }
    sum += d;
  }
  return sum % 10 === 0;
}

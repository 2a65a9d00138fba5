import { checkSetting, LEXING_SETTINGS, PINNED, type LexingSetting } from '../../../../core/src/sql/lexing.js';

/**
 * The session settings a client asks for at startup, decided before the upstream session opens,
 * and the server's later reports of the settings that change how it lexes SQL.
 */

/** One `-c name=value` (or `--name=value`) of the startup `options` parameter. */
export interface StartupSetting {
  name: string;
  value: string;
}

type OptionsParse = { ok: true; settings: StartupSetting[] } | { ok: false; error: string };

/**
 * Splits the startup `options` parameter as the server does (postinit.c pg_split_opts: words
 * separated by white space, a backslash takes the next character literally), then reads the
 * words as the server's command-line switches would be read. Only `-c name=value`, `-cname=value`
 * and `--name=value` are accepted: the other switches of the postgres binary are obscure for a
 * client and Agate would have to follow each. As in ParseLongOption, `-` in a name becomes `_`.
 */
export function parseStartupOptions(options: string): OptionsParse {
  const words = splitOptions(options);
  const settings: StartupSetting[] = [];
  for (let i = 0; i < words.length; i++) {
    const word = words[i]!;
    let assignment: string | undefined;
    if (word === '-c') assignment = words[++i];
    else if (word.startsWith('--')) assignment = word.slice(2);
    else if (word.startsWith('-c')) assignment = word.slice(2);
    else return { ok: false, error: `startup option "${word}": Agate accepts only -c name=value and --name=value` };
    if (assignment === undefined) return { ok: false, error: 'startup option -c without a setting' };
    const eq = assignment.indexOf('=');
    if (eq <= 0) return { ok: false, error: `startup option "${assignment}" needs the form name=value` };
    settings.push({ name: assignment.slice(0, eq).replace(/-/g, '_'), value: assignment.slice(eq + 1) });
  }
  return { ok: true, settings };
}

/** C isspace in the server's C locale. */
const SPACE = new Set([' ', '\t', '\n', '\v', '\f', '\r']);

function splitOptions(options: string): string[] {
  const words: string[] = [];
  let word: string | undefined;
  let escaped = false;
  for (const ch of options) {
    if (!escaped && SPACE.has(ch)) {
      if (word !== undefined) words.push(word);
      word = undefined;
      continue;
    }
    word ??= '';
    if (!escaped && ch === '\\') escaped = true;
    else {
      escaped = false;
      word += ch;
    }
  }
  if (word !== undefined) words.push(word);
  return words;
}

/** The `options` value Agate sends upstream: exactly the decided settings, escaped for pg_split_opts. */
export function serializeOptions(settings: readonly StartupSetting[]): string {
  const escape = (s: string) => s.replace(/[\\\s]/g, (c) => `\\${c}`);
  return settings.map((s) => `-c ${escape(s.name)}=${escape(s.value)}`).join(' ');
}

/**
 * The SQL a startup setting is decided (and recorded) as: the `SET` it amounts to, so rules on
 * `VariableSetStmt` and Agate's lexing check see it like any other SET.
 */
export function setStatement(s: StartupSetting): string {
  const name = s.name.split('.').map((part) => `"${part.replace(/"/g, '""')}"`).join('.');
  return `SET ${name} TO '${s.value.replace(/'/g, "''")}'`;
}

type StartupCheck = { ok: true; clientEncoding: string } | { ok: false; reason: string };

/**
 * The client's own `client_encoding` startup parameter: one Agate reads exactly, or refused.
 * Absent, Agate asks for UTF8 (the server would otherwise pick the database's encoding, or one
 * set by ALTER ROLE / DATABASE).
 */
export function checkClientEncoding(value: string | undefined): StartupCheck {
  if (value === undefined) return { ok: true, clientEncoding: PINNED.client_encoding };
  const check = checkSetting('client_encoding', value);
  return check.ok ? { ok: true, clientEncoding: value } : { ok: false, reason: check.reason };
}

/** Startup parameters Agate passes on from the client; the lexing settings are always sent. */
const PASSED_ON = ['application_name', 'DateStyle', 'TimeZone'] as const;

/**
 * The upstream startup parameters: the client's harmless ones, the accepted client encoding,
 * `standard_conforming_strings=on` (so a role or database default of off never applies, and
 * RESET returns to on), and the decided `options`.
 */
export function upstreamStartup(client: Record<string, string>, clientEncoding: string, settings: readonly StartupSetting[]): Record<string, string> {
  const out: Record<string, string> = {};
  for (const k of PASSED_ON) if (client[k] !== undefined) out[k] = client[k];
  if (settings.length > 0) out.options = serializeOptions(settings);
  // Startup parameters are applied after `options` (postinit.c), so these win over any -c.
  out.client_encoding = clientEncoding;
  out.standard_conforming_strings = PINNED.standard_conforming_strings;
  return out;
}

/**
 * Follows the server's ParameterStatus reports of the lexing settings. A report of a value Agate
 * cannot follow (a function or dynamic SQL changed it: text Agate can check is refused before it
 * runs) means every later statement could be read differently by the server: the caller ends the
 * session.
 */
export class LexingSettings {
  readonly #current = new Map<LexingSetting, string>();

  /** A violation message for a report, or undefined when it is fine (or about another setting). */
  observe(name: string, value: string): string | undefined {
    const key = name.toLowerCase() as LexingSetting;
    if (!(LEXING_SETTINGS as readonly string[]).includes(key)) return undefined;
    this.#current.set(key, value);
    const check = checkSetting(key, value);
    return check.ok ? undefined : `the server now reads SQL with ${key} = '${value}', which Agate cannot follow`;
  }

  /** After startup: both settings must have been reported (PostgreSQL reports them at startup). */
  missing(): LexingSetting[] {
    return LEXING_SETTINGS.filter((k) => !this.#current.has(k));
  }
}

// Reads what PostgreSQL really executed from pgaudit's server log, and checks it against what
// Agate recorded: the independent oracle of test/e2e/pgaudit-oracle.test.ts.
import { analyzeSql } from '../../core/src/sql/analyze.js';
import { PREPARED_ATTRIBUTE, PREPARED_SEPARATOR } from '../../core/src/sql/prepared.js';
import type { AgateEvent, Command, Response, Verdict } from '../../schemas/src/events.js';

/** One `AUDIT: SESSION,…` line (pgaudit's CSV fields), with the log_line_prefix the harness sets. */
export interface AuditEntry {
  app: string;
  user: string;
  pid: number;
  statementId: number;
  substatementId: number;
  auditClass: string;
  command: string;
  statement: string;
  parameter: string;
}

const LINE = /^app=(.*?) user=(\S*) pid=(\d+) LOG:\s+AUDIT: (.*)$/;

/** The AUDIT entries of a server log (statements spanning lines are joined back). */
export function auditEntries(log: string): AuditEntry[] {
  const out: AuditEntry[] = [];
  // A logged statement with newlines continues on lines without the prefix.
  const records: string[] = [];
  for (const line of log.split('\n')) {
    if (/^app=/.test(line)) records.push(line);
    else if (records.length > 0 && !/^\d{4}-/.test(line)) records[records.length - 1] += `\n${line}`;
  }
  for (const record of records) {
    const m = LINE.exec(record.replace(/\n/g, '\u0000'));
    if (m === null) continue;
    const fields = csv(m[4]!.replace(/\u0000/g, '\n'));
    if (fields[0] !== 'SESSION') continue;
    out.push({
      app: m[1]!, user: m[2]!, pid: Number(m[3]),
      statementId: Number(fields[1]), substatementId: Number(fields[2]), auditClass: fields[3] ?? '', command: fields[4] ?? '',
      statement: fields[7] ?? '', parameter: fields[8] ?? '',
    });
  }
  return out;
}

/** CSV as pgaudit writes it: a field with a comma, quote or newline is quoted, quotes doubled. */
function csv(text: string): string[] {
  const fields: string[] = [];
  let i = 0;
  while (i <= text.length) {
    if (text[i] === '"') {
      let value = '';
      i += 1;
      for (;;) {
        const q = text.indexOf('"', i);
        if (q === -1) return [...fields, value + text.slice(i)];
        value += text.slice(i, q);
        if (text[q + 1] === '"') {
          value += '"';
          i = q + 2;
        } else {
          i = q + 1;
          break;
        }
      }
      fields.push(value);
      i += 1; // the comma
    } else {
      const comma = text.indexOf(',', i);
      // The last field (parameters) is taken whole.
      if (comma === -1 || fields.length === 8) {
        fields.push(text.slice(i));
        break;
      }
      fields.push(text.slice(i, comma));
      i = comma + 1;
    }
  }
  return fields;
}

const norm = (s: string) => s.replace(/\s+/g, ' ').trim().replace(/;$/, '').trim();

/** The first keyword of a command tag or statement: `CREATE TABLE` → CREATE; WITH … SELECT → SELECT. */
function tagOf(text: string): string {
  const parsed = analyzeSql(text);
  if (parsed.ok && parsed.statements.length === 1) {
    const m = /^(Select|Insert|Update|Delete|Merge)Stmt$/.exec(parsed.statements[0]!.kind);
    if (m !== null) return m[1]!.toUpperCase();
  }
  return (/^[\s(]*([A-Za-z]+)/.exec(text.replace(/^\s*(--[^\n]*\n|\/\*[\s\S]*?\*\/)*/, ''))?.[1] ?? '').toUpperCase();
}

interface Recorded {
  text: string;
  tag: string;
  allowed: boolean;
  /** For an EXECUTE: the PREPARE texts Agate decided it as. */
  prepared: string[];
}

/**
 * Agate's record as the oracle sees it: every command, allowed when its verdict allowed it (or
 * masked it) and nothing refused it afterwards.
 */
function recorded(events: AgateEvent[]): Recorded[] {
  const verdicts = new Map<string, Verdict>();
  const refused = new Set<string>();
  for (const e of events) {
    if (e.type === 'Verdict' && e.decision !== 'hold') verdicts.set(e.command_id, e);
    if (e.type === 'Response' && (e as Response).status === 'refused') refused.add(e.command_id);
  }
  return events
    .filter((e): e is Command => e.type === 'Command' && e.protocol === 'postgres')
    .map((c) => {
      const v = verdicts.get(c.event_id);
      const prepared = c.attributes[PREPARED_ATTRIBUTE]?.split(PREPARED_SEPARATOR).map(norm) ?? [];
      return { text: norm(c.text), tag: tagOf(c.text), allowed: v !== undefined && (v.decision === 'allow' || v.decision === 'mask') && !refused.has(c.event_id), prepared };
    });
}

export interface OracleReport {
  /** Statement groups pgaudit shows executed that no command of Agate's record explains. */
  unexplained: string[];
  /** Commands that ran more often than Agate allowed them (a denied one ran, or a hidden copy). */
  overrun: string[];
  /**
   * EXECUTEs whose group shows the server ran a statement other than the PREPARE Agate decided
   * them as (pgaudit logs the prepared statement's source text beside the EXECUTE).
   */
  substituted: string[];
  /** How many executed statement groups were checked. */
  checked: number;
}

/**
 * The oracle: everything pgaudit shows PostgreSQL executed for Agate's sessions was recorded by
 * Agate as allowed, and nothing Agate recorded as denied ran.
 *
 * pgaudit logs each top-level statement as a group (one statement id; nested statements of a DO
 * block or function are its sub-statements), with the whole query string the client sent and
 * the statement's command tag. A group is explained by a command of Agate's record whose text
 * lies in the group's query string and whose first keyword is the group's command tag; the
 * statements of one query string are matched in order. Each command explains at most as many
 * executions as Agate allowed it: a command Agate denied explains none, and a statement the server
 * found inside a string Agate read as one statement (lexer smuggling) finds nothing to explain it.
 */
export function auditOracle(entries: AuditEntry[], events: AgateEvent[], sessions: (e: AuditEntry) => boolean): OracleReport {
  const record = recorded(events);
  const allowed = new Map<string, number>();
  for (const r of record) if (r.allowed) allowed.set(`${r.tag} ${r.text}`, (allowed.get(`${r.tag} ${r.text}`) ?? 0) + 1);
  const groups = new Map<string, AuditEntry[]>();
  for (const e of entries.filter(sessions)) {
    const key = `${e.pid}:${e.statementId}`;
    groups.set(key, [...(groups.get(key) ?? []), e]);
  }
  const executed = new Map<string, number>();
  const unexplained: string[] = [];
  const substituted: string[] = [];
  const preparedFor = new Map<string, RegExp[]>();
  for (const r of record) if (r.tag === 'EXECUTE') preparedFor.set(`${r.tag} ${r.text}`, [...(preparedFor.get(`${r.tag} ${r.text}`) ?? []), ...r.prepared.map(recordedPattern)]);
  // Per connection: the query string being matched and how far into it.
  const cursor = new Map<number, { statement: string; at: number }>();
  const texts = [...new Set(record.map((r) => `${r.tag} ${r.text}`))].map((k) => {
    const text = k.slice(k.indexOf(' ') + 1);
    return { key: k, tag: k.slice(0, k.indexOf(' ')), text, pattern: recordedPattern(text) };
  });
  for (const group of groups.values()) {
    let match: { key: string; entry: AuditEntry; at: number; end: number } | undefined;
    // A sub-statement can quote another text (EXECUTE logs the PREPARE's): an entry that is a
    // recorded command exactly wins over one that merely contains one. The tag is not compared
    // here: a rule rewrites `UPDATE pg_settings` into a SELECT. Two statements the server found
    // in one recorded text both land on it, and the count shows it.
    for (const sameTag of [true, false]) {
      for (const entry of match === undefined ? group : []) {
        const statement = norm(entry.statement);
        const t = texts.find((x) => whole(x.pattern, statement) && (!sameTag || x.tag === entry.command.split(' ')[0]!.toUpperCase()));
        if (t !== undefined) {
          match = { key: t.key, entry, at: 0, end: statement.length };
          break;
        }
      }
    }
    for (const entry of match === undefined ? group : []) {
      const statement = norm(entry.statement);
      const tag = entry.command.split(' ')[0]!.toUpperCase();
      const c = cursor.get(entry.pid);
      const from = c !== undefined && c.statement === statement ? c.at : 0;
      for (const start of from === 0 ? [0] : [from, 0]) {
        for (const t of texts) {
          if (t.tag !== tag) continue;
          const found = search(t.pattern, statement, start);
          if (found !== undefined && (match === undefined || found.at < match.at)) match = { key: t.key, entry, at: found.at, end: found.end };
        }
        if (match !== undefined) break;
      }
      if (match !== undefined) break;
    }
    if (match === undefined) {
      const top = group[0]!;
      unexplained.push(`${top.command}: ${top.statement}`);
      continue;
    }
    cursor.set(match.entry.pid, { statement: norm(match.entry.statement), at: match.end });
    executed.set(match.key, (executed.get(match.key) ?? 0) + 1);
    const prepared = preparedFor.get(match.key);
    if (prepared !== undefined) {
      const matched = norm(match.entry.statement);
      for (const e of group) {
        const ran = norm(e.statement);
        if (ran !== matched && !prepared.some((p) => whole(p, ran))) substituted.push(`${match.key.slice(match.key.indexOf(' ') + 1)} ran ${e.command}: ${ran}`);
      }
    }
  }
  const overrun = [...executed].filter(([k, n]) => n > (allowed.get(k) ?? 0)).map(([k, n]) => `${k.slice(k.indexOf(' ') + 1)} ran ${n}×, allowed ${allowed.get(k) ?? 0}×`);
  return { unexplained, overrun, substituted, checked: groups.size };
}

/**
 * Agate's record masks secret literals (a PASSWORD, a masked column's value, a set_config value)
 * as '[masked]'; pgaudit logs the text as run. A masked literal in the record therefore matches
 * any one string literal in pgaudit's text, and everything else must match exactly.
 */
function recordedPattern(text: string): RegExp {
  const escape = (t: string) => t.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');
  return new RegExp(text.split("'[masked]'").map(escape).join("'(?:[^']|'')*'"), 'g');
}

function whole(pattern: RegExp, text: string): boolean {
  const found = search(pattern, text, 0);
  return found !== undefined && found.at === 0 && found.end === text.length;
}

function search(pattern: RegExp, text: string, from: number): { at: number; end: number } | undefined {
  pattern.lastIndex = from;
  const m = pattern.exec(text);
  return m === null ? undefined : { at: m.index, end: m.index + m[0].length };
}

/**
 * Agate's own catalog lookups (the names of FunctionCall OIDs, function-names.ts; the stored code
 * a statement may run, stored-code.ts): their fixed texts
 * on a connection named so. The application name alone proves nothing: a client may take it.
 */
export function isCatalogLookup(e: AuditEntry): boolean {
  return e.app === 'agate catalog lookup' && /^(SELECT n\.nspname, p\.proname FROM pg_catalog\.pg_proc p |WITH agate_user_functions AS |SELECT pn\.nspname, p\.relname, cn\.nspname, c\.relname FROM pg_catalog\.pg_constraint k)/.test(e.statement);
}

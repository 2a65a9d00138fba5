// The SSH oracle's side of the record: what the harness's sshd was asked to run and what its sftp
// server did (test/harness/sshd.ts `oracle`), read back and set against the Commands Agate
// recorded. Each entry becomes the text Agate records for it; the account then says what ran
// without an allowed Command of that text, or more often than one was allowed.
import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import type { AgateEvent, Command, Response } from '../../schemas/src/events.js';
import { helperScript, shellCommand } from '../../services/ingress-proxy/src/ssh/capture/hook-script.js';

/** One thing the target did, as the text Agate records for it (`uname -s`, `sftp write /p`, `shell`). */
interface SshdEntry {
  text: string;
  /** The file it came from and, for sftp, the server's own line. */
  source: string;
}

/** A file the sftp server closed: what it read and wrote, for the Response of its open. */
interface SftpClose {
  text: string;
  read: number;
  written: number;
}

export interface SshdRecord {
  entries: SshdEntry[];
  closes: SftpClose[];
  /** sftp-server lines that change nothing and that Agate relays unrecorded by design (opendir, closedir). */
  unrecorded: string[];
}

/** sftp-server's stderr log escapes with vis(3) VIS_SAFE|VIS_OCTAL: `\\` and `\ooo`. */
export function unvis(text: string): string {
  const bytes: number[] = [];
  for (let i = 0; i < text.length; i++) {
    if (text[i] === '\\' && text[i + 1] === '\\') {
      bytes.push(0x5c);
      i += 1;
    } else if (text[i] === '\\' && /^[0-7]{3}$/.test(text.slice(i + 1, i + 4))) {
      bytes.push(parseInt(text.slice(i + 1, i + 4), 8));
      i += 3;
    } else bytes.push(...Buffer.from(text[i]!, 'utf8'));
  }
  return Buffer.from(bytes).toString('utf8');
}

const OPEN = /^open "(.*)" flags ([A-Z,]*) mode \d+$/;
const CLOSE = /^(?:forced )?close "(.*)" bytes read (\d+) written (\d+)$/;
const ONE_PATH = /^(remove|mkdir|rmdir) name "(.*?)"(?: mode \d+)?$/;
const TWO_PATHS = /^(rename|posix-rename|symlink|hardlink) old "(.*)" new "(.*)"$/;
const SET = /^set "(.*)" (?:size|mode|modtime|owner|flags) .*$/;
const LISTING = /^(opendir|closedir) "(.*)"$/;
const SESSION = /^(session (opened|closed) for local user|sent status |process_[a-z_]+: )/;

/**
 * One sftp server's log as the Commands Agate records: an open with any of WRITE, APPEND,
 * CREATE, TRUNCATE is `sftp write`; OpenSSH's symlink names (target, link) and Agate records
 * `sftp symlink LINK TARGET`, a hard link `sftp symlink EXISTING NEW`. One setstat request logs
 * a line per attribute: consecutive `set` lines on one path are one operation.
 */
export function sftpLog(log: string, source: string, into: SshdRecord): number {
  let operations = 0;
  let lastSet: string | undefined;
  const entry = (text: string, line: string) => {
    into.entries.push({ text, source: `${source}: ${line}` });
    operations += 1;
  };
  for (const line of log.split(/\r?\n/)) {
    if (line === '') continue;
    const set = SET.exec(line);
    if (set === null) lastSet = undefined;
    let m: RegExpExecArray | null;
    if (set !== null) {
      const path = unvis(set[1]!);
      if (lastSet !== path) entry(`sftp setstat ${path}`, line);
      lastSet = path;
    } else if ((m = OPEN.exec(line))) entry(`sftp ${/WRITE|APPEND|CREATE|TRUNCATE/.test(m[2]!) ? 'write' : 'read'} ${unvis(m[1]!)}`, line);
    else if ((m = CLOSE.exec(line))) into.closes.push({ text: unvis(m[1]!), read: Number(m[2]), written: Number(m[3]) });
    else if ((m = ONE_PATH.exec(line))) entry(`sftp ${m[1]} ${unvis(m[2]!)}`, line);
    else if ((m = TWO_PATHS.exec(line))) {
      const [old, neu] = [unvis(m[2]!), unvis(m[3]!)];
      const text = m[1] === 'symlink' ? `sftp symlink ${neu} ${old}` : m[1] === 'hardlink' ? `sftp symlink ${old} ${neu}` : `sftp rename ${old} ${neu}`;
      entry(text, line);
    } else if (LISTING.test(line)) into.unrecorded.push(`${source}: ${line}`);
    else if (!SESSION.test(line)) throw new Error(`${source}: an sftp-server line the oracle cannot read: ${JSON.stringify(line)}`);
  }
  return operations;
}

/**
 * Everything the oracle directory holds. Agate's own requests count as the Command they serve: the
 * shell capture's helper and captured bash (helperScript, shellCommand) as `shell`; an sftp
 * session as `(subsystem sftp)` only when it did a file operation (Agate's path lookups, which
 * only read metadata, run in sessions of their own).
 */
export function sshdRecord(dir: string): SshdRecord {
  const record: SshdRecord = { entries: [], closes: [], unrecorded: [] };
  const helper = helperScript();
  for (const name of readdirSync(dir).sort()) {
    const body = readFileSync(join(dir, name), 'utf8');
    if (name.startsWith('shell-')) record.entries.push({ text: 'shell', source: name });
    else if (name.startsWith('exec-')) {
      const hookDir = /AGATE_HOOK_DIR='([^']+)'/.exec(body)?.[1];
      const own = body === helper || (hookDir !== undefined && body === shellCommand(hookDir));
      record.entries.push({ text: own ? 'shell' : body, source: own ? `${name} (Agate's shell capture)` : name });
    } else if (name.startsWith('sftp-')) {
      if (sftpLog(body, name, record) > 0) record.entries.push({ text: '(subsystem sftp)', source: name });
    } else throw new Error(`unexpected file ${name} in the oracle directory`);
  }
  return record;
}

interface SshOracleReport {
  /** Entries accounted. */
  checked: number;
  /** Done by the target with no Command of its text recorded at all. */
  unexplained: string[];
  /** Done more often than Agate allowed a Command of its text. */
  overrun: string[];
  /** A closed file whose bytes read and written no allowed open's Response recorded. */
  bytes: string[];
}

/**
 * Sets the target's record against Agate's events: every entry needs an allowed Command of its
 * text (the shell capture runs two requests per shell: `shell` may run twice per allowed shell),
 * and every file sftp-server closed a Response with the same bytes read and written (at least
 * those, for a file whose Response says a copy-data request moved bytes Agate did not see).
 */
export function sshOracle(record: SshdRecord, events: AgateEvent[]): SshOracleReport {
  const allowedIds = new Set(events.filter((e) => e.type === 'Verdict' && e.decision === 'allow').map((e) => (e as { command_id: string }).command_id));
  const commands = events.filter((e): e is Command => e.type === 'Command' && e.protocol === 'ssh');
  const recorded = new Map<string, number>();
  const allowed = new Map<string, number>();
  for (const c of commands) {
    recorded.set(c.text, (recorded.get(c.text) ?? 0) + 1);
    if (allowedIds.has(c.event_id)) allowed.set(c.text, (allowed.get(c.text) ?? 0) + 1);
  }
  const ran = new Map<string, number>();
  for (const e of record.entries) ran.set(e.text, (ran.get(e.text) ?? 0) + 1);
  const report: SshOracleReport = { checked: record.entries.length, unexplained: [], overrun: [], bytes: [] };
  for (const [text, n] of ran) {
    const may = (allowed.get(text) ?? 0) * (text === 'shell' ? 2 : 1);
    if (!recorded.has(text)) report.unexplained.push(`${text} (${record.entries.filter((e) => e.text === text).map((e) => e.source).join('; ')})`);
    else if (n > may) report.overrun.push(`${text} ran ${n}×, allowed ${allowed.get(text) ?? 0}×`);
  }
  // Bytes: the multiset of (read, written) per path against the Responses of allowed opens. A
  // file a copy-data request copied into or out of says so in its tag: its counts are a floor.
  // A file left open when the channel ended is closed by the target too ("forced close").
  const closed = (r: Response) => r.status === 'ok' || /closed before the file was closed/.test(r.error_message ?? '');
  const responses = new Map(events.filter((e): e is Response => e.type === 'Response' && closed(e)).map((r) => [r.command_id, r]));
  const agate = new Map<string, { read: number; written: number; copied: boolean }[]>();
  for (const c of commands) {
    const m = /^sftp (?:read|write) (.*)$/s.exec(c.text);
    const r = responses.get(c.event_id);
    if (m === null || r === undefined || !allowedIds.has(c.event_id)) continue;
    const [read, written] = r.sample[0] ?? [];
    const file = { read: Number(read), written: Number(written), copied: /copy-data/.test(r.command_tag ?? '') };
    agate.set(m[1]!, [...(agate.get(m[1]!) ?? []), file]);
  }
  const target = new Map<string, SftpClose[]>();
  for (const c of record.closes) target.set(c.text, [...(target.get(c.text) ?? []), c]);
  const spell = (files: { read: number; written: number }[]) => files.map((f) => `read ${f.read} written ${f.written}`).sort();
  const sum = (files: { read: number; written: number }[]) => files.reduce((a, f) => ({ read: a.read + f.read, written: a.written + f.written }), { read: 0, written: 0 });
  for (const [path, closes] of target) {
    const theirs = agate.get(path) ?? [];
    const [t, a] = [sum(closes), sum(theirs)];
    const same = theirs.some((f) => f.copied)
      ? closes.length === theirs.length && t.read >= a.read && t.written >= a.written
      : JSON.stringify(spell(closes)) === JSON.stringify(spell(theirs));
    if (!same) report.bytes.push(`${path}: the target ${spell(closes).join(', ')}; Agate ${spell(theirs).join(', ') || 'nothing'}`);
  }
  return report;
}

import { REPORT_OPEN } from './hook-script.js';

/** The captured shell is up; `pid` is the process whose commands the hook reports. */
interface ReadyReport {
  kind: 'ready';
  pid: number;
}

/** A simple command bash is about to run (its DEBUG trap's `$BASH_COMMAND`), waiting for a verdict. */
export interface CommandReport {
  kind: 'command';
  challenge: string;
  /** `$BASHPID`: the shell itself, or a subshell of it (command substitution, `( … )`, `&`). */
  pid: number;
  text: string;
}

/** A report whose command cannot be read (longer than the cap, or malformed): refused unread. */
export interface UnreadableReport {
  kind: 'unreadable';
  challenge: string;
  pid: number;
  reason: string;
}

export type HookReport = ReadyReport | CommandReport | UnreadableReport;

/** Longest report read; a longer one is dropped from the output and its command refused. */
export const MAX_REPORT_BYTES = 256 * 1024;

/** The start of a command report, up to its text. */
const HEADER = /^trap -- '#AGATE1:(\d{1,64}):(\d{1,10}):/;

/** `trap -- '#AGATE1:CHALLENGE:PID:TEXT' RTMAX` then the terminal's line end. */
const REPORT = /^trap -- '#AGATE1:(ready|\d{1,64}):(\d{1,10}):([^']*)' RTMAX\r?\n/;

/**
 * Takes the hook's reports out of a shell's terminal output. They are written on the terminal
 * (the only channel nothing else on the target can read back), so they must never reach the
 * client or the recording: a report split across chunks is held until it is whole.
 */
export class ReportScanner {
  #held = '';
  /** Inside a report too long to read: its text is dropped up to its end (it holds the challenge). */
  #dropping = false;

  /** One chunk of terminal output: what is left for the client, and the reports found. */
  push(chunk: Buffer): { output: Buffer; reports: HookReport[] } {
    let text = this.#held + chunk.toString('latin1');
    this.#held = '';
    const reports: HookReport[] = [];
    let out = '';
    for (;;) {
      if (this.#dropping) {
        const end = reportEnd(text);
        if (end === undefined) {
          // Keep what could be the start of the terminator; drop the rest.
          const quote = text.lastIndexOf("'");
          this.#held = quote >= 0 && text.length - quote < 10 ? text.slice(quote) : '';
          break;
        }
        this.#dropping = false;
        text = text.slice(end);
        continue;
      }
      const at = text.indexOf(REPORT_OPEN);
      if (at < 0) {
        const keep = partialOpen(text);
        out += text.slice(0, text.length - keep);
        this.#held = text.slice(text.length - keep);
        break;
      }
      out += text.slice(0, at);
      text = text.slice(at);
      const m = REPORT.exec(text);
      if (m !== null) {
        const report = m[0].length > MAX_REPORT_BYTES && m[1] !== 'ready'
          ? { kind: 'unreadable' as const, challenge: m[1]!, pid: Number(m[2]), reason: `the command is longer than ${MAX_REPORT_BYTES / 1024} KiB` }
          : decodeReport(m[1]!, m[2]!, m[3]!);
        if (report !== undefined) reports.push(report);
        text = text.slice(m[0].length);
        continue;
      }
      if (incomplete(text)) {
        this.#held = text;
        break;
      }
      const header = HEADER.exec(text);
      if (header !== null && !text.slice(header[0].length).includes("'")) {
        reports.push({ kind: 'unreadable', challenge: header[1]!, pid: Number(header[2]), reason: `the command is longer than ${MAX_REPORT_BYTES / 1024} KiB` });
        this.#dropping = true;
        text = text.slice(header[0].length);
        continue;
      }
      // Not a report after all (or one too long to hold): it is output like any other.
      out += text.slice(0, REPORT_OPEN.length);
      text = text.slice(REPORT_OPEN.length);
    }
    return { output: Buffer.from(out, 'latin1'), reports };
  }

  /** What is held at the end of the stream: output, since no report can complete it now. */
  flush(): Buffer {
    const rest = Buffer.from(this.#held, 'latin1');
    this.#held = '';
    return rest;
  }
}

/** Where the terminator of a dropped report ends in `text`, or undefined when not (wholly) there. */
function reportEnd(text: string): number | undefined {
  const quote = text.indexOf("'");
  if (quote < 0) return undefined;
  for (const t of ["' RTMAX\r\n", "' RTMAX\n"]) if (text.startsWith(t, quote)) return quote + t.length;
  const tail = text.slice(quote);
  if ("' RTMAX\r\n".startsWith(tail) || "' RTMAX\n".startsWith(tail)) return undefined;
  return quote + 1; // not the hook's terminator: stop dropping here
}

/** How many characters at the end of `text` could start a report. */
function partialOpen(text: string): number {
  for (let n = Math.min(REPORT_OPEN.length - 1, text.length); n > 0; n -= 1) {
    if (REPORT_OPEN.startsWith(text.slice(text.length - n))) return n;
  }
  return 0;
}

/** Whether `text` (starting with REPORT_OPEN) could still become a report with more output. */
function incomplete(text: string): boolean {
  if (text.length > MAX_REPORT_BYTES) return false;
  const close = text.indexOf("'", REPORT_OPEN.length);
  if (close < 0) return /^trap -- '#AGATE1:(r(e(ad?)?)?|(ready|\d*)(:\d*(:[^']*)?)?)$/.test(text);
  const tail = text.slice(close);
  return "' RTMAX\r\n".startsWith(tail) || "' RTMAX\n".startsWith(tail);
}

function decodeReport(challenge: string, pid: string, payload: string): HookReport | undefined {
  const n = Number(pid);
  if (!Number.isSafeInteger(n) || n <= 0) return undefined;
  if (challenge === 'ready') return payload === '' ? { kind: 'ready', pid: n } : undefined;
  const text = unescape(payload);
  if (text === undefined) return { kind: 'unreadable', challenge, pid: n, reason: 'the report is malformed' };
  return { kind: 'command', challenge, pid: n, text: Buffer.from(text, 'latin1').toString('utf8') };
}

const ESCAPES: Readonly<Record<string, string>> = { '\\': '\\', n: '\n', r: '\r', t: '\t', q: "'" };

/** Undoes the hook's escaping (backslash, newline, CR, tab, single quote); undefined when malformed. */
function unescape(payload: string): string | undefined {
  let out = '';
  for (let i = 0; i < payload.length; i += 1) {
    const ch = payload[i]!;
    if (ch !== '\\') {
      out += ch;
      continue;
    }
    const next = ESCAPES[payload[i + 1] ?? ''];
    if (next === undefined) return undefined;
    out += next;
    i += 1;
  }
  return out;
}

import { REPORT_OPEN } from './hook-script.js';

/** The captured shell is up; `pid` is the process whose commands the hook reports. */
export interface ReadyReport {
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

export type HookReport = ReadyReport | CommandReport;

/** Longest report accepted; a longer one is passed through as output and its command never answered. */
export const MAX_REPORT_BYTES = 256 * 1024;

/** `trap -- '#AGATE1:CHALLENGE:PID:TEXT' RTMAX` then the terminal's line end. */
const REPORT = /^trap -- '#AGATE1:(ready|\d{1,64}):(\d{1,10}):([^']*)' RTMAX\r?\n/;

/**
 * Takes the hook's reports out of a shell's terminal output. They are written on the terminal
 * (the only channel nothing else on the target can read back), so they must never reach the
 * client or the recording: a report split across chunks is held until it is whole.
 */
export class ReportScanner {
  #held = '';

  /** One chunk of terminal output: what is left for the client, and the reports found. */
  push(chunk: Buffer): { output: Buffer; reports: HookReport[] } {
    let text = this.#held + chunk.toString('latin1');
    this.#held = '';
    const reports: HookReport[] = [];
    let out = '';
    for (;;) {
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
        const report = decodeReport(m[1]!, m[2]!, m[3]!);
        if (report !== undefined) reports.push(report);
        text = text.slice(m[0].length);
        continue;
      }
      if (incomplete(text)) {
        this.#held = text;
        break;
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
  return text === undefined ? undefined : { kind: 'command', challenge, pid: n, text: Buffer.from(text, 'latin1').toString('utf8') };
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

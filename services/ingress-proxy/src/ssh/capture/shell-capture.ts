import type { Client, ClientChannel, TerminalModes } from 'ssh2';
import { parseSttyG, type PtyModes } from '../terminal-modes.js';
import { HookHelper, ptsIndex, readsTerminal } from './helper.js';
import { REARM_TEXT, shellCommand } from './hook-script.js';
import { ReportScanner, type CommandReport, type HookReport, type UnreadableReport } from './reports.js';

interface CaptureOptions {
  /**
   * Records and decides a reported command; resolves true when it may run. Never rejects.
   * `gaveUp` aborts when the shell stops waiting for the verdict (the process reported again,
   * so its hook gave up on this one; or the shell ended): the command will not run, and the
   * answer, whatever it is, is a refusal.
   */
  decide: (report: CommandReport, gaveUp: AbortSignal) => Promise<boolean>;
  /** Records a report whose command cannot be read; the command is refused whatever it is. */
  unreadable: (report: UnreadableReport) => void;
  /** How long to wait for the shell to come up, and for the helper. */
  startTimeoutMs: number;
  /** How long a finished line waits for the shell to be back at its prompt before it is decided as typed. */
  promptWaitMs?: number;
}

interface PtyWindow {
  term: string;
  cols: number;
  rows: number;
  width: number;
  height: number;
  modes?: TerminalModes;
}

/** Reports decided at once; more (a flood of forged reports) are refused without a record. */
const MAX_PENDING = 256;
const PROMPT_WAIT_MS = 1000;
const POLL_MS = 15;

/**
 * What Agate knows about a captured bash (see hook-script.ts): its process, the reports its hook
 * writes (taken out of the output and decided), and whether a line the client finishes goes to
 * the shell itself — then the hook reports every command the line runs and the line needs no
 * decision of its own — or to some program the shell started, which nothing reports on.
 */
export class ShellCapture {
  readonly #helper: HookHelper;
  readonly #scanner: ReportScanner;
  readonly #options: CaptureOptions;
  /** The shell the hook was installed in before the client could type: the only one trusted at a prompt. */
  readonly pid: number;
  /** A line went to the shell at its prompt and the shell has not reported on it yet. */
  #awaitingReport = false;
  #reported: (() => void)[] = [];
  #pending = 0;
  /** The N of the shell's /dev/pts/N, once looked up. */
  #pts: Promise<number | undefined> | undefined;
  /** The report each process waits on a verdict for: a hook answers one at a time, per process. */
  readonly #waiting = new Map<number, AbortController>();

  private constructor(helper: HookHelper, scanner: ReportScanner, pid: number, options: CaptureOptions) {
    this.#helper = helper;
    this.#scanner = scanner;
    this.pid = pid;
    this.#options = options;
  }

  /**
   * Starts the captured shell on a pty: the helper first, then bash with the hook; resolves once
   * the hook says it is ready (before any keystroke reaches it), with the output so far. Resolves
   * undefined when the target cannot (no bash 5.1+, no mkfifo): the caller starts a plain shell.
   */
  static start(upstream: Client, window: PtyWindow, agentForward: boolean, options: CaptureOptions): Promise<{ stream: ClientChannel; capture: ShellCapture; initial: Buffer } | undefined> {
    return HookHelper.start(upstream, options.startTimeoutMs).then((helper) => {
      if (helper === undefined) return undefined;
      return new Promise((resolve) => {
        const exec = { pty: window, ...(agentForward ? { agentForward: true } : {}) };
        upstream.exec(shellCommand(helper.dir), exec, (err, stream) => {
          if (err) {
            helper.close();
            return resolve(undefined);
          }
          const scanner = new ReportScanner();
          let initial = Buffer.alloc(0);
          const timer = setTimeout(() => fail(), options.startTimeoutMs);
          const fail = () => {
            clearTimeout(timer);
            stream.removeListener('data', onData);
            stream.removeListener('close', fail);
            stream.close();
            helper.close();
            resolve(undefined);
          };
          const onData = (chunk: Buffer) => {
            const { output, reports } = scanner.push(chunk);
            initial = Buffer.concat([initial, output]);
            const at = reports.findIndex((r) => r.kind === 'ready');
            if (at < 0) return initial.length > 64 * 1024 ? fail() : undefined;
            clearTimeout(timer);
            stream.removeListener('data', onData);
            stream.removeListener('close', fail);
            stream.pause();
            const capture = new ShellCapture(helper, scanner, reports[at]!.pid, options);
            // The first prompt's report may come in the same chunk as the shell's ready: it waits for its answer.
            capture.#take(reports.slice(at + 1));
            resolve({ stream, capture, initial });
          };
          stream.on('data', onData);
          stream.on('close', fail);
        });
      });
    });
  }

  /** Terminal output: the reports are taken out (and decided); the rest is the client's. */
  output(chunk: Buffer): Buffer {
    const { output, reports } = this.#scanner.push(chunk);
    this.#take(reports);
    return output;
  }

  #take(reports: HookReport[]): void {
    for (const r of reports) {
      if (r.kind === 'command') this.#report(r);
      else if (r.kind === 'unreadable') {
        this.#helper.prepare(r.pid);
        this.#helper.answer(r.pid, r.challenge, false);
        this.#options.unreadable(r);
      }
    }
  }

  /** Output held at the end of the stream. */
  flush(): Buffer {
    return this.#scanner.flush();
  }

  /**
   * Whether the line just finished goes to the captured shell at its prompt. After a line went
   * there, the shell must first report on it, with a command it runs or its next prompt (so that
   * line is no longer in the terminal's input, where a program it starts could read the next
   * one); then the kernel must show the shell
   * holding the terminal and sleeping for its input. Anything else — a program in the
   * foreground, a nested shell, the hook waiting for a verdict — and the line is not the shell's.
   */
  async shellReads(): Promise<boolean> {
    const deadline = Date.now() + (this.#options.promptWaitMs ?? PROMPT_WAIT_MS);
    if (this.#awaitingReport) {
      await new Promise<void>((r) => {
        const woken = () => (clearTimeout(timer), r());
        const timer = setTimeout(() => {
          this.#reported = this.#reported.filter((w) => w !== woken);
          r();
        }, deadline - Date.now());
        this.#reported.push(woken);
      });
      if (this.#awaitingReport) return false;
    }
    for (;;) {
      // A helper that stopped answering must not hold the client's keystrokes.
      const p = await Promise.race([this.#helper.process(this.pid), sleep(Math.max(0, deadline - Date.now()))]);
      if (p === undefined) return false;
      if (readsTerminal(p, this.pid)) return true;
      // A program has the terminal, or the hook waits for a verdict: it may be back at its prompt soon.
      if (Date.now() + POLL_MS > deadline) return false;
      await sleep(POLL_MS);
    }
  }

  /**
   * The modes of the shell's terminal now, read on the target (its pty is found once, from the
   * shell's controlling terminal): the agent may have changed them with `stty`. 'unknown' when
   * they cannot be read (the helper is gone, the terminal is not a pty, the answer is no modes).
   */
  async terminalModes(): Promise<PtyModes | 'unknown'> {
    this.#pts ??= this.#helper.process(this.pid).then((p) => (p === undefined ? undefined : ptsIndex(p.tty)));
    const pts = await this.#pts;
    const text = pts === undefined ? undefined : await this.#helper.terminalModes(pts);
    return (text === undefined ? undefined : parseSttyG(text)) ?? 'unknown';
  }

  /** A line (not blank) was sent to the shell at its prompt: the next one waits for its report. */
  lineSent(): void {
    this.#awaitingReport = true;
  }

  /**
   * Kills the shell and every process it started, stopped first so that none can act meanwhile:
   * Agate ends a shell this way before it hangs up its terminal (a line editor may take the
   * hangup as ^D and run the line it holds). Resolves false when that could not be confirmed
   * within `timeoutMs` (the helper is gone or does not answer).
   */
  kill(timeoutMs: number): Promise<boolean> {
    return Promise.race([this.#helper.kill(this.pid), sleep(timeoutMs).then(() => false)]);
  }

  close(): void {
    this.#helper.close();
    for (const r of this.#reported.splice(0)) r();
    // No hook waits any more: the commands still being decided will not run.
    for (const waiting of this.#waiting.values()) waiting.abort();
    this.#waiting.clear();
  }

  #report(r: CommandReport): void {
    if (r.pid === this.pid && this.#awaitingReport) {
      this.#awaitingReport = false;
      for (const w of this.#reported.splice(0)) w();
    }
    // A process reporting again has stopped waiting for its previous verdict (a ^C interrupted
    // the hook, which then skips the command): that command is settled as not run.
    this.#waiting.get(r.pid)?.abort();
    this.#waiting.delete(r.pid);
    if (r.pid === this.pid) this.#settleGone();
    this.#helper.prepare(r.pid);
    // The shell's PROMPT_COMMAND (hook-script.ts): it only re-arms the hook, so it runs unasked and
    // unrecorded; what it tells is that the shell read the line before and is back at its prompt.
    if (r.pid === this.pid && r.text === REARM_TEXT) return this.#helper.answer(r.pid, r.challenge, true);
    if (this.#pending >= MAX_PENDING) return this.#helper.answer(r.pid, r.challenge, false);
    this.#pending += 1;
    const waiting = new AbortController();
    this.#waiting.set(r.pid, waiting);
    void this.#options.decide(r, waiting.signal).then((run) => {
      this.#pending -= 1;
      if (this.#waiting.get(r.pid) === waiting) this.#waiting.delete(r.pid);
      // Given up on: answered no, should a forged report have made it look so while the hook still waits.
      this.#helper.answer(r.pid, r.challenge, run && !waiting.signal.aborted);
    });
  }

  /**
   * The shell itself reported (it went on, or is back at its prompt): a subshell still waiting on a
   * verdict may have been killed meanwhile (a ^C ends `( cmd )`), and a process that is gone (or
   * a zombie) waits for nothing. A background job that still runs keeps waiting.
   */
  #settleGone(): void {
    for (const [pid, waiting] of this.#waiting) {
      if (pid === this.pid) continue;
      void this.#helper.process(pid).then((p) => {
        if ((p === undefined || p.state === 'Z') && this.#waiting.get(pid) === waiting) {
          waiting.abort();
          this.#waiting.delete(pid);
        }
      });
    }
  }
}

function sleep(ms: number): Promise<undefined> {
  return new Promise((r) => setTimeout(() => r(undefined), ms));
}

import type { Client, ClientChannel } from 'ssh2';
import { helperScript } from './hook-script.js';

/** The kernel's view of the captured shell process, read from /proc on the target. */
export interface ShellProcess {
  /** One-letter state (S sleeping, R running, …). */
  state: string;
  /** The terminal's foreground process group: the shell's own pid while the shell has the terminal. */
  tpgid: number;
  /** Where it sleeps in the kernel (`poll_schedule_timeout`, `do_wait`, …); '' or '0' when hidden. */
  wchan: string;
  /** /proc/PID/syscall's first field: the system call it is blocked in, or '' when unreadable. */
  syscall: string;
  /** The controlling terminal's device number (stat's tty_nr; 0 for none). */
  tty: number;
}

/** Longest line the helper may send; anything longer ends it (it only sends short lines). */
const MAX_LINE = 8192;

/**
 * The helper channel: an exec channel without a pty on Agate's own connection to the target,
 * running hook-script.ts's helper. It holds the directory of verdict FIFOs and reads /proc.
 */
export class HookHelper {
  readonly dir: string;
  readonly #stream: ClientChannel;
  #partial = '';
  #waiting: ((line: string | undefined) => void)[] = [];
  #closed = false;

  private constructor(stream: ClientChannel, dir: string, rest: string) {
    this.#stream = stream;
    this.dir = dir;
    this.#take(rest);
    stream.on('data', (chunk: Buffer) => this.#take(chunk.toString('utf8')));
    stream.on('close', () => this.#end());
    stream.stderr.resume(); // its errors are not the client's
  }

  /** Starts the helper; undefined when the target cannot run it (the shell is then started uncaptured). */
  static start(upstream: Client, timeoutMs: number): Promise<HookHelper | undefined> {
    return new Promise((resolve) => {
      upstream.exec(helperScript(), (err, stream) => {
        if (err) return resolve(undefined);
        let text = '';
        const timer = setTimeout(() => done(undefined), timeoutMs);
        const done = (helper: HookHelper | undefined) => {
          clearTimeout(timer);
          stream.removeListener('data', onData);
          stream.removeListener('close', onClose);
          if (helper === undefined) stream.close();
          resolve(helper);
        };
        const onData = (chunk: Buffer) => {
          text += chunk.toString('utf8');
          const nl = text.indexOf('\n');
          if (nl < 0) return text.length > MAX_LINE ? done(undefined) : undefined;
          const m = /^D (\/[A-Za-z0-9._/-]+)$/.exec(text.slice(0, nl));
          done(m === null ? undefined : new HookHelper(stream, m[1]!, text.slice(nl + 1)));
        };
        const onClose = () => done(undefined);
        stream.on('data', onData);
        stream.on('close', onClose);
        stream.stderr.resume();
      });
    });
  }

  /** Makes the FIFO a process of the shell waits on for its verdicts (before the verdict is known). */
  prepare(pid: number): void {
    this.#send(`f ${pid}\n`);
  }

  /** Answers a report: the hook lets the command run only on `CHALLENGE 1`. */
  answer(pid: number, challenge: string, run: boolean): void {
    this.#send(`v ${pid} ${challenge} ${run ? 1 : 0}\n`);
  }

  /** Reads the process's state on the target; undefined when it is gone or the helper is. */
  async process(pid: number): Promise<ShellProcess | undefined> {
    if (this.#closed) return undefined;
    const line = new Promise<string | undefined>((r) => this.#waiting.push(r));
    this.#send(`s ${pid}\n`);
    const answer = await line;
    if (answer === undefined) return undefined;
    const m = /^S (\d+) (.*)\|(.*)\|(.*)$/.exec(answer);
    if (m === null || Number(m[1]) !== pid) return undefined;
    // The command name sits in parentheses and may hold anything: the fields start after the last ')'.
    const stat = m[2]!;
    const fields = stat.slice(stat.lastIndexOf(')') + 1).trim().split(' ');
    if (fields.length < 6) return undefined;
    return { state: fields[0]!, tty: Number(fields[4]), tpgid: Number(fields[5]), wchan: m[3]!.trim(), syscall: m[4]!.trim().split(' ')[0] ?? '' };
  }

  /** The modes of /dev/pts/N on the target as `stty -g` prints them; undefined when unreadable or the helper is gone. */
  async terminalModes(pts: number): Promise<string | undefined> {
    if (this.#closed) return undefined;
    const line = new Promise<string | undefined>((r) => this.#waiting.push(r));
    this.#send(`t ${pts}\n`);
    const m = /^T (\d+) (\S+)$/.exec((await line) ?? '');
    return m === null || Number(m[1]) !== pts || m[2] === '-' ? undefined : m[2];
  }

  /**
   * Stops, then kills, the process and every process it started on the target (hook-script.ts);
   * resolves true once the helper says it is done, false when the helper is gone.
   */
  async kill(pid: number): Promise<boolean> {
    if (this.#closed) return false;
    const line = new Promise<string | undefined>((r) => this.#waiting.push(r));
    this.#send(`k ${pid}\n`);
    return (await line) === `K ${pid}`;
  }

  close(): void {
    if (this.#closed) return;
    this.#stream.end(); // the helper's loop ends on EOF, removes its directory and its blocked writers
    this.#end();
  }

  #send(line: string): void {
    if (!this.#closed) this.#stream.write(line);
  }

  #take(text: string): void {
    this.#partial += text;
    let nl: number;
    while ((nl = this.#partial.indexOf('\n')) >= 0) {
      const line = this.#partial.slice(0, nl);
      this.#partial = this.#partial.slice(nl + 1);
      const waiter = this.#waiting.shift();
      waiter?.(line);
    }
    if (this.#partial.length > MAX_LINE) this.close();
  }

  #end(): void {
    this.#closed = true;
    for (const w of this.#waiting.splice(0)) w(undefined);
  }
}

/** The Unix 98 pty slaves' major device number: their minor is the N of /dev/pts/N. */
const PTS_MAJOR = 136;

/** The N of /dev/pts/N for a tty_nr (Linux's new_encode_dev), or undefined for another terminal. */
export function ptsIndex(ttyNr: number): number | undefined {
  const major = (ttyNr >> 8) & 0xfff;
  const minor = (ttyNr & 0xff) | ((ttyNr >> 12) & 0xfff00);
  return major === PTS_MAJOR ? minor : undefined;
}

/** Kernel sleeps that mean "waiting for terminal input" (readline's pselect, `read`). */
const INPUT_WAIT = /poll|select|n_tty_read|wait_woken|tty_read/;
/** Blocking input calls by number where wchan is hidden: x86_64 read, poll, select, pselect6, ppoll; arm64 read, pselect6. */
const INPUT_SYSCALLS = new Set(['0', '7', '23', '270', '271', '63', '72']);

/**
 * Whether the shell has the terminal and sleeps waiting for its input: the next line typed goes
 * to the shell itself (its line editor or a `read`), not to a program it started.
 */
export function readsTerminal(p: ShellProcess, pid: number): boolean {
  if (p.state !== 'S' || p.tpgid !== pid) return false;
  if (p.wchan !== '' && p.wchan !== '0') return INPUT_WAIT.test(p.wchan);
  return INPUT_SYSCALLS.has(p.syscall);
}

import type { ClientChannel, ServerChannel } from 'ssh2';
import { AgateError, ErrorCode } from '../../../../core/src/errors.js';
import { ChannelTally } from './channel-tally.js';
import { ClientWrites } from './client-writes.js';
import type { CastRecorder } from './asciicast.js';
import type { ExecOutcome } from './exec-relay.js';
import { LineTracker, type TypedLine } from './line-tracker.js';
import { PipeLines, type PipeLine } from './pipe-lines.js';
import { ScreenKeys, ScreenMode } from './screen-mode.js';
import type { ShellCapture } from './capture/shell-capture.js';

export type LineDecision = { run: true } | { run: false; message: string };

interface ShellRelayOptions {
  recorder: CastRecorder;
  /**
   * Whether the shell reads a terminal (a pty). Without one its stdin is a pipe: a line is held
   * whole until decided and reaches the shell only when allowed (pipe-lines.ts).
   */
  terminal: boolean;
  /** Decides a typed line before its Enter reaches the shell. */
  onLine: (line: TypedLine) => Promise<LineDecision>;
  /** Resolves once the recording has caught up (published); undefined when it has. */
  recordingBacklog: () => Promise<void> | undefined;
  /**
   * The shell's capture hook, when it runs with one: its reports are taken out of the output, and
   * a line that goes to the shell at its prompt is not decided as typed (the hook reports every
   * command it runs). `initial`: output the shell wrote before the relay started.
   */
  capture?: { capture: ShellCapture; initial: Buffer };
}

/**
 * What a shell without capture is sent in place of a refused line's Enter: an interrupt (^C),
 * which makes the line editor drop the whole line wherever its cursor is (^U would only erase up
 * to the cursor, and the rest of the line would then run). Only the target's terminal modes make
 * it a signal, so the shell is ended right after it (ShellRelay.#endShell).
 */
const DISCARD_LINE = Buffer.from([0x03]);
/** How long ending a captured shell waits for its processes to be killed before it hangs up anyway. */
const KILL_WAIT_MS = 3000;
const CR = 0x0d;
const LF = 0x0a;

/** Why the shell ended after a refused typed line, for the client and the record. */
const NOT_RETRACTABLE = 'Agate ended the shell: keys of the refused line had already reached it and cannot be taken back';

/**
 * Relays an interactive shell: keystrokes up, terminal output down, both recorded. Each line the
 * client finishes is decided before its Enter is forwarded; on a terminal a refused line ends the
 * shell (its keys were already sent) and the client sees why; from a pipe it is dropped whole. Input is read one packet at a time and output is paused
 * while the client or the recording is behind, so ssh2 grants window only as each side drains.
 */
export function relayShell(client: ServerChannel, upstream: ClientChannel, options: ShellRelayOptions): Promise<ExecOutcome> {
  return new Promise((resolve) => new ShellRelay(client, upstream, options, resolve).start());
}

/** One shell channel's relay: its state in fields, output and keystrokes in methods of their own. */
class ShellRelay {
  readonly #tally = new ChannelTally();
  readonly #tracker = new LineTracker();
  readonly #screen = new ScreenMode();
  /** Keys typed into a full-screen program since its last Enter. */
  readonly #screenKeys = new ScreenKeys();
  readonly #writes = new ClientWrites();
  readonly #capture: ShellCapture | undefined;
  /** Without a terminal: the lines of stdin, each held until decided. */
  readonly #pipe: PipeLines | undefined;
  /** The keystrokes still being decided; the client's EOF must reach the shell after them. */
  #typing: Promise<void> = Promise.resolve();
  /** Set once Agate ends the shell itself: no more keys go up, and the outcome carries it. */
  #failure: AgateError | undefined;
  #closingClient = false;
  #finished = false;

  constructor(
    private readonly client: ServerChannel,
    private readonly upstream: ClientChannel,
    private readonly options: ShellRelayOptions,
    private readonly resolve: (outcome: ExecOutcome) => void,
  ) {
    this.#capture = options.capture?.capture;
    this.#pipe = options.terminal ? undefined : new PipeLines();
  }

  start(): void {
    const { client, upstream, options } = this;
    if (options.capture !== undefined) this.#deliver(options.capture.initial, client);
    upstream.on('data', (chunk: Buffer) => this.#down(chunk, client));
    upstream.stderr.on('data', (chunk: Buffer) => this.#down(chunk, client.stderr));
    upstream.resume();

    client.on('data', (chunk: Buffer) => {
      client.pause();
      this.#typing = this.#typed(chunk).then(() => {
        if (!this.#stopped) client.resume();
      });
    });
    client.on('end', () => void this.#typing.then(() => this.#endOfInput()).then(() => upstream.end()));
    client.resume(); // paused while the shell itself was being decided

    this.#tally.watchExit(upstream);
    upstream.on('close', () => {
      if (this.#capture !== undefined) this.#deliver(this.#capture.flush(), client);
      this.#closeClient();
    });
    client.on('close', () => {
      if (!this.#finished) upstream.close();
      this.#finish(true);
    });
  }

  /** Agate ended the shell, or the shell has gone: keystrokes are no longer relayed. */
  get #stopped(): boolean {
    return this.#finished || this.#failure !== undefined;
  }

  /** The exit status (255 when the target gave none) and EOF, after every byte of output: ssh2 sends them in write order. */
  #closeClient(): void {
    if (this.#closingClient) return;
    this.#closingClient = true;
    this.#writes.whenFlushed(() => {
      this.#tally.sendExit(this.client);
      this.client.end();
      this.#finish(false);
    });
  }

  /**
   * A typed line was refused after its keys reached the target. The ^C sent in place of its
   * Enter discards them only where the target's terminal makes a signal of it: not after
   * `stty -isig` (or `intr undef`, `raw`), nor in a program that reads ^C as a key, and there the
   * next Enter would run the line (`ed`'s `!cmd`). Agate cannot see those modes, so it ends the
   * shell. A hangup alone is not enough: readline takes it as ^D on a line that is not empty,
   * which in vi mode accepts the line (and `script`, at the EOF of its own input, types a ^D
   * into the shell it runs). So a captured shell and everything it started are stopped and
   * killed first (ShellCapture.kill), no ^C sent; a shell without capture, or whose kill was not
   * confirmed, gets a KILL signal request (OpenSSH sends it to the shell's process group only,
   * where it honours the request at all) before its channel is closed.
   */
  #endShell(refusal: string): void {
    this.#failure = new AgateError(ErrorCode.SHELL_LINE_NOT_RETRACTABLE, `${refusal}; ${NOT_RETRACTABLE}`);
    this.#note(`${refusal}\r\n${NOT_RETRACTABLE}`);
    const close = (killed: boolean) => {
      if (!killed) this.upstream.signal('KILL');
      this.upstream.close();
      // Not waiting for the target to confirm the close: a target that never answers must not keep the shell open.
      if (!this.#finished) this.#closeClient();
    };
    if (this.#capture !== undefined) {
      void this.#capture.kill(KILL_WAIT_MS).then(close);
      return;
    }
    void this.#send(DISCARD_LINE); // it may stop the line sooner than the hangup does
    close(false);
  }

  #down(raw: Buffer, to: NodeJS.WritableStream): void {
    // Once Agate has ended the shell the client's channel is ending: what the target still sends
    // while it hangs up is not delivered (writing after the end would fail the channel).
    if (this.#failure !== undefined) return;
    this.#deliver(this.#capture === undefined ? raw : this.#capture.output(raw), to);
  }

  /** Output the client sees (already without the hook's reports); the shell waits while the client or the recording is behind. */
  #deliver(chunk: Buffer, to: NodeJS.WritableStream): void {
    if (chunk.length === 0) return;
    this.#tally.delivered(chunk);
    this.options.recorder.output(chunk);
    // Keys typed ahead of a screen switch and not yet ended by an Enter are still in the
    // terminal's input: the program that reads it next gets them, so the next Enter decides them
    // with it (dropped, they ran undecided: `rm -f x` typed into a full-screen program about to
    // exit, then an Enter read by a shell without capture as an empty line).
    const before = this.#screen.fullScreen;
    if (this.#screen.output(chunk)) {
      const pending = before ? this.#screenKeys.takeRaw() : this.#tracker.takePending();
      if (this.#screen.fullScreen) this.#screenKeys.add(pending);
      else this.#tracker.carry(pending);
    }
    const clientFull = !this.#writes.write(to, chunk);
    const backlog = this.options.recordingBacklog();
    if (!clientFull && backlog === undefined) return;
    const { upstream } = this;
    upstream.pause();
    upstream.stderr.pause();
    const waits: Promise<unknown>[] = [];
    if (clientFull) waits.push(new Promise((r) => to.once('drain', r)));
    if (backlog !== undefined) waits.push(backlog);
    void Promise.all(waits).then(() => {
      upstream.resume();
      upstream.stderr.resume();
    });
  }

  /** Keystrokes to the shell, recorded; resolves once the shell's channel has room again. */
  #send(data: Buffer): Promise<void> | undefined {
    if (data.length === 0) return undefined;
    this.#tally.bytesUp += data.length;
    this.options.recorder.input(data);
    return this.upstream.write(data) ? undefined : new Promise((r) => this.upstream.once('drain', r));
  }

  /** Agate's own message to the client (why a line was refused), recorded as output; on stderr when no terminal shows it. */
  #note(message: string): void {
    if (this.#pipe !== undefined) {
      this.options.recorder.output(Buffer.from(`${message}\n`));
      this.client.stderr.write(`${message}\n`);
      return;
    }
    const text = Buffer.from(`\r\n${message}\r\n`);
    this.options.recorder.output(text);
    this.#writes.write(this.client, text);
  }

  /** One packet of keystrokes, in order; the client stays paused until it is through. */
  async #typed(chunk: Buffer): Promise<void> {
    if (this.#pipe !== undefined) {
      for (const line of this.#pipe.push(chunk)) await this.#pipeLine(line);
      return;
    }
    if (this.#screen.fullScreen) return this.#screenTyped(chunk);
    // The agent can change the terminal's line ends and editing keys from inside (`stty eof ^A`):
    // the keys are read with the modes the target's pty has now. (Without capture there is no
    // helper to ask, and the pty keeps the modes the tracker knows unless the agent changed them.)
    if (this.#capture !== undefined) {
      this.#tracker.setModes(await this.#capture.terminalModes());
      if (this.#stopped) return;
    }
    let from = 0;
    for (let i = 0; i < chunk.length; i += 1) {
      const line = this.#tracker.push(chunk[i]!);
      if (line === undefined) continue;
      await this.#send(chunk.subarray(from, i));
      from = i + 1;
      const enter = chunk.subarray(i, i + 1);
      // The captured shell at its prompt reads this line: its hook reports what it runs, exactly.
      if (this.#capture !== undefined && (await this.#capture.shellReads())) {
        if (this.#stopped) return;
        await this.#send(enter);
        this.#capture.lineSent();
        continue;
      }
      const decision = await this.options.onLine(line);
      if (this.#stopped) return;
      if (!decision.run) return this.#endShell(decision.message);
      await this.#send(enter);
    }
    await this.#send(chunk.subarray(from));
  }

  /**
   * Keystrokes to a full-screen program are its input, never added to; but it may run a command
   * from them (vim's `:!`, ed's `!` after the agent printed the switch itself), so each Enter is
   * decided on the keys typed since the last one, and a refusal ends the shell like a refused
   * typed line (the keys already reached the program).
   */
  async #screenTyped(chunk: Buffer): Promise<void> {
    let from = 0;
    for (let i = 0; i < chunk.length; i += 1) {
      const key = chunk[i]!;
      if (key !== CR && key !== LF) continue;
      this.#screenKeys.add(chunk.subarray(from, i));
      await this.#send(chunk.subarray(from, i));
      from = i + 1;
      const decision = await this.options.onLine({ text: this.#screenKeys.take(), edited: true, screen: true });
      if (this.#stopped) return;
      if (!decision.run) return this.#endShell(decision.message);
      await this.#send(chunk.subarray(i, i + 1));
    }
    this.#screenKeys.add(chunk.subarray(from));
    await this.#send(chunk.subarray(from));
  }

  /**
   * A line read from a pipe: decided on its exact bytes, which reach the shell only when allowed
   * (a refused one is dropped whole: on a pipe nothing could erase what was sent). A blank line
   * runs nothing and is passed on.
   */
  async #pipeLine(line: PipeLine): Promise<void> {
    if (this.#finished) return;
    if (line.kind === 'line' && line.text.trim() === '') return this.#send(line.bytes);
    const typed: TypedLine = line.kind === 'line' ? { text: line.text, edited: false } : { text: line.text, edited: false, unreadable: line.reason };
    const decision = await this.options.onLine(typed);
    if (this.#finished) return;
    if (!decision.run) return this.#note(decision.message);
    if (line.kind === 'line') return this.#send(line.bytes);
  }

  /** The client's EOF: the shell would still run a last line without LF, so it is decided first. */
  async #endOfInput(): Promise<void> {
    const last = this.#pipe?.end();
    if (last !== undefined) await this.#pipeLine(last);
  }

  #finish(clientGone: boolean): void {
    if (this.#finished) return;
    this.#finished = true;
    this.#capture?.close();
    this.options.recorder.end();
    const { exitCode, signal, coreDumped, bytes, bytesUp } = this.#tally;
    this.resolve({ exitCode, signal, coreDumped, bytes, bytesUp, digest: this.#tally.digest(), clientGone, error: this.#failure });
  }
}

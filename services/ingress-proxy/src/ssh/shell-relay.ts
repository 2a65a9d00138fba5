import type { ClientChannel, ServerChannel } from 'ssh2';
import { ChannelTally } from './channel-tally.js';
import { ClientWrites } from './client-writes.js';
import type { CastRecorder } from './asciicast.js';
import type { ExecOutcome } from './exec-relay.js';
import { LineTracker, type TypedLine } from './line-tracker.js';
import { PipeLines, type PipeLine } from './pipe-lines.js';
import { ScreenMode } from './screen-mode.js';
import type { ShellCapture } from './capture/shell-capture.js';

export type LineDecision = { run: true } | { run: false; message: string };

export interface ShellRelayOptions {
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
 * What the shell is sent in place of a refused line's Enter: an interrupt (^C), which makes the
 * line editor drop the whole line wherever its cursor is (^U would only erase up to the cursor,
 * and the rest of the line would then run).
 */
const DISCARD_LINE = Buffer.from([0x03]);

/**
 * Relays an interactive shell: keystrokes up, terminal output down, both recorded. Each line the
 * client finishes is decided before its Enter is forwarded; a refused line is erased on the
 * shell's side and the client sees why. Input is read one packet at a time and output is paused
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
  readonly #writes = new ClientWrites();
  readonly #capture: ShellCapture | undefined;
  /** Without a terminal: the lines of stdin, each held until decided. */
  readonly #pipe: PipeLines | undefined;
  /** The keystrokes still being decided; the client's EOF must reach the shell after them. */
  #typing: Promise<void> = Promise.resolve();
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
        if (!this.#finished) client.resume();
      });
    });
    client.on('end', () => void this.#typing.then(() => this.#endOfInput()).then(() => upstream.end()));
    client.resume(); // paused while the shell itself was being decided

    this.#tally.watchExit(upstream);
    upstream.on('close', () => {
      if (this.#capture !== undefined) this.#deliver(this.#capture.flush(), client);
      // The exit status must follow every byte of output, so wait until ssh2 has sent them.
      this.#writes.whenFlushed(() => {
        this.#tally.sendExit(client);
        client.end();
        this.#finish(false);
      });
    });
    client.on('close', () => {
      if (!this.#finished) upstream.close();
      this.#finish(true);
    });
  }

  #down(raw: Buffer, to: NodeJS.WritableStream): void {
    this.#deliver(this.#capture === undefined ? raw : this.#capture.output(raw), to);
  }

  /** Output the client sees (already without the hook's reports); the shell waits while the client or the recording is behind. */
  #deliver(chunk: Buffer, to: NodeJS.WritableStream): void {
    if (chunk.length === 0) return;
    this.#tally.delivered(chunk);
    this.options.recorder.output(chunk);
    // What was typed before a full-screen program started or ended was not a shell line.
    if (this.#screen.output(chunk)) this.#tracker.reset();
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
    this.client.write(text);
  }

  /** One packet of keystrokes, in order; the client stays paused until it is through. */
  async #typed(chunk: Buffer): Promise<void> {
    if (this.#pipe !== undefined) {
      for (const line of this.#pipe.push(chunk)) await this.#pipeLine(line);
      return;
    }
    // Keystrokes to a full-screen program are its input: recorded, never decided, never added to.
    if (this.#screen.fullScreen) return this.#send(chunk);
    let from = 0;
    for (let i = 0; i < chunk.length; i += 1) {
      const line = this.#tracker.push(chunk[i]!);
      if (line === undefined) continue;
      await this.#send(chunk.subarray(from, i));
      from = i + 1;
      const enter = chunk.subarray(i, i + 1);
      // The captured shell at its prompt reads this line: its hook reports what it runs, exactly.
      if (this.#capture !== undefined && (await this.#capture.shellReads())) {
        if (this.#finished) return;
        await this.#send(enter);
        this.#capture.lineSent();
        continue;
      }
      const decision = await this.options.onLine(line);
      if (this.#finished) return;
      if (decision.run) await this.#send(enter);
      else {
        this.#note(decision.message);
        await this.#send(DISCARD_LINE);
      }
    }
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
    const { exitCode, signal, bytes, bytesUp } = this.#tally;
    this.resolve({ exitCode, signal, bytes, bytesUp, digest: this.#tally.digest(), clientGone });
  }
}

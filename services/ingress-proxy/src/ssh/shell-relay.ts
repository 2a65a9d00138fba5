import { createHash } from 'node:crypto';
import type { ClientChannel, ServerChannel } from 'ssh2';
import { ClientWrites } from './client-writes.js';
import type { CastRecorder } from './asciicast.js';
import type { ExecOutcome } from './exec-relay.js';
import { LineTracker, type TypedLine } from './line-tracker.js';
import { ScreenMode } from './screen-mode.js';
import type { ShellCapture } from './capture/shell-capture.js';

export type LineDecision = { run: true } | { run: false; message: string };

export interface ShellRelayOptions {
  recorder: CastRecorder;
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
  const { recorder } = options;
  return new Promise((resolve) => {
    const hash = createHash('sha256');
    const tracker = new LineTracker();
    const screen = new ScreenMode();
    let bytes = 0;
    let bytesUp = 0;
    let exitCode: number | null = null;
    let signal: string | null = null;
    let finished = false;
    const writes = new ClientWrites();

    const capture = options.capture?.capture;
    /** Output the client sees (already without the hook's reports). */
    const deliver = (chunk: Buffer, to: NodeJS.WritableStream) => {
      if (chunk.length === 0) return;
      hash.update(chunk);
      bytes += chunk.length;
      recorder.output(chunk);
      // What was typed before a full-screen program started or ended was not a shell line.
      if (screen.output(chunk)) tracker.reset();
      const clientFull = !writes.write(to, chunk);
      const backlog = options.recordingBacklog();
      if (!clientFull && backlog === undefined) return;
      upstream.pause();
      upstream.stderr.pause();
      const waits: Promise<unknown>[] = [];
      if (clientFull) waits.push(new Promise((r) => to.once('drain', r)));
      if (backlog !== undefined) waits.push(backlog);
      void Promise.all(waits).then(() => {
        upstream.resume();
        upstream.stderr.resume();
      });
    };
    const down = (raw: Buffer, to: NodeJS.WritableStream) => deliver(capture === undefined ? raw : capture.output(raw), to);
    if (options.capture !== undefined) deliver(options.capture.initial, client);
    upstream.on('data', (chunk: Buffer) => down(chunk, client));
    upstream.stderr.on('data', (chunk: Buffer) => down(chunk, client.stderr));
    upstream.resume();

    const send = (data: Buffer): Promise<void> | undefined => {
      if (data.length === 0) return undefined;
      bytesUp += data.length;
      recorder.input(data);
      return upstream.write(data) ? undefined : new Promise((r) => upstream.once('drain', r));
    };
    const note = (message: string) => {
      const text = Buffer.from(`\r\n${message}\r\n`);
      recorder.output(text);
      client.write(text);
    };

    /** One packet of keystrokes, in order; the client stays paused until it is through. */
    const typed = async (chunk: Buffer) => {
      // Keystrokes to a full-screen program are its input: recorded, never decided, never added to.
      if (screen.fullScreen) return send(chunk);
      let from = 0;
      for (let i = 0; i < chunk.length; i += 1) {
        const line = tracker.push(chunk[i]!);
        if (line === undefined) continue;
        await send(chunk.subarray(from, i));
        from = i + 1;
        // The captured shell at its prompt reads this line: its hook reports what it runs, exactly.
        if (capture !== undefined && (await capture.shellReads())) {
          if (finished) return;
          await send(chunk.subarray(i, i + 1));
          capture.lineSent();
          continue;
        }
        const decision = await options.onLine(line);
        if (finished) return;
        if (decision.run) await send(chunk.subarray(i, i + 1));
        else {
          note(decision.message);
          await send(DISCARD_LINE);
        }
      }
      await send(chunk.subarray(from));
    };
    // The keystrokes still being decided; the client's EOF must reach the shell after them.
    let typing: Promise<void> = Promise.resolve();
    client.on('data', (chunk: Buffer) => {
      client.pause();
      typing = typed(chunk).then(() => {
        if (!finished) client.resume();
      });
    });
    client.on('end', () => void typing.then(() => upstream.end()));
    client.resume(); // paused while the shell itself was being decided

    upstream.on('exit', (code: number | null, sig?: string) => {
      if (typeof code === 'number') exitCode = code;
      else if (sig !== undefined) signal = sig;
    });
    const finish = (clientGone: boolean) => {
      if (finished) return;
      finished = true;
      capture?.close();
      recorder.end();
      resolve({ exitCode, signal, bytes, bytesUp, digest: bytes === 0 ? null : `sha256:${hash.digest('hex')}`, clientGone });
    };
    upstream.on('close', () => {
      // The exit status must follow every byte of output, so wait until ssh2 has sent them.
      if (capture !== undefined) deliver(capture.flush(), client);
      const end = () => {
        if (signal !== null) client.exit(signal, false, '');
        else client.exit(exitCode ?? 255);
        client.end();
        finish(false);
      };
      writes.whenFlushed(end);
    });
    client.on('close', () => {
      if (!finished) upstream.close();
      finish(true);
    });
  });
}

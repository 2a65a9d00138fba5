import type { ClientChannel, PseudoTtyInfo, ServerChannel, ShellOptions } from 'ssh2';
import { ErrorCode, describeError } from '../../../../core/src/errors.js';
import { nowMicros, type Command } from '../../../../schemas/src/events.js';
import { CastRecorder } from './asciicast.js';
import type { CommandReport } from './capture/reports.js';
import { ShellCapture } from './capture/shell-capture.js';
import { upstreamOr, type AgentForward, type ChannelContext } from './channel-context.js';
import type { TypedLine } from './line-tracker.js';
import { castResponse, execResponse, failureResponse, grantedResponse } from './responses.js';
import { relayShell, type LineDecision } from './shell-relay.js';

/** How often a shell's recording so far is published. */
const RECORDING_TICK_MS = 2000;
/** Recording chunks publishing at once before the shell's output is paused. */
const MAX_RECORDING_BACKLOG = 4;

/** A live shell: where window changes and signals go, and the recording a resize is noted in. */
export interface LiveShell {
  upstream: ClientChannel;
  recorder?: CastRecorder;
}

/**
 * An interactive shell: decided as the command `shell` (attributes request=shell, the pty's
 * term and size); when allowed, relayed with its pty, recorded as an asciicast v2 stream in
 * Response events (`command_tag` "asciicast v2 part N", one event per sample row). On a pty,
 * bash runs with the capture hook (capture/hook-script.ts) where the target has it, and each
 * command it is about to run is an exact `shell-line` command, decided before it runs; a line
 * typed where no hook reports (another program has the terminal, no bash here, no pty) is
 * recorded and decided as a best-effort `shell-line` command.
 */
export async function shellChannel(ctx: ChannelContext, accept: () => ServerChannel | undefined, pty: PseudoTtyInfo | undefined, onLive: (l: LiveShell) => void, agent?: Promise<boolean>): Promise<void> {
  const { gate, events } = ctx;
  const channel = accept();
  if (channel === undefined) return;
  channel.pause();
  const attributes: Record<string, string> = { request: 'shell', kind: 'shell', pty: String(pty !== undefined) };
  if (pty !== undefined) Object.assign(attributes, { term: pty.term, cols: String(pty.cols), rows: String(pty.rows) });
  const command = gate.command('shell', { ...attributes, ...ctx.refused?.() });
  const decision = await gate.decide(command);
  if (decision.kind === 'refuse') return gate.refuseOn(channel, command, 'refused', decision.message);
  const upstream = await upstreamOr(ctx, channel, decision.pass);
  if (upstream === undefined) return;
  const agentForward = (await agent) === true;
  const started = nowMicros();
  let backlog = 0;
  const recorder = new CastRecorder({
    masker: ctx.audit,
    flush: (chunk) => {
      backlog += 1;
      void events.emitLogged(castResponse(command, chunk)).then(() => (backlog -= 1));
    },
  });
  const relay = (stream: ClientChannel, capture?: { capture: ShellCapture; initial: Buffer }) => {
    onLive({ upstream: stream, recorder });
    // A quiet shell's recording is published every few seconds, not only per 32 KiB.
    const ticker = setInterval(() => recorder.tick(), RECORDING_TICK_MS);
    void relayShell(channel, stream, {
      recorder,
      terminal: pty !== undefined,
      capture,
      onLine: (line) => typedLine(ctx, command, line, (note) => channel.write(`\r\n${note}\r\n`)),
      recordingBacklog: () => (backlog > MAX_RECORDING_BACKLOG ? events.drained() : undefined),
    }).then((outcome) => {
      clearInterval(ticker);
      return events.emitLogged(execResponse(command, outcome, started));
    });
  };
  if (pty !== undefined) {
    // On a pty, bash runs with Agate's capture hook when the target has it; otherwise a plain shell.
    const say = (text: string) => {
      const b = Buffer.from(`\r\n${text}\r\n`);
      recorder.output(b);
      channel.write(b);
    };
    const window = { term: pty.term, cols: pty.cols, rows: pty.rows, width: pty.width, height: pty.height };
    const captured = await ShellCapture.start(upstream, window, agentForward, {
      decide: (report, gaveUp) => capturedCommand(ctx, command, report, say, gaveUp),
      unreadable: (report) => {
        const message = `Agate refused the command: ${report.reason}, so it cannot be recorded and decided`;
        gate.refuseUnasked('(unreadable captured command)', { request: 'shell-line', exact: 'false', captured: 'bash', pid: String(report.pid), shell_command_id: command.event_id }, message);
        say(message);
      },
      startTimeoutMs: ctx.connectTimeoutMs,
    });
    if (channel.destroyed) return captured?.capture.close();
    if (captured !== undefined) return relay(captured.stream, { capture: captured.capture, initial: captured.initial });
    ctx.log.info('the target cannot run the shell capture hook; typed lines are decided as rebuilt from keystrokes', { target: gate.target });
  }
  const options: ShellOptions & AgentForward = agentForward ? { agentForward: true } : {};
  const window = pty === undefined ? false : { term: pty.term, cols: pty.cols, rows: pty.rows, width: pty.width, height: pty.height };
  const failed = (why: string) => void gate.refuseOn(channel, command, 'error', `the target could not start a shell: ${why}`, ErrorCode.UPSTREAM_UNREACHABLE, 255);
  try {
    // ssh2 throws rather than call back once the target connection closed: refused, not a crash.
    upstream.shell(window as false, options, (err, stream) => (err ? failed(err.message) : relay(stream)));
  } catch (err) {
    failed(describeError(err));
  }
}

/** Why a captured command has a Response before its verdict: the shell no longer waits for it. */
const ABANDONED = 'the shell stopped waiting for the verdict (interrupted, or the session ended): the command did not run, and a later verdict does not run it';

/**
 * A command the captured shell is about to run, reported by its hook: recorded as an exact
 * `shell-line` (attributes exact=true, captured=bash, pid) and decided; the hook runs it only
 * when this resolves true. Never rejects: a failure to decide is a refusal. Once the shell
 * gives up waiting (`gaveUp`: a ^C while held, the session gone) the command is settled at once
 * as not run (SHELL_COMMAND_ABANDONED), and its verdict, when it comes, changes nothing.
 */
async function capturedCommand(ctx: ChannelContext, shell: Command, report: CommandReport, say: (text: string) => void, gaveUp: AbortSignal): Promise<boolean> {
  try {
    const command = ctx.gate.command(report.text, { request: 'shell-line', exact: 'true', captured: 'bash', pid: String(report.pid), shell_command_id: shell.event_id });
    const abandon = () => void ctx.events.emitLogged(failureResponse(command, 'error', ErrorCode.SHELL_COMMAND_ABANDONED, ABANDONED));
    gaveUp.addEventListener('abort', abandon, { once: true });
    const decision = await ctx.gate.decide(command, say);
    gaveUp.removeEventListener('abort', abandon);
    if (gaveUp.aborted) return false;
    if (decision.kind === 'refuse') {
      void ctx.events.emitLogged(failureResponse(command, 'refused', null, decision.message));
      say(decision.message);
      return false;
    }
    void ctx.events.emitLogged(grantedResponse(command, 'captured command allowed'));
    return true;
  } catch (err) {
    ctx.log.error('cannot decide a captured shell command; refusing it', { error: describeError(err) });
    return false;
  }
}

/** A line typed into a shell: recorded and decided before its Enter reaches the target. */
async function typedLine(ctx: ChannelContext, shell: Command, line: TypedLine, note: (text: string) => void): Promise<LineDecision> {
  // Rebuilt from keystrokes, so never exact; policy refuses such lines where shell rules apply.
  const attributes = { request: line.screen ? 'screen-line' : 'shell-line', best_effort: 'true', exact: 'false', edited: String(line.edited), shell_command_id: shell.event_id };
  if (line.unreadable !== undefined) {
    const why = `${line.unreadable}, so it cannot be decided`;
    ctx.gate.refuseUnasked(line.text, attributes, why);
    return { run: false, message: `Agate refused the request: ${why}` };
  }
  const command = ctx.gate.command(line.text, attributes);
  const decision = await ctx.gate.check(command, note);
  if (decision.kind === 'refuse') return { run: false, message: decision.message };
  void ctx.events.emitLogged(grantedResponse(command, 'typed line forwarded'));
  return { run: true };
}

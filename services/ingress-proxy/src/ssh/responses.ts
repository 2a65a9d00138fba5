import { randomUUID } from 'node:crypto';
import { nowMicros, type Command, type Response } from '../../../../schemas/src/events.js';
import type { CastChunk } from './asciicast.js';
import type { ExecOutcome } from './exec-relay.js';
import type { FileResult } from './sftp/relay.js';

/** The Response events the SSH proxy records, one builder per kind of outcome. */

/**
 * How an exec, shell or subsystem channel ended. An exec that carried stdin (an upload) says
 * how much and its digest in the tag: `exit-status 0; stdin 1048576 bytes sha256:…`. A channel
 * Agate ended itself is an error with the code and message of why.
 */
export function execResponse(command: Command, outcome: ExecOutcome, started: number): Response {
  const ok = outcome.exitCode === 0 && !outcome.clientGone;
  const ended = outcome.signal !== null ? `signal ${outcome.signal}${outcome.coreDumped === true ? ' (core dumped)' : ''}` : outcome.exitCode !== null ? `exit-status ${outcome.exitCode}` : null;
  const stdin = outcome.digestUp == null ? null : `stdin ${outcome.bytesUp} bytes ${outcome.digestUp}`;
  const how = stdin === null ? ended : `${ended ?? 'no exit status'}; ${stdin}`;
  let message: string | null = null;
  if (outcome.error !== undefined) message = outcome.error.message;
  else if (outcome.clientGone) message = 'the client disconnected before the command finished';
  else if (!ok) message = ended === null ? 'the command ended without an exit status' : `the command ended with ${ended}`;
  return {
    type: 'Response', event_id: randomUUID(), time: nowMicros(), session_id: command.session_id, command_id: command.event_id,
    status: ok && outcome.error === undefined ? 'ok' : 'error', command_tag: how, rows: 0, bytes: outcome.bytes, duration_us: nowMicros() - started,
    error_code: outcome.error?.code ?? null, error_message: message, digest: outcome.digest, columns: [], sample: [], masked_values: 0,
  };
}

/** A request refused by Agate, or one that could not reach the target. */
export function failureResponse(command: Command, status: 'refused' | 'error', code: string | null, message: string | null): Response {
  return {
    type: 'Response', event_id: randomUUID(), time: nowMicros(), session_id: command.session_id, command_id: command.event_id,
    status, command_tag: null, rows: 0, bytes: 0, duration_us: 0, error_code: code, error_message: message,
    digest: null, columns: [], sample: [], masked_values: 0,
  };
}

/** A request granted with nothing relayed yet (a `-R` listener, agent forwarding). */
export function grantedResponse(command: Command, tag: string): Response {
  return { ...failureResponse(command, 'refused', null, null), status: 'ok', command_tag: tag };
}

/**
 * A forwarded connection (`-L`, `-R`) or agent channel: the bytes each way (up: from the
 * client). It carries no exit status; one the client left mid-way ends as an error.
 */
export function forwardResponse(command: Command, outcome: ExecOutcome, started: number, what = 'forwarded'): Response {
  const response = execResponse(command, { ...outcome, exitCode: outcome.clientGone ? null : 0, clientGone: false }, started);
  response.command_tag = `${what} ${outcome.bytesUp} bytes up, ${outcome.bytes} bytes down`;
  return response;
}

/** One part of a shell's asciicast v2 recording: its events as sample rows `[time, code, data]`. */
export function castResponse(command: Command, chunk: CastChunk): Response {
  return {
    type: 'Response', event_id: randomUUID(), time: nowMicros(), session_id: command.session_id, command_id: command.event_id,
    status: 'ok', command_tag: `asciicast v2 part ${chunk.part}`, rows: chunk.events.length, bytes: chunk.bytes, duration_us: 0,
    error_code: null, error_message: null, digest: null, columns: ['time', 'code', 'data'],
    sample: chunk.events.map(([t, code, data]) => [String(t), code, data]), masked_values: chunk.masked,
  };
}

/** One sftp operation: for a file, what moved until it was closed. */
export function fileResponse(command: Command, started: number, result: FileResult): Response {
  const status = result.refused ? 'refused' : result.ok ? 'ok' : 'error';
  return {
    type: 'Response', event_id: randomUUID(), time: nowMicros(), session_id: command.session_id, command_id: command.event_id,
    status, command_tag: result.refused ? null : result.summary, rows: 0, bytes: result.bytesRead + result.bytesWritten, duration_us: nowMicros() - started,
    error_code: null, error_message: result.message, digest: result.digest, columns: ['bytes_read', 'bytes_written'],
    sample: [[String(result.bytesRead), String(result.bytesWritten)]], masked_values: 0,
  };
}

import { randomUUID } from 'node:crypto';
import type { Bus } from '../../../core/src/bus/bus.js';
import type { LocalBus } from '../../../core/src/bus/local-bus.js';
import { AgateError, ErrorCode, describeError } from '../../../core/src/errors.js';
import type { Logger } from '../../../core/src/log.js';
import type { AgateEvent, Decision, Response, SessionClosed } from '../../../schemas/src/events.js';

/** The reason recorded on a session a crash cut. */
export const CUT_SESSION_REASON = 'Agate stopped: the session was cut when the process ended (recorded at the next start)';

interface OpenSession {
  opened: number;
  /** The newest event time seen in the session (microseconds). */
  last: number;
  commands: number;
  /** Its commands with no response yet: command id → the last verdict on it, if any. */
  open: Map<string, Decision | undefined>;
}

/**
 * The sessions and commands a stop left open, worked out from the embedded log in order: a
 * session with no SessionClosed, and its commands with no Response. A session its proxy closed
 * has every response it will ever get (a session's events are published in order, each after
 * the one before is durable), so only the commands of open sessions were cut.
 */
export class CutWork {
  readonly #sessions = new Map<string, OpenSession>();

  add(event: AgateEvent): void {
    if (event.type === 'SessionOpened') {
      this.#sessions.set(event.session_id, { opened: event.time, last: event.time, commands: 0, open: new Map() });
      return;
    }
    const s = this.#sessions.get(event.session_id);
    if (s === undefined) return;
    s.last = Math.max(s.last, event.time);
    switch (event.type) {
      case 'Command':
        s.commands += 1;
        s.open.set(event.event_id, undefined);
        return;
      case 'Verdict':
        // The last verdict counts: a hold is followed by the approval's allow or deny.
        if (s.open.has(event.command_id)) s.open.set(event.command_id, event.decision);
        return;
      case 'Response':
        s.open.delete(event.command_id);
        return;
      case 'SessionClosed':
        this.#sessions.delete(event.session_id);
        return;
    }
  }

  /**
   * What closes the open work, written at `now`: for each open command a Response saying what
   * is known of it, then each session's SessionClosed. A command forwarded under a recorded
   * allow or mask verdict may have run: its outcome is unknown. Without one it never reached
   * the target (the verdict is written with the command, or durably before a held command is
   * released).
   */
  closing(now: number): AgateEvent[] {
    const out: AgateEvent[] = [];
    for (const [session_id, s] of this.#sessions) {
      for (const [command_id, decision] of s.open) out.push(cutResponse(session_id, command_id, decision, now));
      const closed: SessionClosed = {
        type: 'SessionClosed', event_id: randomUUID(), time: now, session_id, reason: CUT_SESSION_REASON,
        commands: s.commands, duration_us: Math.max(0, s.last - s.opened),
      };
      out.push(closed);
    }
    return out;
  }
}

function cutResponse(session_id: string, command_id: string, decision: Decision | undefined, now: number): Response {
  const ran = decision === 'allow' || decision === 'mask';
  const message = ran
    ? `outcome unknown: Agate stopped after forwarding the command under its recorded ${decision} verdict; whether the target ran it is not known`
    : decision === undefined
      ? 'not forwarded: Agate stopped before a verdict on the command was recorded, so it never reached the target'
      : decision === 'hold'
        ? 'not forwarded: the command was held for approval when Agate stopped, so it never reached the target'
        : 'not forwarded: the command was refused; Agate stopped before its response was recorded';
  return {
    type: 'Response', event_id: randomUUID(), time: now, session_id, command_id,
    status: ran ? 'error' : 'refused', outcome: ran ? 'unknown' : 'not_forwarded', command_tag: null, rows: 0, bytes: 0, duration_us: 0,
    error_code: null, error_message: message, digest: null, columns: [], sample: [], masked_values: 0, fetches: [],
  };
}

/**
 * At start, before any listener opens: closes what the previous run left open when it stopped
 * (a crash, a kill). The embedded log is read from where the last start's recovery ended (its
 * position kept as consumer group `recovery`); the closing records are published, and only once
 * they are durable does that position move, so a crash in between repeats the recovery.
 */
export async function closeCutWork(log: LocalBus, bus: Bus, logger: Logger, now: () => number): Promise<{ commands: number; sessions: number }> {
  const work = new CutWork();
  let commit: () => Promise<void>;
  try {
    commit = await log.scan('recovery', (e) => work.add(e));
  } catch (err) {
    if (!(err instanceof AgateError && err.code === ErrorCode.BUS_LOG_CORRUPT)) throw err;
    // Closing from part of the log could close what a later record shows finished. The consumer
    // groups stop on the same record and /healthz says so; the next start tries again.
    logger.error('cannot close what the last stop left open: a record of the log cannot be read', { error: describeError(err) });
    return { commands: 0, sessions: 0 };
  }
  const closing = work.closing(now());
  await Promise.all(closing.map((e) => bus.publish(e)));
  await commit();
  const sessions = closing.filter((e) => e.type === 'SessionClosed').length;
  const commands = closing.length - sessions;
  if (closing.length > 0) logger.warn('closed the sessions and commands the last stop cut', { sessions, commands, outcome_unknown: closing.filter((e) => e.type === 'Response' && e.outcome === 'unknown').length });
  return { commands, sessions };
}

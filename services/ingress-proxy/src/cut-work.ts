import { randomUUID } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { replaceFileSynced } from '../../../core/src/durable-file.js';
import type { Bus } from '../../../core/src/bus/bus.js';
import type { LocalBus } from '../../../core/src/bus/local-bus.js';
import { AgateError, ErrorCode, describeError } from '../../../core/src/errors.js';
import type { Logger } from '../../../core/src/log.js';
import type { AgateEvent, Decision, Response, SessionClosed } from '../../../schemas/src/events.js';

/** The reason recorded on a session a crash cut. */
export const CUT_SESSION_REASON = 'Agate stopped: the session was cut when the process ended (recorded at the next start)';

interface CutWorkSnapshot {
  sessions: [string, { opened: number; last: number; commands: number; open: [string, Decision | null][] }][];
}

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
  readonly #sessions: Map<string, OpenSession>;

  constructor(snapshot?: CutWorkSnapshot) {
    this.#sessions = new Map(snapshot?.sessions.map(([id, s]) => [id, { ...s, open: new Map(s.open.map(([c, d]) => [c, d ?? undefined])) }]));
  }

  /** The state as plain data, for the snapshot file. */
  snapshot(): CutWorkSnapshot {
    return { sessions: [...this.#sessions].map(([id, s]) => [id, { opened: s.opened, last: s.last, commands: s.commands, open: [...s.open].map(([c, d]) => [c, d ?? null]) }]) };
  }

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

/** How often the open work is written down while Agate runs. */
const SNAPSHOT_EVERY_MS = 1_000;
const SNAPSHOT_VERSION = 1;

/**
 * Keeps the open sessions and commands in step with the embedded log, and closes what a stop
 * left open at the next start. While Agate runs, the state is written to `open-work.json` beside
 * the log every second with the log position it holds for (atomically, fsynced), so a start reads
 * only the records after it, never the whole log.
 *
 * @example
 * const tracker = await OpenWorkTracker.recover(localBus, bus, logger, nowMicros); // before any listener opens
 * await tracker.stop(); // at shutdown, after the listeners closed
 */
export class OpenWorkTracker {
  #work: CutWork;
  #position: number;
  #saved: number;
  #timer: NodeJS.Timeout | undefined;
  #writing: Promise<void> | undefined;

  private constructor(private readonly file: string, work: CutWork, position: number, private readonly logger: Logger) {
    this.#work = work;
    this.#position = position;
    this.#saved = -1;
  }

  /**
   * At start, before any listener opens and before anything else is published: reads the log
   * from the last snapshot, publishes what closes the open work, then keeps the state in step.
   */
  static async recover(log: LocalBus, bus: Bus, logger: Logger, now: () => number): Promise<{ tracker: OpenWorkTracker; commands: number; sessions: number }> {
    const file = join(log.dir, 'open-work.json');
    const saved = readSnapshot(file, logger);
    let work = new CutWork(saved?.work);
    try {
      try {
        await log.scanFrom(saved?.position, (e) => work.add(e));
      } catch (err) {
        if (!(saved !== undefined && err instanceof AgateError && err.code === ErrorCode.BUS_OFFSET_INVALID)) throw err;
        // The log is not the one the snapshot was taken of (replaced, cut): read all of it.
        logger.warn('the open-work snapshot does not fit the event log; the whole log is read', { file, error: describeError(err) });
        work = new CutWork();
        await log.scanFrom(undefined, (e) => work.add(e));
      }
    } catch (err) {
      if (!(err instanceof AgateError && err.code === ErrorCode.BUS_LOG_CORRUPT)) throw err;
      // Closing from part of the log could close what a later record shows finished. The consumer
      // groups stop on the same record and /healthz says so; the next start tries again.
      logger.error('cannot close what the last stop left open: a record of the event log cannot be read', { error: describeError(err) });
      return { tracker: new OpenWorkTracker(file, new CutWork(), log.end, logger), commands: 0, sessions: 0 };
    }
    const closing = work.closing(now());
    await Promise.all(closing.map((e) => bus.publish(e)));
    const sessions = closing.filter((e) => e.type === 'SessionClosed').length;
    const commands = closing.length - sessions;
    if (closing.length > 0) logger.warn('closed the sessions and commands the last stop cut', { sessions, commands, outcome_unknown: closing.filter((e) => e.type === 'Response' && e.outcome === 'unknown').length });
    // Everything up to here is closed: nothing else was published since the scan.
    const tracker = new OpenWorkTracker(file, new CutWork(), log.end, logger);
    await tracker.#save();
    log.observe((e, next) => tracker.#add(e, next));
    tracker.#timer = setInterval(() => void tracker.#save(), SNAPSHOT_EVERY_MS).unref();
    return { tracker, commands, sessions };
  }

  /** Writes the state a last time (a clean stop: the sessions are closed, so the next start reads little). */
  async stop(): Promise<void> {
    clearInterval(this.#timer);
    await this.#writing;
    await this.#save();
  }

  #add(event: AgateEvent, next: number): void {
    this.#work.add(event);
    this.#position = next;
  }

  async #save(): Promise<void> {
    if (this.#writing !== undefined || this.#saved === this.#position) return;
    const position = this.#position;
    const text = JSON.stringify({ version: SNAPSHOT_VERSION, position, work: this.#work.snapshot() });
    this.#writing = replaceFileSynced(this.file, text)
      .then(() => void (this.#saved = position))
      // Not fatal: the snapshot on disk is older, and a start reads the log from there.
      .catch((err: unknown) => this.logger.warn('cannot write the open sessions and commands; the next start reads more of the log', { error: describeError(err) }))
      .finally(() => (this.#writing = undefined));
    await this.#writing;
  }
}

function readSnapshot(file: string, logger: Logger): { position: number; work: CutWorkSnapshot } | undefined {
  let text: string;
  try {
    text = readFileSync(file, 'utf8');
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== 'ENOENT') logger.warn('cannot read the open-work snapshot; the whole log is read', { file, error: describeError(err) });
    return undefined;
  }
  try {
    const s = JSON.parse(text) as { version: number; position: number; work: CutWorkSnapshot };
    if (s.version !== SNAPSHOT_VERSION || !Number.isSafeInteger(s.position) || !Array.isArray(s.work?.sessions)) throw new Error('unexpected content');
    return s;
  } catch (err) {
    // Reading the whole log is slower, never wrong.
    logger.warn('the open-work snapshot is damaged; the whole log is read', { file, error: describeError(err) });
    return undefined;
  }
}

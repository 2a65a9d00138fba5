import { mkdirSync, readdirSync } from 'node:fs';
import { join } from 'node:path';
import { EventCodec, freezeEvent } from '../../../schemas/src/codec.js';
import type { AgateEvent, Command } from '../../../schemas/src/events.js';
import { AgateError, ErrorCode, describeError } from '../errors.js';
import type { Logger } from '../log.js';
import { Backoff, pause } from '../retry.js';
import type { Bus, InlineDecider, SubscribeOptions, Subscription, VerdictOutcome, VerdictRequestOptions, StreamInfo } from './bus.js';
import { VerdictWaiters } from './verdict-waiters.js';
import { LocalLog } from './local-log.js';
import { peekOffsetFile, readOffsetFile, writeOffsetFile } from './offset-file.js';
import { FRAME_HEADER } from './log-frame.js';

interface LocalBusOptions {
  /** Directory for the event log and the consumer groups' committed positions. */
  dir: string;
  /** fdatasync every append (write-ahead); only tests of throughput turn this off. */
  fsync: boolean;
  logger: Logger;
  /**
   * Per consumer group: after a batch smaller than its maximum, wait this long before reading
   * again so the next batch is larger. For stores that want few large inserts (the ledger into
   * ClickHouse); never for groups on the verdict path.
   */
  lingerMs?: Readonly<Record<string, number>>;
  /**
   * The process's codec. Shared with the ledger, it hands back the bytes the bus wrote for an
   * event instead of encoding the same event a second time.
   */
  codec?: EventCodec;
  /** Largest segment of the log (LocalLogOptions.segmentBytes). */
  segmentBytes?: number;
  /**
   * A sealed segment is deleted once every consumer group committed past it and it was sealed
   * this long ago; undefined or -1: never.
   */
  retentionMs?: number;
  /** How often retention looks for segments to delete. */
  retentionCheckMs?: number;
}

/** Retention looks for segments to delete this often by default. */
const RETENTION_CHECK_MS = 60_000;

/**
 * The embedded bus: every event is appended to one fsynced local log before `publish`
 * resolves, and consumer groups read that log from their committed position, so a crash
 * between recording and storing loses nothing. The log is kept in segments; those every group
 * has committed past are deleted once older than the retention.
 */
export class LocalBus implements Bus {
  readonly #log: LocalLog;
  readonly #codec: EventCodec;
  readonly #dir: string;
  readonly #logger: Logger;
  readonly #linger: Readonly<Record<string, number>>;
  readonly #waiters = new VerdictWaiters();
  readonly #consumers = new Set<LocalConsumer>();
  /** The newest events, kept decoded so caught-up consumers need not read them back from disk. */
  readonly #recent = new RecentEvents();
  readonly #retentionMs: number;
  #retentionTimer: NodeJS.Timeout | undefined;
  /** Decides commands as they are written (decideInline); unset, policy consumes them from the log. */
  #decider: InlineDecider | undefined;
  readonly #observers: ((event: AgateEvent, next: number) => void)[] = [];
  /** Commits whose bookkeeping waits for the check phase (#settle), in log order. */
  #unsettled: Written[] = [];
  /** The last consumer of each group this bus ran, to account at close for what each left unhandled. */
  readonly #members = new Map<string, LocalConsumer>();
  #trailing: readonly TrailingGroup[] = [];
  #closed = false;

  constructor(options: LocalBusOptions) {
    this.#dir = options.dir;
    this.#logger = options.logger;
    this.#linger = options.lingerMs ?? {};
    this.#codec = options.codec ?? new EventCodec();
    mkdirSync(join(options.dir, 'groups'), { recursive: true });
    // A data directory from before segments holds one `events.log`: it becomes the first segment.
    this.#log = new LocalLog(join(options.dir, 'segments'), { fsync: options.fsync, logger: options.logger, segmentBytes: options.segmentBytes, legacyFile: join(options.dir, 'events.log') });
    this.#retentionMs = options.retentionMs ?? -1;
    if (this.#retentionMs >= 0) this.#retentionTimer = setInterval(() => this.retain(), options.retentionCheckMs ?? RETENTION_CHECK_MS).unref();
  }

  /** The log's segments, oldest first (operators' tools, tests, benchmarks). */
  segments(): ReturnType<LocalLog['segments']> {
    return this.#log.segments();
  }

  /**
   * Deletes the sealed segments every consumer group has committed past, once older than the
   * retention (run on a timer; callable at any time). Groups count whether or not they are
   * subscribed now: a group's committed position on disk holds its segments until it moves.
   */
  retain(): void {
    if (this.#closed || this.#retentionMs < 0) return;
    const committed = this.#lowestCommitted();
    if (committed === undefined) return;
    try {
      this.#log.retain(committed, this.#retentionMs);
    } catch (err) {
      this.#logger.warn('cannot delete old event log segments; retried later', { error: describeError(err) });
    }
  }

  /**
   * The lowest position any consumer group has committed (on disk or, for a group subscribed
   * now, in memory); undefined when there is no group yet, or a committed position cannot be
   * read: nothing is deleted then.
   */
  #lowestCommitted(): number | undefined {
    let lowest = Infinity;
    for (const c of this.#consumers) lowest = Math.min(lowest, c.committed);
    for (const name of readdirSync(join(this.#dir, 'groups'))) {
      if (!name.endsWith('.offset')) continue;
      const position = peekOffsetFile(join(this.#dir, 'groups', name));
      if (position === undefined) return undefined;
      lowest = Math.min(lowest, position === 0 ? this.#log.start : position);
    }
    return Number.isFinite(lowest) ? lowest : undefined;
  }

  publish(event: AgateEvent): Promise<void> {
    return this.#write(event);
  }

  requestVerdict(command: Command, deadlineMs: number, options: VerdictRequestOptions = {}): Promise<VerdictOutcome> {
    return this.#waiters.wait(command, deadlineMs, options, () => this.#write(command));
  }

  decideInline(decider: InlineDecider | undefined): void {
    this.#decider = decider;
  }

  /**
   * Appends the event, with what the inline decider returns for a command, in one group commit;
   * verdicts reach their waiters only once durable: a statement runs under a recorded verdict.
   */
  #write(event: AgateEvent): Promise<void> {
    if (this.#closed) return Promise.reject(new AgateError(ErrorCode.BUS_CLOSED, 'the bus is closed'));
    // Every statement comes through here twice (its Command with its Verdict, its Response):
    // plain loops and one continuation, not closures and awaits, keep its garbage small.
    const decider = event.type === 'Command' ? this.#decider : undefined;
    let decided: readonly AgateEvent[] = NONE;
    let encoded: Buffer[];
    let urgent: boolean;
    try {
      if (decider !== undefined) decided = decider.decide(event as Command);
      const events = decided.length === 0 ? [event] : [event, ...decided];
      encoded = new Array<Buffer>(events.length);
      urgent = false;
      for (let i = 0; i < events.length; i++) {
        const e = events[i]!;
        // Consumers in this process get these very objects: frozen, they stay what the log holds.
        encoded[i] = this.#codec.encode(freezeEvent(e));
        // Nothing waits on a Response, or on a verdict no proxy waits for (a deadline's refusal),
        // to go on: they join the next command's group commit instead of costing an fdatasync of
        // their own. A verdict a proxy waits on (an approval's) is committed at once.
        if (!LAZY_TYPES.has(e.type) || (e.type === 'Verdict' && this.#waiters.has(e.command_id))) urgent = true;
      }
      return this.#log.append(encoded, urgent).then((offsets) => {
        if (decided.length > 0) decider!.written(decided);
        // The statement a verdict lets run is forwarded first: the rest of the commit's work (the
        // recent window, observers, consumer groups) waits for the end of this turn's microtasks.
        if (event.type === 'Verdict') this.#waiters.deliver(event);
        for (const e of decided) if (e.type === 'Verdict') this.#waiters.deliver(e);
        return new Promise<void>((done, fail) => this.#settle({ offsets, events, encoded, done, fail }));
      });
    } catch (err) {
      return Promise.reject(err);
    }
  }

  /**
   * Queues a commit's bookkeeping; the queue runs at the check phase of this turn of the event
   * loop, after the waiters' continuations (the forwarded statements), in log order: appends
   * complete in log order, and so are queued in it.
   */
  #settle(written: Written): void {
    this.#unsettled.push(written);
    if (this.#unsettled.length === 1) setImmediate(() => this.#settleQueued());
  }

  #settleQueued(): void {
    const queued = this.#unsettled;
    this.#unsettled = [];
    for (const { offsets, events, encoded, done, fail } of queued) {
      try {
        for (let i = 0; i < events.length; i++) {
          const next = offsets[i]! + FRAME_HEADER + encoded[i]!.length;
          this.#recent.add(offsets[i]!, next, events[i]!, encoded[i]!);
          for (const o of this.#observers) o(events[i]!, next);
        }
        const to = offsets[events.length - 1]! + FRAME_HEADER + encoded[events.length - 1]!.length;
        let moved = false;
        for (const c of this.#consumers) moved = c.appended(offsets[0]!, to, events) || moved;
        // Once for all the groups that moved past these events, not once per group.
        if (moved) this.#releaseRecent();
        done();
      } catch (err) {
        // As before this was queued: the publish fails with what went wrong (the event is durable).
        fail(err);
      }
    }
  }

  /**
   * For start-up work (crash recovery), before anything is published: hands `visit` every event
   * from `position` (a record's start, or the log's start when undefined) to the end of the log,
   * in order, and resolves with that end. A position where no record starts is refused.
   */
  async scanFrom(position: number | undefined, visit: (event: AgateEvent) => void): Promise<number> {
    const end = this.#log.size;
    let at = position ?? this.#log.start;
    if (!this.#log.isRecordStart(at)) throw new AgateError(ErrorCode.BUS_OFFSET_INVALID, `no record of the event log starts at ${at} (the log ends at ${end})`);
    while (at < end) {
      const slice = this.#log.read(at, FILE_SLICE);
      if (slice.length === 0) break;
      for (const r of slice) visit(decodeRecord(this.#codec, r));
      at = slice[slice.length - 1]!.next;
      await new Promise((resolve) => setImmediate(resolve));
    }
    return end;
  }

  /** The directory of the log and the consumer groups' positions. */
  get dir(): string {
    return this.#dir;
  }

  /** The end of the log: where the next event will start. */
  get end(): number {
    return this.#log.size;
  }

  /**
   * Tells `observer` of every event once it is durable, in log order, with the position just
   * past it: for state kept in step with the log (the open sessions and commands).
   */
  observe(observer: (event: AgateEvent, next: number) => void): void {
    this.#observers.push(observer);
  }

  async subscribe(options: SubscribeOptions): Promise<Subscription> {
    const consumer = new LocalConsumer(this.#log, this.#recent, this.#codec, join(this.#dir, 'groups', `${options.group}.offset`), options, this.#logger.child({ group: options.group }), this.#linger[options.group] ?? 0, () => this.#releaseRecent());
    this.#consumers.add(consumer);
    this.#members.set(options.group, consumer);
    consumer.start();
    return {
      close: async () => {
        this.#consumers.delete(consumer);
        await consumer.stop();
      },
    };
  }

  /**
   * Drops from the window what every consumer of this process has handled. A group subscribed
   * later, or a group with no consumer here, reads the file up to the window as it always may.
   */
  #releaseRecent(): void {
    let lowest = Infinity;
    for (const c of this.#consumers) lowest = Math.min(lowest, c.position);
    if (Number.isFinite(lowest)) this.#recent.releaseBefore(lowest);
  }

  problem(): string | undefined {
    const stopped = [...this.#consumers].map((c) => c.failure).filter((f) => f !== undefined);
    return stopped.length === 0 ? undefined : stopped.join('; ');
  }

  /**
   * Set by close(): the consumer groups of this process that stopped before handling every event
   * of the log they take (a handler that failed at stop, an event published after its group
   * closed). Those events wait in the log for the group's next start; a caller whose group is the
   * record (the ledger) says so loudly.
   */
  get trailing(): readonly TrailingGroup[] {
    return this.#trailing;
  }

  async close(): Promise<void> {
    if (this.#closed) return;
    this.#closed = true;
    clearInterval(this.#retentionTimer);
    await Promise.all([...this.#consumers].map((c) => c.stop()));
    this.#consumers.clear();
    // Every record published is in the log (and its publish settled) before the account is made.
    await this.#log.commitWaiting();
    await new Promise((resolve) => setImmediate(resolve));
    this.#trailing = [...this.#members.values()].map((c) => this.#unhandled(c)).filter((t) => t.events > 0);
    await this.#log.close();
  }

  /** The events of the log past a stopped consumer's position that its group takes. */
  #unhandled(consumer: LocalConsumer): TrailingGroup {
    const end = this.#log.size;
    let events = 0;
    let at = consumer.position;
    try {
      while (at < end) {
        const slice = this.#log.read(at, FILE_SLICE);
        if (slice.length === 0) break;
        for (const r of slice) if (consumer.wants(decodeRecord(this.#codec, r))) events += 1;
        at = slice[slice.length - 1]!.next;
      }
    } catch {
      // A record that cannot be read: the group stopped on it too, and everything past it counts.
      events += 1;
    }
    return { group: consumer.group, position: consumer.position, end, events };
  }
}

/** A consumer group that stopped short of the log's end (LocalBus.trailing). */
export interface TrailingGroup {
  group: string;
  /** Where the group resumes at its next start. */
  position: number;
  /** The log's end at close. */
  end: number;
  /** Events past `position` the group takes (at least: counting stops at a record that cannot be read). */
  events: number;
}

/**
 * A bounded window of the most recently appended events, in log order. Appends complete in log
 * order (one writer, group commit), so the window is contiguous: a consumer positioned anywhere
 * inside it reads from memory, anything older comes from the file.
 */
/** One record of the log: the event, its encoding as written, and where the next record starts. */
interface LogEntry {
  next: number;
  event: AgateEvent;
  bytes: Buffer;
}

class RecentEvents {
  /**
   * At most this many events are kept (up to twice as many between two cuts), and fewer once
   * every consumer has settled past them (releaseBefore): the window only has to cover how far the
   * slowest consumer trails. The ledger lingers between batches (500 ms then; 1 s now,
   * LEDGER_LINGER_MS: about 11,000 events at 3,600 statements/s) and then inserts into the
   * engine: at 5,000 events/s (1,700 statements/s) it fell behind a window of 4,096 every few
   * seconds and read 20,000 records back from the file, a 110-220 ms stall of the event loop each
   * time (measured). 16,384 covers about 3 s of lag at that rate.
   */
  static readonly CAPACITY = 16_384;
  /**
   * And at most this many bytes of the log (up to twice as many), whichever limit comes first:
   * large statements must not make the window (which holds each event's encoding too) grow
   * without bound. 32 MiB is 9 s at the rate above.
   */
  static readonly CAPACITY_BYTES = 32 * 1024 * 1024;
  #offsets: number[] = [];
  #entries: LogEntry[] = [];
  /** Where the newest event added ends, also once released: a consumer there is caught up. */
  #end = -1;

  add(offset: number, next: number, event: AgateEvent, bytes: Buffer): void {
    const last = this.#entries[this.#entries.length - 1];
    if (last !== undefined && last.next !== offset) {
      // Not contiguous (a failed write was cut from the log): start the window afresh.
      this.#offsets = [];
      this.#entries = [];
    }
    this.#offsets.push(offset);
    this.#entries.push({ next, event, bytes });
    this.#end = next;
    if (this.#entries.length > RecentEvents.CAPACITY * 2 || next - this.#offsets[0]! > RecentEvents.CAPACITY_BYTES * 2) {
      // Keep the newest CAPACITY events, fewer if they span more than CAPACITY_BYTES.
      let cut = Math.max(0, this.#entries.length - RecentEvents.CAPACITY);
      while (cut < this.#entries.length - 1 && next - this.#offsets[cut]! > RecentEvents.CAPACITY_BYTES) cut += 1;
      this.#offsets = this.#offsets.slice(cut);
      this.#entries = this.#entries.slice(cut);
    }
  }

  /**
   * Drops the events before `position`, the lowest position a consumer may read again: kept
   * decoded with their encodings, a full window was 50-60 MiB of the process's memory that stayed
   * after traffic stopped (measured in `npm run bench -- pg`). All at once when every event is
   * behind it; otherwise only once at least half the window is, so the copy costs O(1) per event.
   */
  releaseBefore(position: number): void {
    const last = this.#entries[this.#entries.length - 1];
    if (last === undefined) return;
    if (position >= last.next) {
      this.#offsets = [];
      this.#entries = [];
      return;
    }
    const half = this.#entries.length >> 1;
    if (half === 0 || this.#offsets[half]! > position) return;
    const cut = this.#indexAtOrAfter(position);
    this.#offsets = this.#offsets.slice(cut);
    this.#entries = this.#entries.slice(cut);
  }

  /** Up to `max` events starting exactly at `position`, or undefined when it is not in the window. */
  from(position: number, max: number): LogEntry[] | undefined {
    if (position === this.#end) return [];
    const first = this.#offsets[0];
    if (first === undefined || position < first) return undefined;
    const at = this.#indexAtOrAfter(position);
    if (this.#offsets[at] !== position) return undefined;
    return this.#entries.slice(at, at + max);
  }

  /** The index of the first event at or after `position` (binary search: offsets ascend). */
  #indexAtOrAfter(position: number): number {
    let lo = 0;
    let hi = this.#offsets.length - 1;
    while (lo < hi) {
      const mid = (lo + hi) >> 1;
      if (this.#offsets[mid]! < position) lo = mid + 1;
      else hi = mid;
    }
    return lo;
  }
}

/** One durable append whose bookkeeping is queued (LocalBus.#settle); `done` resolves its publish. */
interface Written {
  offsets: number[];
  events: AgateEvent[];
  encoded: Buffer[];
  done: () => void;
  fail: (err: unknown) => void;
}

/** What a command no decider answers is written with. */
const NONE: readonly AgateEvent[] = [];

/** Events whose durability nobody waits on to proceed (LocalLog.append's `urgent: false`). */
const LAZY_TYPES: ReadonlySet<AgateEvent['type']> = new Set(['Verdict', 'Response']);

/**
 * Committed positions are written at most this often (redelivery after a crash is allowed:
 * consumers are idempotent by event id). Each commit is eight thread-pool file operations with
 * two fsyncs (offset-file.ts), per group: at 200 ms, three groups under steady traffic took more
 * of the event loop than the Kubernetes proxy's own work per request (profiled under
 * `npm run bench -- k8s`, BENCHMARKS.md), and their fsyncs queue beside the log's fdatasync that
 * every command waits for. A crash now redelivers up to a second of events per group.
 */
const COMMIT_INTERVAL_MS = 1_000;
/**
 * A group that only moved past events it does not want since its last commit (most groups, most
 * of the time: every statement appends a Command, a Verdict and a Response) commits this seldom:
 * after a crash it reads those events again and skips them again, handling nothing twice, and its
 * commits' fsyncs stay out of the way of the log's fdatasync that every command waits for.
 */
const SKIPPED_COMMIT_INTERVAL_MS = 10_000;
/** The local log is one stream. */
export const LOCAL_STREAM = { stream: 'embedded' } as const;

/** Records read and decoded from the file between two turns of the event loop (~2-4 ms of work). */
const FILE_SLICE = 200;

/** The event one record of the log holds; a record that does not decode is BUS_LOG_CORRUPT. */
function decodeRecord(codec: EventCodec, r: { offset: number; bytes: Buffer }): AgateEvent {
  try {
    return codec.decode(r.bytes);
  } catch (err) {
    throw new AgateError(ErrorCode.BUS_LOG_CORRUPT, `the record at offset ${r.offset} is not an event this Agate can decode`, { cause: err });
  }
}

/** Waits between deliveries of a batch whose handler failed (core/src/retry.ts). */
const HANDLER_BACKOFF = { firstMs: 50, maxMs: 5_000 };

/** One consumer group member reading the local log sequentially. */
class LocalConsumer {
  readonly #types: ReadonlySet<string>;
  readonly #accept: ((event: AgateEvent) => boolean) | undefined;
  #position: number;
  #wake: (() => void) | undefined;
  /**
   * Where the group waits, caught up with nothing in hand; undefined while it reads, hands over
   * or lingers. Events appended right there that it does not want move it on at once.
   */
  #idleAt: number | undefined;
  #stopped = false;
  #loop: Promise<void> | undefined;
  #committed: number;
  #lastCommit = 0;
  /** The position just past the last batch handed to the handler and settled. */
  #handledTo = 0;
  #commitTimer: NodeJS.Timeout | undefined;
  /** When #commitTimer fires (ms since the epoch). */
  #commitDue = 0;
  #writing: Promise<void> | undefined;
  /** The last commit failed (said once, until one succeeds). */
  #commitFailing = false;
  /** Why the group stopped, once it did (a record it cannot read: never skipped). */
  #failure: string | undefined;

  readonly #log: LocalLog;
  readonly #recent: RecentEvents;
  readonly #codec: EventCodec;
  readonly #offsetFile: string;
  readonly #options: SubscribeOptions;
  readonly #logger: Logger;
  readonly #lingerMs: number;
  /** Tells the bus this group's position moved (the window may drop what every group passed). */
  readonly #onSettled: () => void;

  constructor(
    log: LocalLog,
    recent: RecentEvents,
    codec: EventCodec,
    offsetFile: string,
    options: SubscribeOptions,
    logger: Logger,
    lingerMs: number,
    onSettled: () => void,
  ) {
    this.#log = log;
    this.#recent = recent;
    this.#codec = codec;
    this.#offsetFile = offsetFile;
    this.#options = options;
    this.#logger = logger;
    this.#lingerMs = lingerMs;
    this.#onSettled = onSettled;
    this.#types = new Set(options.types);
    this.#accept = options.accept;
    this.#position = readOffsetFile(offsetFile, options.group, log);
    this.#committed = this.#position;
  }

  get failure(): string | undefined {
    return this.#failure;
  }

  /** Where this group reads again should a batch fail: every event before it is handled. */
  get position(): number {
    return this.#position;
  }

  /** The position last committed to disk (where the group resumes after a restart). */
  get committed(): number {
    return this.#committed;
  }

  start(): void {
    this.#loop = this.#run().catch((err: unknown) => {
      // A record that cannot be read or decoded is never skipped: stop this group loudly instead,
      // and say so on /healthz and /readyz.
      this.#failure = `consumer group "${this.#options.group}" stopped at log position ${this.#position}: ${describeError(err)}`;
      this.#logger.error('consumer stopped: cannot read the event log', { error: describeError(err), position: this.#position });
    });
  }

  wake(): void {
    this.#wake?.();
  }

  get group(): string {
    return this.#options.group;
  }

  /** Whether the group takes this event (SubscribeOptions.types and accept). */
  wants(event: AgateEvent): boolean {
    return this.#types.has(event.type) && (this.#accept === undefined || this.#accept(event));
  }

  /** Whether the group takes any of `events` (a loop: this runs for every group on every commit). */
  #wantsAny(events: readonly AgateEvent[]): boolean {
    for (let i = 0; i < events.length; i++) if (this.wants(events[i]!)) return true;
    return false;
  }

  /**
   * Events from `from` to `to` were appended. A group waiting at `from` that wants none of them
   * moves past them without a turn of its loop (most groups want few types, and every statement
   * appends a Command, a Verdict and a Response); otherwise it is woken to read them. Whether
   * it moved past them (the bus then lets the window drop what every group passed).
   */
  appended(from: number, to: number, events: readonly AgateEvent[]): boolean {
    if (this.#idleAt === from && !this.#wantsAny(events)) {
      this.#idleAt = to;
      this.#position = to;
      this.#commit(false);
      return true;
    }
    this.wake();
    return false;
  }

  async stop(): Promise<void> {
    this.#stopped = true;
    this.wake();
    await this.#loop;
    await this.#commitFinal();
  }

  async #run(): Promise<void> {
    const depth = Math.max(1, this.#options.inFlight ?? 1);
    // Batches handed over and not yet settled, oldest first; `ok` never rejects.
    const out: { ok: Promise<boolean>; next: number; handled: boolean }[] = [];
    let readAt = this.#position;
    const backoff = new Backoff(HANDLER_BACKOFF);
    deliver: for (;;) {
      const max = this.#options.maxBatch ?? 500;
      // Caught-up consumers take the events from memory; others read the file.
      const recent = this.#recent.from(readAt, max);
      const records = recent ?? (await this.#readFile(readAt, max));
      if (records.length > 0) {
        const wanted = records.filter((r) => this.wants(r.event));
        const next = records[records.length - 1]!.next;
        const handled = wanted.length > 0;
        out.push({ ok: handled ? this.#hand(wanted.map((r) => r.event), wanted.map((r) => r.bytes), wanted.map((r) => r.next)) : Promise.resolve(true), next, handled });
        readAt = next;
      }
      // Settle the oldest batches: all of them once nothing new is there to hand over (and then
      // look again: events may have come while waiting).
      const settled = out.length > 0 && records.length === 0;
      while (out.length >= depth || (records.length === 0 && out.length > 0)) {
        const first = out.shift()!;
        if (await first.ok) {
          this.#position = first.next;
          if (first.handled) this.#handledTo = first.next;
          this.#onSettled();
          this.#commit(false);
          backoff.reset();
          continue;
        }
        // The failed batch and every one handed over after it are delivered again.
        await Promise.all(out.map((o) => o.ok));
        out.length = 0;
        readAt = this.#position;
        await pause(backoff.next());
        if (this.#stopped) return;
        continue deliver;
      }
      if (settled) continue;
      if (records.length === 0) {
        this.#commit(false);
        // Stopping drains first: everything appended before stop() is handed over.
        if (this.#stopped) return;
        this.#idleAt = readAt;
        await new Promise<void>((resolve) => (this.#wake = resolve));
        this.#wake = undefined;
        readAt = this.#idleAt ?? readAt; // past what appended() let it skip
        this.#idleAt = undefined;
        continue;
      }
      if (this.#lingerMs > 0 && records.length < max && !this.#stopped) {
        await new Promise<void>((resolve) => {
          const timer = setTimeout(resolve, this.#lingerMs);
          this.#wake = () => this.#stopped && (clearTimeout(timer), resolve());
        });
        this.#wake = undefined;
      }
    }
  }

  /**
   * Events from the file from `position`, for a consumer behind the in-memory window: read and
   * decoded a slice at a time, yielding to the event loop in between (every proxy session
   * shares it), until `max` or until the window takes over.
   */
  async #readFile(position: number, max: number): Promise<LogEntry[]> {
    const out: LogEntry[] = [];
    while (out.length < max) {
      const slice = this.#log.read(position, Math.min(FILE_SLICE, max - out.length));
      if (slice.length === 0) break;
      for (const r of slice) {
        let event: AgateEvent;
        try {
          event = decodeRecord(this.#codec, r);
        } catch (err) {
          if (out.length > 0) return out; // hand over what came before; the next read stops here
          throw err;
        }
        out.push({ next: r.next, event, bytes: r.bytes });
      }
      position = slice[slice.length - 1]!.next;
      if (out.length >= max || this.#recent.from(position, 0) !== undefined) break;
      await new Promise((resolve) => setImmediate(resolve));
    }
    return out;
  }

  /** Hands a batch to the handler: whether it succeeded (a failure is logged; the batch is delivered again). */
  #hand(batch: readonly AgateEvent[], encoded: readonly Buffer[], positions: readonly number[]): Promise<boolean> {
    const source: StreamInfo = { ...LOCAL_STREAM, encoded, positions };
    return this.#options.handler(batch, source).then(
      () => true,
      (err: unknown) => {
        this.#logger.error('event handler failed; the batch is delivered again', { error: describeError(err), events: batch.length });
        return false;
      },
    );
  }

  #commit(force: boolean): void {
    if (this.#position === this.#committed || this.#writing !== undefined) return;
    const now = Date.now();
    const interval = this.#commitInterval();
    if (!force && now - this.#lastCommit < interval) {
      // Soon, even if no further event arrives; sooner once a handled batch is to be committed.
      if (this.#commitTimer === undefined || this.#commitDue > now + interval) this.#armCommit(interval);
      return;
    }
    clearTimeout(this.#commitTimer);
    this.#commitTimer = undefined;
    const position = this.#position;
    this.#lastCommit = now;
    // Atomic and fsynced, so a crash leaves the old position or the new one, never an empty
    // file (which is refused at start). Written off the event loop: a rename on a busy disk
    // measured 2 ms, taken from every proxy session; at most one every COMMIT_INTERVAL_MS.
    this.#writing = writeOffsetFile(this.#offsetFile, position)
      .then(() => {
        this.#committed = Math.max(this.#committed, position);
        if (this.#commitFailing) this.#logger.info('the consumer position is committed again', { position });
        this.#commitFailing = false;
      })
      // Once per run of failures (a full disk fails every try, once a second).
      .catch((err: unknown) => {
        if (!this.#commitFailing) this.#logger.warn('cannot commit the consumer position; it is retried', { error: describeError(err) });
        this.#commitFailing = true;
      })
      .finally(() => {
        this.#writing = undefined;
        // Events handled while this was written are committed by the timer if none follow.
        if (this.#position !== this.#committed && this.#commitTimer === undefined && !this.#stopped) this.#armCommit(this.#commitInterval());
      });
  }

  /** How long an uncommitted position may wait: handled events would be handled again after a crash, skipped ones only skipped again. */
  #commitInterval(): number {
    return this.#handledTo > this.#committed ? COMMIT_INTERVAL_MS : SKIPPED_COMMIT_INTERVAL_MS;
  }

  #armCommit(delay: number): void {
    clearTimeout(this.#commitTimer);
    this.#commitDue = Date.now() + delay;
    this.#commitTimer = setTimeout(() => ((this.#commitTimer = undefined), this.#commit(true)), delay).unref();
  }

  /** Waits for a commit in flight, then commits the final position (at stop). */
  async #commitFinal(): Promise<void> {
    await this.#writing;
    if (this.#position === this.#committed) return;
    clearTimeout(this.#commitTimer);
    await writeOffsetFile(this.#offsetFile, this.#position);
    this.#committed = this.#position;
  }
}

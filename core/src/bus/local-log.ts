import { existsSync, mkdirSync, readdirSync, readFileSync, renameSync, statSync, unlinkSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { replaceFileSynced, replaceFileSyncedSync, syncDirSync } from '../durable-file.js';
import { isOutOfSpace } from '../disk-space.js';
import { AgateError, ErrorCode } from '../errors.js';
import type { Logger } from '../log.js';
import { decodeSeal, encodeSeal, FILE_HEADER, frameHeader, MAX_RECORD, segmentBase, segmentName, type Seal } from './log-frame.js';
import { LogSegment, type LogRecord } from './log-segment.js';

/** How long a record appended with `urgent: false` may wait for a commit to join. */
const LAZY_MS = 2;
/** Default largest segment: a start scans at most this much (the last segment): 171 ms for 40 MiB measured on a busy 2-core machine. */
export const DEFAULT_SEGMENT_BYTES = 64 * 1024 * 1024;

interface LocalLogOptions {
  fsync: boolean;
  /** Told what a crashed log's recovery cut (a torn record, bytes written past the end), and what retention deleted. */
  logger?: Logger;
  /**
   * A segment takes appends until it holds this many bytes of records, then it is sealed and the
   * next one started (a group commit is never split, so one can end a little larger).
   */
  segmentBytes?: number;
  /**
   * The log of an Agate from before segments (one file): adopted as the first segment (moved
   * into the directory, offsets unchanged) when the directory holds none yet.
   */
  legacyFile?: string;
}

/** An append waiting for its commit. */
interface Pending {
  frames: Buffer[];
  done: (err?: Error, offsets?: number[]) => void;
}

/** Records written and being synced. */
interface Commit {
  batch: Pending[];
  /** The offset the first record starts at. */
  at: number;
  total: number;
  records: number;
  /** Resolves when the fdatasync ends: with its error, if it failed. */
  synced: Promise<unknown>;
}

/** What the log holds, per segment (for retention's log lines, tests and benchmarks). */
interface SegmentInfo {
  base: number;
  end: number;
  /** When it was sealed (ms since the epoch); undefined for the segment appended to. */
  sealedAt?: number;
}

/** A sealed segment; its file is opened when it is first read. */
interface Sealed extends Seal {
  path: string;
  segment?: LogSegment;
}

/**
 * An append-only, fsynced record log: the embedded bus's durable storage, a directory of
 * segment files (format and offsets in log-frame.ts). Appends from concurrent callers are
 * grouped into one write and one fdatasync into the last segment; once it is full it is sealed
 * and the next one started. Every record carries a CRC-32C: a torn or damaged record is cut at
 * open when it ends the log, refused when whole records follow it, and a read never hands one
 * over. A start scans only the last segment; `retain` deletes the oldest ones.
 */
export class LocalLog {
  readonly #dir: string;
  readonly #logger: Logger | undefined;
  readonly #fsync: boolean;
  readonly #segmentBytes: number;
  /** Sealed segments, oldest first; contiguous, and contiguous with #active. */
  #sealed: Sealed[] = [];
  #active: LogSegment;
  /** A roll failed half-way: the next commit rolls first, whatever it holds. */
  #mustRoll = false;
  #queue: Pending[] = [];
  /** An urgent record is in #queue. */
  #urgentQueued = false;
  #lazyTimer: NodeJS.Timeout | undefined;
  #flushing = false;
  /** Set while a lazy-only commit's fdatasync is in flight: an urgent append calls it. */
  #onUrgent: (() => void) | undefined;
  #closed = false;

  constructor(dir: string, options: LocalLogOptions) {
    this.#dir = dir;
    this.#fsync = options.fsync;
    this.#logger = options.logger;
    this.#segmentBytes = options.segmentBytes ?? DEFAULT_SEGMENT_BYTES;
    mkdirSync(dir, { recursive: true });
    // An adopted log is the only segment: it was scanned already.
    this.#active = (options.legacyFile === undefined ? undefined : this.#adopt(options.legacyFile)) ?? this.#openSegments();
  }

  /** End of the records: the offset after the last one. */
  get size(): number {
    return this.#active.end;
  }

  /** Where the oldest record kept starts: a consumer at 0 starts here. */
  get start(): number {
    return this.#sealed[0]?.base ?? this.#active.base;
  }

  /** The segments, oldest first, the one appended to last. */
  segments(): SegmentInfo[] {
    return [...this.#sealed.map((s) => ({ base: s.base, end: s.end, sealedAt: s.sealedAt })), { base: this.#active.base, end: this.#active.end }];
  }

  /** Whether a whole, checked record starts at `offset`, or it is the end of the log. */
  isRecordStart(offset: number): boolean {
    if (offset === this.size) return true;
    if (offset < this.start || offset > this.size) return false;
    return this.#segmentAt(offset).isRecordStart(offset);
  }

  /**
   * Appends records; resolves once they are on disk, with the offset each record starts at.
   * The records of one call are written together, in one segment.
   * `urgent` (the default) starts a group commit at the end of this turn of the event loop.
   * Records nobody waits on to proceed (see LocalBus) pass `urgent: false`: they join the next
   * urgent commit, or are committed LAZY_MS later if none comes, so they do not cost an
   * fdatasync of their own between the commits that statements wait for.
   */
  append(records: readonly Buffer[], urgent = true): Promise<number[]> {
    if (this.#closed) return Promise.reject(new AgateError(ErrorCode.BUS_CLOSED, 'the local log is closed'));
    const frames: Buffer[] = [];
    for (const r of records) {
      // A zero length marks the end of the records (see log-segment.ts).
      if (r.length === 0) return Promise.reject(new AgateError(ErrorCode.BUS_WRITE_FAILED, 'an empty record cannot be logged'));
      if (r.length > MAX_RECORD) return Promise.reject(new AgateError(ErrorCode.BUS_WRITE_FAILED, `a record of ${r.length} bytes is larger than the log takes (${MAX_RECORD})`));
      frames.push(frameHeader(r), r);
    }
    return new Promise((resolve, reject) => {
      this.#queue.push({ frames, done: (err, offsets) => (err ? reject(err) : resolve(offsets!)) });
      if (urgent) this.#urgentQueued = true;
      if (this.#flushing) {
        // The commit in flight takes it up when it ends; a lazy-only one, at once (see #flush).
        if (urgent) this.#onUrgent?.();
        return;
      }
      if (urgent) {
        clearTimeout(this.#lazyTimer);
        this.#lazyTimer = undefined;
        // Started after this loop turn's I/O callbacks, so appends from every session that
        // became readable in the same turn share the first write and fdatasync.
        this.#flushing = true;
        setImmediate(() => void this.#flush(false));
      } else {
        this.#armLazy();
      }
    });
  }

  #armLazy(): void {
    this.#lazyTimer ??= setTimeout(() => {
      this.#lazyTimer = undefined;
      if (this.#flushing || this.#queue.length === 0 || this.#closed) return;
      this.#flushing = true;
      void this.#flush(true);
    }, LAZY_MS);
  }

  /**
   * Reads up to `maxRecords` whole records starting at `offset`, from one segment (the next
   * read goes on into the next one), each checked against its CRC-32C: records up to a damaged
   * one are returned, and a read that starts at one throws BUS_LOG_CORRUPT.
   */
  read(offset: number, maxRecords: number): LogRecord[] {
    if (offset >= this.size) return [];
    if (offset < this.start) {
      throw new AgateError(ErrorCode.BUS_LOG_CORRUPT, `${this.#dir}: offset ${offset} is before the oldest record kept (${this.start}); the segments before it were deleted`);
    }
    return this.#segmentAt(offset).read(offset, maxRecords);
  }

  /**
   * Deletes the oldest sealed segments that every reader is done with: those ending at or
   * before `committed` (the lowest position any consumer group committed) and sealed at least
   * `retentionMs` before `now`. The segment appended to is never deleted. Returns what went.
   */
  retain(committed: number, retentionMs: number, now = Date.now()): SegmentInfo[] {
    const gone: SegmentInfo[] = [];
    while (this.#sealed.length > 0) {
      const s = this.#sealed[0]!;
      if (s.end > committed || now - s.sealedAt < retentionMs) break;
      this.#sealed.shift();
      s.segment?.closeSealed();
      // The records first: a crash in between leaves a seal alone, which the next start removes.
      unlinkSync(s.path);
      unlinkSync(join(this.#dir, segmentName(s.base, 'seal')));
      gone.push({ base: s.base, end: s.end, sealedAt: s.sealedAt });
    }
    if (gone.length > 0) {
      syncDirSync(this.#dir);
      this.#logger?.info('deleted event log segments every consumer group had read', { segments: gone.length, from: gone[0]!.base, to: gone[gone.length - 1]!.end, oldest_kept: this.start });
    }
    return gone;
  }

  /** Waits for appends in flight, and commits the records waiting for a lazy commit now. */
  async commitWaiting(): Promise<void> {
    while (this.#flushing) await new Promise((r) => setImmediate(r));
    if (this.#closed) return;
    clearTimeout(this.#lazyTimer);
    this.#lazyTimer = undefined;
    if (this.#queue.length > 0) {
      this.#flushing = true;
      await this.#flush(true);
    }
  }

  /** Commits what waits (commitWaiting), then closes the files. */
  async close(): Promise<void> {
    await this.commitWaiting();
    if (this.#closed) return;
    this.#closed = true;
    for (const s of this.#sealed) s.segment?.closeSealed();
    // The file holds the records alone again.
    await this.#active.close();
  }

  /** Commits while urgent records wait (and once with `all`, whatever waits). */
  async #flush(all: boolean): Promise<void> {
    // Everything queued while the previous fdatasync was in flight shares one write and one
    // fdatasync (group commit). The write only copies a few KiB into the page cache, so it runs
    // here: a round trip through the thread pool cost more than the copy (measured 0.5-1 ms
    // per cycle under load, on the critical path of every statement). The fdatasync, which
    // waits for the disk, runs off the event loop.
    while (this.#queue.length > 0 && !this.#closed && (all || this.#urgentQueued)) {
      all = false;
      const lazyOnly = !this.#urgentQueued;
      const first = await this.#write(false);
      if (first === undefined) continue;
      // An urgent record (a Command, forwarded only once durable) that arrives while a lazy-only
      // commit syncs does not wait for that fdatasync to end before its own starts: it is
      // written behind it and synced at once, on the second descriptor. Both complete in log order.
      const second = lazyOnly && this.#fsync ? await this.#overlap(first) : undefined;
      const failed = await this.#complete(first);
      if (second !== undefined) await this.#complete(second, failed);
    }
    this.#flushing = false;
    // Only lazy records are left: they wait for the next urgent one, or the timer.
    if (this.#queue.length > 0 && !this.#closed) this.#armLazy();
  }

  /**
   * Takes what waits, writes it after the frames written so far and starts its fdatasync.
   * Undefined when nothing was started: the write failed (its appends are told), or a second
   * commit would need a roll (it waits for the first).
   */
  async #write(spare: boolean): Promise<Commit | undefined> {
    let total = 0;
    for (const b of this.#queue) for (const f of b.frames) total += f.length;
    const full = this.#mustRoll || (this.#active.written > 0 && this.#active.written + total > this.#segmentBytes);
    if (spare && full) return undefined;
    const batch = this.#queue;
    this.#queue = [];
    this.#urgentQueued = false;
    try {
      if (full) await this.#roll();
      const frames = batch.flatMap((b) => b.frames);
      const at = await this.#active.write(frames, total);
      const synced = this.#active.sync(this.#fsync, spare).then(() => undefined, (cause: unknown) => cause);
      return { batch, at, total, records: frames.length / 2, synced };
    } catch (cause) {
      const err = writeFailed(cause);
      for (const b of batch) b.done(err);
      return undefined;
    }
  }

  /**
   * Waits for the lazy-only commit's fdatasync, or for an urgent append, whichever comes first;
   * on an urgent append, starts its commit (after this turn's I/O callbacks, like any commit, so
   * the appends of every session that became readable in the same turn share it).
   */
  async #overlap(first: Commit): Promise<Commit | undefined> {
    const urgent = await Promise.race([
      first.synced.then(() => false),
      new Promise<boolean>((resolve) => (this.#onUrgent = () => {
        this.#onUrgent = undefined;
        setImmediate(() => resolve(true));
      })),
    ]);
    this.#onUrgent = undefined;
    if (!urgent || this.#closed || !this.#urgentQueued) return undefined;
    return this.#write(true);
  }

  /**
   * Waits for a commit's fdatasync; makes its records readable and resolves its appends, or cuts
   * the log back and fails them. A commit behind a failed one fails with it: its frames were
   * written after the failed ones, and the cut took them. Returns the error, if any.
   */
  async #complete(c: Commit, failedBefore?: Error): Promise<Error | undefined> {
    const cause = await c.synced;
    if (cause === undefined && failedBefore === undefined) {
      this.#active.commit(c.total, c.records, this.#fsync);
      let at = c.at;
      for (const b of c.batch) {
        const offsets: number[] = [];
        for (let i = 0; i < b.frames.length; i += 2) {
          offsets.push(at);
          at += b.frames[i]!.length + b.frames[i + 1]!.length;
        }
        b.done(undefined, offsets);
      }
      return undefined;
    }
    this.#active.cutBack();
    const err = failedBefore ?? writeFailed(cause);
    for (const b of c.batch) b.done(err);
    return err;
  }

  /**
   * Seals the segment appended to and starts the next: its zeros cut and its records synced,
   * its seal written, then the new file created. A crash at any step leaves a log that opens:
   * the last segment is always scanned, and a seal on it is dropped.
   */
  async #roll(): Promise<void> {
    this.#mustRoll = true;
    const old = this.#active;
    await old.trim();
    const seal: Seal = { base: old.base, end: old.end, records: old.records, sealedAt: Date.now() };
    await replaceFileSynced(join(this.#dir, segmentName(seal.base, 'seal')), encodeSeal(seal));
    const next = LogSegment.create(join(this.#dir, segmentName(seal.end, 'log')), seal.end, this.#logger);
    syncDirSync(this.#dir);
    this.#sealed.push({ ...seal, path: old.path, segment: old });
    this.#active = next;
    this.#mustRoll = false;
  }

  #segmentAt(offset: number): LogSegment {
    if (offset >= this.#active.base) return this.#active;
    // Binary search: the last sealed segment whose base is at or before `offset`.
    let lo = 0;
    let hi = this.#sealed.length - 1;
    while (lo < hi) {
      const mid = (lo + hi + 1) >> 1;
      if (this.#sealed[mid]!.base <= offset) lo = mid;
      else hi = mid - 1;
    }
    const s = this.#sealed[lo]!;
    s.segment ??= LogSegment.open(s.path, s.base, { scan: false, logger: this.#logger });
    return s.segment;
  }

  /**
   * A log from before segments becomes the first segment (base FILE_HEADER: its offsets, and
   * every committed position, stay what they were). Its header is checked before it is moved,
   * so a log this version does not read is refused where it lies.
   */
  #adopt(legacy: string): LogSegment | undefined {
    if (!existsSync(legacy)) return undefined;
    const names = readdirSync(this.#dir).filter((n) => segmentBase(n, 'log') !== undefined);
    if (names.length > 0) {
      throw new AgateError(ErrorCode.BUS_LOG_CORRUPT, `${legacy} and the segments in ${this.#dir} are both there: an older Agate started a new log beside this one's. Nothing is guessed: move one of them aside`);
    }
    const segment = LogSegment.open(legacy, FILE_HEADER, { scan: true, logger: this.#logger });
    const path = join(this.#dir, segmentName(FILE_HEADER, 'log'));
    renameSync(legacy, path);
    syncDirSync(this.#dir);
    syncDirSync(dirname(legacy));
    segment.movedTo(path);
    this.#logger?.info('the event log is now segmented: its single file became the first segment', { from: legacy, to: path, bytes: segment.bytes });
    return segment;
  }

  /**
   * The segments on disk: every one but the last checked against its seal (file size and
   * contiguity, no scan), the last one scanned and returned to append to.
   */
  #openSegments(): LogSegment {
    const names = readdirSync(this.#dir);
    const bases = names.map((n) => segmentBase(n, 'log')).filter((b) => b !== undefined).sort((a, b) => a - b);
    const seals = new Set(names.map((n) => segmentBase(n, 'seal')).filter((b) => b !== undefined));
    // A seal whose segment is gone (deleted by retention, the crash came before its seal went).
    for (const b of seals) if (!bases.includes(b)) this.#unlinkQuietly(segmentName(b, 'seal'));
    if (bases.length === 0) {
      const first = LogSegment.create(join(this.#dir, segmentName(FILE_HEADER, 'log')), FILE_HEADER, this.#logger);
      syncDirSync(this.#dir);
      return first;
    }
    for (let i = 0; i < bases.length - 1; i++) this.#sealed.push(this.#checkSealed(bases[i]!, bases[i + 1]!, seals.has(bases[i]!)));
    const last = bases[bases.length - 1]!;
    // Sealed by a roll that crashed before the next segment was created: appended to again.
    if (seals.has(last)) {
      unlinkSync(join(this.#dir, segmentName(last, 'seal')));
      syncDirSync(this.#dir);
    }
    return LogSegment.open(join(this.#dir, segmentName(last, 'log')), last, { scan: true, logger: this.#logger });
  }

  /** A sealed segment, as its seal and its file's size say (a missing seal: the file is scanned and sealed again). */
  #checkSealed(base: number, nextBase: number, hasSeal: boolean): Sealed {
    const path = join(this.#dir, segmentName(base, 'log'));
    const sealPath = join(this.#dir, segmentName(base, 'seal'));
    const corrupt = (why: string) => new AgateError(ErrorCode.BUS_LOG_CORRUPT, `${path}: ${why}, so Agate does not start on this log. Keep a copy for investigation`);
    const decoded = hasSeal ? decodeSeal(readFileSync(sealPath)) : { bad: 'it has no seal' };
    if ('bad' in decoded) {
      // Not written by a roll (it writes the seal before the next segment exists): scan it all.
      const segment = LogSegment.open(path, base, { scan: false, logger: this.#logger });
      const seal: Seal = { base, end: segment.end, records: segment.countRecords(), sealedAt: Date.now() };
      if (seal.end !== nextBase) throw corrupt(`its records end at offset ${seal.end} and the next segment starts at ${nextBase}`);
      replaceFileSyncedSync(sealPath, encodeSeal(seal));
      this.#logger?.warn('an event log segment had no valid seal: it was scanned and sealed again', { file: path, reason: decoded.bad, records: seal.records });
      return { ...seal, path, segment };
    }
    if (decoded.base !== base) throw corrupt(`its seal is for the segment at offset ${decoded.base}`);
    const size = statSync(path).size;
    if (size !== FILE_HEADER + decoded.end - decoded.base) {
      throw corrupt(`it holds ${size} bytes and was sealed with ${FILE_HEADER + decoded.end - decoded.base}: it changed after it was sealed`);
    }
    if (decoded.end !== nextBase) throw corrupt(`its records end at offset ${decoded.end} and the next segment starts at ${nextBase}: records are missing between them`);
    return { ...decoded, path };
  }

  #unlinkQuietly(name: string): void {
    try {
      unlinkSync(join(this.#dir, name));
    } catch {
      // Gone already.
    }
  }
}

/** The system's reason (say, ENOSPC) is named: it is what an operator has to fix. */
function writeFailed(cause: unknown): AgateError {
  const why = isOutOfSpace(cause) ? 'the disk is full' : (cause as Error).message;
  return new AgateError(ErrorCode.BUS_WRITE_FAILED, `cannot append to the local event log: ${why}`, { cause, retriable: true });
}

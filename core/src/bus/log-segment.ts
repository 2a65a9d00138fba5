import { closeSync, constants, fdatasync, fdatasyncSync, fstatSync, ftruncateSync, openSync, readSync, statfsSync, write, writeSync, writevSync } from 'node:fs';
import { dirname } from 'node:path';
import { promisify } from 'node:util';
import { AgateError, ErrorCode } from '../errors.js';
import type { Logger } from '../log.js';
import { checkFileHeader, checkFrame, fileHeader, FILE_HEADER, FRAME_HEADER, MAX_RECORD, type FrameCheck } from './log-frame.js';

const fdatasyncAsync = promisify(fdatasync);
const writeAsync = promisify(write);
/**
 * The file is extended ahead of the records by writing zeros, this much at a time, once less
 * than PREALLOCATE_LOW is left. An fdatasync after an append must also journal the file's new
 * size and blocks; after overwriting blocks that already exist it flushes the data alone.
 * Measured on this VM (3 KB per fdatasync, 6,000 in a row, a chunk written alongside): p50
 * 112-140 µs and 87-145 µs of CPU each, against 175-188 µs and 136-162 µs when appending.
 * Smaller chunks synced one by one measured no better.
 */
const PREALLOCATE_CHUNK = 8 * 1024 * 1024;
const PREALLOCATE_LOW = 4 * 1024 * 1024;
/**
 * Zeros are written ahead only while this much would stay free on the file system after them.
 * The store often shares the disk (the embedded engine reserves ~17 MiB to insert a part): on a
 * nearly full disk the log must not take the space the store needs to catch up; appends then
 * grow the file as they go, at the cost of a slower fdatasync.
 */
const PREALLOCATE_KEEP_FREE = 4 * PREALLOCATE_CHUNK;
/** How much of the file one read takes in. */
const READ_BLOCK = 256 * 1024;

export interface LogRecord {
  /** Log-wide offset of the frame; the position a consumer resumes after is `next`. */
  offset: number;
  next: number;
  bytes: Buffer;
}

/**
 * One segment file of the log (format in log-frame.ts): its records, read and written at
 * log-wide offsets (`base` is the offset of the first record), and, while it is the segment
 * appended to, the zeros written ahead of them (see PREALLOCATE_CHUNK): a frame header of
 * length 0 marks the end of the records (no record is empty), and the zeros are cut when the
 * segment is sealed or closed and when a crashed one is opened again.
 */
export class LogSegment {
  readonly base: number;
  #fd: number;
  #path: string;
  readonly #logger: Logger | undefined;
  /** End of the records committed (durable, read), as a position in the file. */
  #size: number;
  /** End of the frames written, committed or not (the next write goes here): #size or past it. */
  #tail: number;
  /**
   * A second descriptor of the file (the segment appended to), for a commit that starts while
   * another one's fdatasync is in flight. Linux reports a writeback error once to each open file
   * (errseq): on one descriptor, the fdatasync that checks first takes the error, and the other
   * one, whose pages may be the ones that failed, returns success. Opened before any write, so
   * no error of this process's writes predates it.
   */
  #spareFd = -1;
  /** How many records it holds (unknown, -1, for a sealed segment opened without a scan). */
  #records = 0;
  /** End of the file: the records, then zeros. */
  #allocated: number;
  /** Zeros being written (and synced) past #allocated. */
  #extending: Promise<void> | undefined;
  #closed = false;

  private constructor(path: string, base: number, fd: number, logger: Logger | undefined) {
    this.#path = path;
    this.base = base;
    this.#fd = fd;
    this.#logger = logger;
    this.#size = FILE_HEADER;
    this.#tail = FILE_HEADER;
    this.#allocated = FILE_HEADER;
  }

  /**
   * Opens an existing segment (or an empty file, which gets a header). `scan` checks every
   * record's CRC and cuts a torn tail (the last segment, the one a crash can have torn); without
   * it the records are taken to end where the file does (a sealed segment, whose size its seal
   * vouched for).
   */
  static open(path: string, base: number, options: { scan: boolean; logger?: Logger }): LogSegment {
    // Not 'a' (O_APPEND): records are written at their offset, inside the zeros written ahead.
    const fd = openSync(path, constants.O_RDWR | constants.O_CREAT, 0o666);
    const s = new LogSegment(path, base, fd, options.logger);
    try {
      s.#openHeader();
      if (options.scan) {
        s.#size = s.#recover();
        s.#spareFd = openSync(path, constants.O_RDWR);
      } else {
        s.#size = fstatSync(fd).size;
        s.#records = -1;
      }
    } catch (err) {
      closeSync(fd);
      throw err;
    }
    s.#allocated = s.#size;
    s.#tail = s.#size;
    return s;
  }

  /** A new, empty segment: the file header written and synced (the caller syncs the directory). */
  static create(path: string, base: number, logger?: Logger): LogSegment {
    const fd = openSync(path, constants.O_RDWR | constants.O_CREAT | constants.O_EXCL, 0o666);
    writeSync(fd, fileHeader(), 0, FILE_HEADER, 0);
    fdatasyncSync(fd);
    const s = new LogSegment(path, base, fd, logger);
    s.#spareFd = openSync(path, constants.O_RDWR);
    s.#size = FILE_HEADER;
    s.#tail = FILE_HEADER;
    s.#allocated = FILE_HEADER;
    return s;
  }

  get path(): string {
    return this.#path;
  }

  /** The file was renamed (a log from before segments, adopted as the first one). */
  movedTo(path: string): void {
    this.#path = path;
  }

  /** The offset just past the last record. */
  get end(): number {
    return this.base + this.#size - FILE_HEADER;
  }

  /** How many records it holds; -1 for a sealed segment opened without a scan (its seal says). */
  get records(): number {
    return this.#records;
  }

  /** The bytes of records it holds. */
  get bytes(): number {
    return this.#size - FILE_HEADER;
  }

  /** The bytes of frames written to it, committed or not. */
  get written(): number {
    return this.#tail - FILE_HEADER;
  }

  /** Whether a whole, checked record starts at `offset` (inside this segment). */
  isRecordStart(offset: number): boolean {
    const position = this.#position(offset);
    if (position < FILE_HEADER || position >= this.#size) return false;
    return this.#frameAt(position, this.#size).kind === 'record';
  }

  /**
   * Writes frames after the last ones written (in the page cache: `sync` makes them durable,
   * `commit` hands them to readers) and returns the offset the first one starts at. Zeros being
   * written where they go are waited for (rare: only when more than PREALLOCATE_LOW bytes were
   * appended while one chunk was written). A failure cuts the file back to where this write
   * started: the frames of a commit in flight before it stay.
   */
  async write(frames: readonly Buffer[], total: number): Promise<number> {
    const start = this.#tail;
    try {
      if (this.#extending !== undefined && start + total > this.#allocated) await this.#extending;
      let written = 0;
      // writev may write less than asked (signals, limits); finish the rest before syncing.
      while (written < total) {
        const n = writevSync(this.#fd, unwritten(frames, written), start + written);
        if (n <= 0) throw new Error(`short write: ${written} of ${total} bytes`);
        written += n;
      }
      this.#allocated = Math.max(this.#allocated, start + total);
    } catch (err) {
      this.#cutBackTo(start);
      throw err;
    }
    this.#tail = start + total;
    return this.base + start - FILE_HEADER;
  }

  /**
   * Makes every frame written so far durable (`fsync`: false skips the disk, for tests of
   * throughput). `spare` syncs through the second descriptor: a commit that starts while
   * another one's fdatasync is in flight. A failure changes nothing here: the caller cuts back.
   */
  async sync(fsync: boolean, spare = false): Promise<void> {
    if (!fsync) return;
    await fdatasyncAsync(spare ? this.#spareFd : this.#fd);
  }

  /**
   * The oldest frames written and not yet committed, `total` bytes holding `records` records,
   * are durable: readers get them. Then zeros are written ahead when few are left.
   */
  commit(total: number, records: number, fsync: boolean): void {
    this.#size += total;
    this.#records += records;
    if (fsync && this.#extending === undefined && this.#allocated - this.#tail < PREALLOCATE_LOW) this.#extend();
  }

  /**
   * After a failed sync: the file is cut back to the records committed before it, and every
   * frame written after them goes (a commit that started behind the failed one fails too). All
   * of a failed commit goes, even the frames written whole before the disk filled up: their
   * publishers were told they failed (and retry, or refuse the command), so keeping them would
   * record events twice, or record commands that never ran as if they had been let through.
   * The zeros written ahead go too: a disk that filled up needs them back.
   */
  cutBack(): void {
    this.#cutBackTo(this.#size);
  }

  #cutBackTo(position: number): void {
    this.#tail = position;
    try {
      ftruncateSync(this.#fd, position);
      this.#allocated = position;
    } catch {
      // Writes go at #tail whatever follows it; the next start cuts what a crash leaves there.
    }
  }

  /**
   * Reads up to `maxRecords` whole records starting at `offset`, each checked against its
   * CRC-32C: records up to a damaged one are returned, and a read that starts at one throws
   * BUS_LOG_CORRUPT. The file is read in blocks of READ_BLOCK bytes (two system calls per
   * record cost a lagging consumer most of its time); the records share their block's memory.
   */
  read(offset: number, maxRecords: number): LogRecord[] {
    const out: LogRecord[] = [];
    let pos = this.#position(offset);
    const record = (at: number, bytes: Buffer): LogRecord => ({ offset: this.base + at - FILE_HEADER, next: this.base + at - FILE_HEADER + FRAME_HEADER + bytes.length, bytes });
    while (out.length < maxRecords && pos + FRAME_HEADER <= this.#size) {
      const block = Buffer.allocUnsafe(Math.min(READ_BLOCK, this.#size - pos));
      readFully(this.#fd, block, pos);
      let at = 0;
      while (out.length < maxRecords && at + FRAME_HEADER <= block.length) {
        const f = checkFrame(block, at);
        if (f.kind === 'short') break;
        // The records before a damaged one are handed over; the next read starts at it and fails.
        if (f.kind !== 'record') {
          if (out.length > 0) return out;
          throw this.#damaged(pos + at, f);
        }
        out.push(record(pos + at, block.subarray(at + FRAME_HEADER, at + FRAME_HEADER + f.length)));
        at += FRAME_HEADER + f.length;
      }
      if (at === 0) {
        // One record larger than a block: read it alone.
        const f = this.#frameAt(pos, this.#size);
        if (f.kind !== 'record') {
          if (out.length > 0) return out;
          throw this.#damaged(pos, f);
        }
        const bytes = Buffer.allocUnsafe(f.length);
        readFully(this.#fd, bytes, pos + FRAME_HEADER);
        out.push(record(pos, bytes));
        at = FRAME_HEADER + f.length;
      }
      pos += at;
    }
    return out;
  }

  /** Scans every record (a segment whose seal is missing): how many there are. */
  countRecords(): number {
    let n = 0;
    for (let pos = FILE_HEADER; pos < this.#size; n++) {
      const f = this.#frameAt(pos, this.#size);
      if (f.kind !== 'record') throw this.#damaged(pos, f);
      pos += FRAME_HEADER + f.length;
    }
    return n;
  }

  #position(offset: number): number {
    return offset - this.base + FILE_HEADER;
  }

  #damaged(position: number, f: FrameCheck): AgateError {
    const why = f.kind === 'bad' ? f.why : f.kind === 'end' ? 'an end marker inside the records' : 'a record running past the end of the log';
    return new AgateError(ErrorCode.BUS_LOG_CORRUPT, `${this.#path}: the record at offset ${this.base + position - FILE_HEADER} is damaged (${why}); it is not delivered, and nothing after it is`);
  }

  /** The frame at file position `position`, checked, reading no further than `end`. */
  #frameAt(position: number, end: number): FrameCheck {
    if (position + FRAME_HEADER > end) return { kind: 'short', length: -1 };
    const header = Buffer.alloc(FRAME_HEADER);
    readFully(this.#fd, header, position);
    const length = header.readUInt32BE(0);
    if (length === 0 || length > MAX_RECORD || position + FRAME_HEADER + length > end) return checkFrame(header, 0);
    const frame = Buffer.allocUnsafe(FRAME_HEADER + length);
    readFully(this.#fd, frame, position);
    return checkFrame(frame, 0);
  }

  /** Cuts the zeros written ahead and syncs: the file holds its records alone (sealing, closing). */
  async trim(): Promise<void> {
    await this.#extending;
    this.#closeSpare();
    if (fstatSync(this.#fd).size !== this.#size) ftruncateSync(this.#fd, this.#size);
    await fdatasyncAsync(this.#fd);
  }

  /** Closes the file, cutting the zeros written ahead first. */
  async close(): Promise<void> {
    if (this.#closed) return;
    this.#closed = true;
    await this.#extending;
    this.#closeSpare();
    if (this.#allocated > this.#size) ftruncateSync(this.#fd, this.#size);
    closeSync(this.#fd);
  }

  /** Closes a sealed segment's file, which holds its records alone. */
  closeSealed(): void {
    if (this.#closed) return;
    this.#closed = true;
    this.#closeSpare();
    closeSync(this.#fd);
  }

  #closeSpare(): void {
    if (this.#spareFd < 0) return;
    closeSync(this.#spareFd);
    this.#spareFd = -1;
  }

  /**
   * Writes the next chunk of zeros past the end of the file, off the event loop, and syncs it,
   * through a descriptor of its own: its fdatasync can run beside a commit's, and a writeback
   * error of the records' pages taken by it (whose failure is not fatal) would leave the commit's
   * fdatasync on the same descriptor reporting success (see #spareFd).
   */
  #extend(): void {
    if (!roomToPreallocate(this.#path)) return;
    const at = this.#allocated;
    const zeros = Buffer.alloc(PREALLOCATE_CHUNK);
    this.#extending = (async () => {
      const fd = openSync(this.#path, constants.O_WRONLY);
      try {
        let done = 0;
        while (done < zeros.length) {
          const { bytesWritten } = await writeAsync(fd, zeros, done, zeros.length - done, at + done);
          if (bytesWritten <= 0) throw new Error('short write');
          done += bytesWritten;
        }
        await fdatasyncAsync(fd);
      } finally {
        closeSync(fd);
      }
      // Writes never go past `at` while this runs; max() only guards the order of updates.
      this.#allocated = Math.max(this.#allocated, at + zeros.length);
    })()
      // Not fatal: appends then extend the file as they go. What was written of the chunk
      // (a disk that filled up) is given back, not kept from the store.
      .catch(() => {
        try {
          if (!this.#closed) ftruncateSync(this.#fd, this.#allocated);
        } catch {
          // The next write fails and cuts the file back to its records.
        }
      })
      .finally(() => (this.#extending = undefined));
  }

  /**
   * Checks the file header; a new (or torn-while-created) file gets one. A log of an older or
   * unknown format is refused by name: read as this one, its records would fail their
   * checksums or be misread.
   */
  #openHeader(): void {
    const size = fstatSync(this.#fd).size;
    const head = Buffer.alloc(Math.min(size, FILE_HEADER));
    if (head.length > 0) readFully(this.#fd, head, 0);
    const check = checkFileHeader(head);
    // An old-format log that ends at once (a zero length) holds no record: start it afresh.
    const empty = check.kind === 'empty' || (check.kind === 'old-format' && head.length >= 4 && head.readUInt32BE(0) === 0 && this.#countNonZero(0, size) === 0);
    if (check.kind === 'ok') return;
    if (empty) {
      ftruncateSync(this.#fd, 0);
      writeSync(this.#fd, fileHeader(), 0, FILE_HEADER, 0);
      fdatasyncSync(this.#fd);
      return;
    }
    const why = check.kind === 'old-format'
      ? 'it was written by an Agate from before records carried checksums (no format header). This version does not read it: let the version that wrote it deliver every event (stop it once /readyz is ok and the ledger caught up), then move the file aside; a new log is started'
      : `${check.kind === 'unknown' ? check.why : 'unknown format'}`;
    throw new AgateError(ErrorCode.BUS_LOG_CORRUPT, `${this.#path} is not an event log this Agate reads: ${why}`);
  }

  /**
   * Scans the records, checking each one's CRC, and cuts what follows the last whole one: the
   * zeros written ahead, a torn record, or a damaged one at the tail (logged, with what was cut
   * when it was more than zeros). A damaged record with whole records after it is refused:
   * those were acknowledged, and a crash tears only the last group commit.
   */
  #recover(): number {
    const size = fstatSync(this.#fd).size;
    const { pos, records, f } = this.#scan(size);
    this.#records = records;
    if (f.kind === 'bad') {
      const header = Buffer.alloc(4);
      readFully(this.#fd, header, pos);
      const next = pos + FRAME_HEADER + header.readUInt32BE(0);
      if (next < size && this.#frameAt(next, size).kind === 'record') {
        throw new AgateError(ErrorCode.BUS_LOG_CORRUPT, `${this.#path}: the record at offset ${this.base + pos - FILE_HEADER} is damaged (${f.why}) and whole records follow it: acknowledged events are damaged, so Agate does not start on this log. Keep a copy for investigation`);
      }
    }
    if (pos < size) {
      const nonZero = this.#countNonZero(pos, size);
      if (nonZero > 0) {
        const what = f.kind === 'bad' ? f.why : f.kind === 'short' ? 'a record cut short by a crash' : 'bytes past the end marker';
        this.#logger?.warn('cut a torn or damaged record from the end of the event log', { file: this.#path, offset: this.base + pos - FILE_HEADER, bytes: size - pos, non_zero_bytes: nonZero, reason: what });
      }
      ftruncateSync(this.#fd, pos);
    }
    return pos;
  }

  /**
   * Walks the whole records from the header on, checking each one's CRC: where they end, how
   * many there are, and what stopped the walk. Read a block at a time, like `read` (a read per
   * frame header and another per record made a start take 4.6 s for a million records).
   */
  #scan(size: number): { pos: number; records: number; f: FrameCheck } {
    let pos = FILE_HEADER;
    let records = 0;
    let f: FrameCheck = { kind: 'end' };
    const block = Buffer.allocUnsafe(READ_BLOCK);
    while (pos < size) {
      const part = block.subarray(0, Math.min(READ_BLOCK, size - pos));
      readFully(this.#fd, part, pos);
      let at = 0;
      for (;;) {
        f = checkFrame(part, at);
        if (f.kind !== 'record') break;
        at += FRAME_HEADER + f.length;
        records++;
      }
      if (f.kind === 'short' && at === 0) {
        // A record larger than a block, or one cut short at the end of the file.
        f = this.#frameAt(pos, size);
        if (f.kind !== 'record') return { pos, records, f };
        at = FRAME_HEADER + f.length;
        records++;
      } else if (f.kind !== 'short') return { pos: pos + at, records, f };
      pos += at;
    }
    return { pos, records, f: pos === size ? { kind: 'end' } : f };
  }

  #countNonZero(from: number, to: number): number {
    let n = 0;
    const block = Buffer.allocUnsafe(READ_BLOCK);
    for (let at = from; at < to; at += READ_BLOCK) {
      const part = block.subarray(0, Math.min(READ_BLOCK, to - at));
      readFully(this.#fd, part, at);
      for (const b of part) if (b !== 0) n++;
    }
    return n;
  }
}

/** Whether the file system holding `path` keeps PREALLOCATE_KEEP_FREE free after one more chunk. */
function roomToPreallocate(path: string): boolean {
  try {
    const fs = statfsSync(dirname(path));
    return fs.bavail * fs.bsize >= PREALLOCATE_CHUNK + PREALLOCATE_KEEP_FREE;
  } catch {
    return false;
  }
}

/** Fills `into` from the file at `position` (records below the log's size are whole on disk). */
function readFully(fd: number, into: Buffer, position: number): void {
  for (let done = 0; done < into.length; ) {
    const n = readSync(fd, into, done, into.length - done, position + done);
    if (n <= 0) throw new AgateError(ErrorCode.BUS_WRITE_FAILED, `the local event log ends before offset ${position + into.length}`);
    done += n;
  }
}

/** The frames from byte `skip` on, sharing memory with the originals. */
function unwritten(frames: readonly Buffer[], skip: number): Buffer[] {
  if (skip === 0) return frames as Buffer[];
  const out: Buffer[] = [];
  for (const f of frames) {
    if (skip >= f.length) skip -= f.length;
    else {
      out.push(skip === 0 ? f : f.subarray(skip));
      skip = 0;
    }
  }
  return out;
}

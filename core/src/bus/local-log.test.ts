import { suite } from '../../../test/harness/suite.js';
import * as assert from 'uvu/assert';
import { closeSync, cpSync, existsSync, mkdtempSync, readdirSync, readSync, truncateSync, unlinkSync, openSync, readFileSync, rmSync, statSync, writeFileSync, writeSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { Logger } from '../log.js';
import { LocalLog } from './local-log.js';
import { encodeSeal, FILE_HEADER, frameHeader, recordsIn, segmentName } from './log-frame.js';

const dirs: string[] = [];
const freshDir = () => {
  const d = mkdtempSync(join(tmpdir(), 'agate-log-'));
  dirs.push(d);
  return d;
};
/** A fresh log directory, and the file of its first segment. */
const fresh = () => {
  const dir = freshDir();
  return { dir, path: join(dir, segmentName(FILE_HEADER, 'log')) };
};
/** A crashed copy of a log directory: its files as they are on disk now. */
const copyDir = (from: string) => {
  const to = freshDir();
  cpSync(from, to, { recursive: true });
  return { dir: to, path: join(to, segmentName(FILE_HEADER, 'log')) };
};
const record = (i: number) => Buffer.from(`record ${i} `.repeat(1 + (i % 7)));
/** Waits until the zeros written ahead are on disk (they are written off the event loop). */
const settled = async (path: string, records: number) => {
  for (let i = 0; i < 200 && statSync(path).size <= records; i++) await new Promise((r) => setTimeout(r, 10));
};

const log = suite('LocalLog');

log('runs ahead of its records with zeros while open, and holds only the records once closed', async () => {
  const { dir, path } = fresh();
  const l = new LocalLog(dir, { fsync: true });
  const offsets = (await Promise.all(Array.from({ length: 50 }, (_, i) => l.append([record(i)])))).flat();
  await settled(path, l.size);
  assert.ok(statSync(path).size > l.size, 'zeros were written ahead');
  const read = l.read(l.start, 100);
  assert.is(read.length, 50);
  assert.equal(read.map((r) => r.offset), offsets);
  assert.equal(read.map((r) => r.bytes.toString()), Array.from({ length: 50 }, (_, i) => record(i).toString()));
  const size = l.size;
  await l.close();
  assert.is(statSync(path).size, size);
});

log('a crash leaves zeros after the records: they are cut on open and appends go on from the last record', async () => {
  const { dir, path } = fresh();
  const l = new LocalLog(dir, { fsync: true });
  for (let i = 0; i < 20; i++) await l.append([record(i)]);
  await settled(path, l.size);
  const crashed = copyDir(dir); // the files as a crash would leave them: records, then zeros
  const size = l.size;
  await l.close();
  assert.ok(statSync(crashed.path).size > size);
  const again = new LocalLog(crashed.dir, { fsync: true });
  assert.is(again.size, size);
  assert.is(statSync(crashed.path).size, size);
  const [at] = await again.append([record(99)]);
  assert.is(at, size);
  const all = again.read(again.start, 100);
  assert.is(all.length, 21);
  assert.is(all[20]!.bytes.toString(), record(99).toString());
  await again.close();
  // The bytes on disk are the header and whole, checked frames only.
  const bytes = readFileSync(crashed.path);
  const records = recordsIn(bytes);
  assert.is(records.length, 21);
  assert.is(FILE_HEADER + records.reduce((n, r) => n + 8 + r.length, 0), bytes.length);
});

/** A logger that keeps what it is told at warn level. */
function warnings(): { logger: Logger; seen: Record<string, unknown>[] } {
  const seen: Record<string, unknown>[] = [];
  const logger: Logger = { debug() {}, info() {}, error() {}, warn: (msg, fields) => void seen.push({ msg, ...fields }), child: () => logger };
  return { logger, seen };
}

/** Three records, closed; returns the path and each record's offset. */
async function threeRecords(): Promise<{ dir: string; path: string; offsets: number[] }> {
  const { dir, path } = fresh();
  const l = new LocalLog(dir, { fsync: true });
  const offsets = (await l.append([record(1), record(2), record(3)]));
  await l.close();
  return { dir, path, offsets };
}

function writeAt(path: string, at: number, bytes: Buffer): void {
  const fd = openSync(path, 'r+');
  writeSync(fd, bytes, 0, bytes.length, at);
  closeSync(fd);
}

log('a torn record inside the zeros written ahead is cut at open, with a log line saying what was cut', async () => {
  const { dir, path } = fresh();
  const l = new LocalLog(dir, { fsync: true });
  for (let i = 0; i < 5; i++) await l.append([record(i)]);
  await settled(path, l.size);
  const crashed = copyDir(dir); // records, then the zeros written ahead
  const end = l.size;
  await l.close();
  // A crash while writing the next record: its frame header made it, half its bytes did not.
  const torn = Buffer.alloc(300, 0x61);
  const frame = Buffer.concat([frameHeader(torn), torn.subarray(0, 150)]);
  writeAt(crashed.path, end, frame);
  const { logger, seen } = warnings();
  const again = new LocalLog(crashed.dir, { fsync: true, logger });
  assert.is(again.size, end);
  assert.is(again.read(again.start, 10).length, 5);
  assert.is(seen.length, 1);
  assert.is(seen[0]!.offset, end);
  assert.is(seen[0]!.non_zero_bytes, frame.filter((b) => b !== 0).length);
  assert.match(String(seen[0]!.reason), /fails its CRC-32C/);
  await again.close();
});

log('a damaged last record is cut with a log line; a damaged record with whole records after it is refused', async () => {
  const tail = await threeRecords();
  const size = statSync(tail.path).size;
  writeAt(tail.path, size - 1, Buffer.from('!'));
  const { logger, seen } = warnings();
  const cut = new LocalLog(tail.dir, { fsync: true, logger });
  assert.is(cut.size, tail.offsets[2]);
  assert.is(seen[0]!.offset, tail.offsets[2]);
  await cut.close();

  const middle = await threeRecords();
  writeAt(middle.path, middle.offsets[1]! + 9, Buffer.from('!'));
  try {
    new LocalLog(middle.dir, { fsync: true });
    assert.unreachable('opened a log with a damaged acknowledged record');
  } catch (err) {
    assert.is((err as { code: string }).code, 'BUS_LOG_CORRUPT');
    assert.match((err as Error).message, new RegExp(`the record at offset ${middle.offsets[1]} is damaged \\(a record that fails its CRC-32C\\) and whole records follow it`));
  }
});

log('a record damaged after open is never handed over: reading it fails, naming its offset', async () => {
  const { dir, path, offsets } = await threeRecords();
  const l = new LocalLog(dir, { fsync: true });
  writeAt(path, offsets[1]! + 9, Buffer.from('!'));
  assert.equal(l.read(offsets[0]!, 3).map((r) => r.offset), [offsets[0]], 'the records before it, and not it');
  assert.throws(() => l.read(offsets[1]!, 3), (err: Error & { code: string }) => err.code === 'BUS_LOG_CORRUPT' && err.message.includes(`offset ${offsets[1]}`));
  assert.ok(l.isRecordStart(offsets[0]!));
  assert.not.ok(l.isRecordStart(offsets[0]! + 1));
  await l.close();
});

log('a log from before record checksums is refused by name; an empty file gets a header', async () => {
  const dir = freshDir();
  const path = join(dir, 'events.log');
  const old = Buffer.alloc(4 + 5);
  old.writeUInt32BE(5);
  old.write('hello', 4);
  writeFileSync(path, old);
  try {
    new LocalLog(join(dir, 'segments'), { fsync: false, legacyFile: path });
    assert.unreachable('read an old-format log');
  } catch (err) {
    assert.is((err as { code: string }).code, 'BUS_LOG_CORRUPT');
    assert.match((err as Error).message, /from before records carried checksums/);
  }
  assert.equal(readFileSync(path), old, 'the old log is left as it was');
  const other = freshDir();
  writeFileSync(join(other, 'events.log'), '');
  const l = new LocalLog(join(other, 'segments'), { fsync: false, legacyFile: join(other, 'events.log') });
  assert.is(l.size, FILE_HEADER);
  await l.close();
  assert.is(readFileSync(join(other, 'segments', segmentName(FILE_HEADER, 'log'))).subarray(0, 8).toString(), 'agatelog');
});

log('reads records across read blocks, and records larger than a block', async () => {
  const l = new LocalLog(freshDir(), { fsync: false });
  const records = [Buffer.alloc(100_000, 1), Buffer.alloc(200_000, 2), Buffer.alloc(600_000, 3), Buffer.alloc(10, 4), ...Array.from({ length: 300 }, (_, i) => record(i))];
  for (const r of records) await l.append([r]);
  const all = l.read(l.start, 1000);
  assert.is(all.length, records.length);
  assert.ok(all.every((r, i) => r.bytes.equals(records[i]!)));
  const tail = l.read(all[2]!.offset, 2);
  assert.equal(tail.map((r) => r.bytes.length), [600_000, 10]);
  await l.close();
});

log('a record that is not urgent is committed with the next urgent one, or on its own soon after', async () => {
  const { dir } = fresh();
  const l = new LocalLog(dir, { fsync: true });
  const lazy = l.append([record(1)], false);
  const urgent = l.append([record(2)]);
  const [[a], [b]] = await Promise.all([lazy, urgent]);
  assert.is(b, a! + 8 + record(1).length);
  const alone = await l.append([record(3)], false);
  assert.is(alone[0], b! + 8 + record(2).length);
  assert.is(l.read(l.start, 10).length, 3);
  await l.close();
});

log('an urgent record arriving while a lazy-only commit syncs is written at once, not after that fdatasync; both complete in log order', async () => {
  const { dir, path } = fresh();
  const l = new LocalLog(dir, { fsync: true });
  // 16 MiB of lazy records: their fdatasync lasts far longer than a turn of the event loop.
  const lazyRecords = Array.from({ length: 16 }, (_, i) => Buffer.alloc(1024 * 1024, i + 1));
  const order: string[] = [];
  const lazy = l.append(lazyRecords, false).then((o) => (order.push('lazy'), o));
  const committing = l.commitWaiting(); // the lazy-only commit starts now
  await new Promise((r) => setImmediate(r));
  assert.equal(order, [], 'the lazy commit is still syncing');
  const urgentRecord = record(1);
  const urgent = l.append([urgentRecord]).then((o) => (order.push('urgent'), o));
  const at = FILE_HEADER + lazyRecords.reduce((n, r) => n + 8 + r.length, 0);
  const expected = Buffer.concat([frameHeader(urgentRecord), urgentRecord]);
  const fd = openSync(path, 'r');
  let writtenWhileLazySyncs = false;
  try {
    while (order.length === 0) {
      const got = Buffer.alloc(expected.length);
      readSync(fd, got, 0, got.length, at);
      if (got.equals(expected)) {
        writtenWhileLazySyncs = true;
        break;
      }
      await new Promise((r) => setImmediate(r));
    }
  } finally {
    closeSync(fd);
  }
  assert.ok(writtenWhileLazySyncs, 'the urgent record was written before the lazy commit ended');
  const [lazyOffsets, [u]] = await Promise.all([lazy, urgent]);
  await committing;
  assert.equal(order, ['lazy', 'urgent']);
  assert.is(u, at);
  assert.is(lazyOffsets.length, 16);
  assert.is(l.size, at + expected.length);
  await l.close();
  // What a start finds on disk: every record, in the order they were appended.
  const again = new LocalLog(dir, { fsync: true });
  const back = again.read(again.start, 20);
  assert.equal(back.map((r) => r.bytes.length), [...lazyRecords.map((r) => r.length), urgentRecord.length]);
  assert.ok(back[16]!.bytes.equals(urgentRecord));
  await again.close();
});

log('an urgent record that would fill the segment during a lazy-only commit waits for it, then starts the next segment', async () => {
  const { dir } = fresh();
  const lazyRecords = Array.from({ length: 4 }, (_, i) => Buffer.alloc(1024 * 1024, i + 1));
  const lazyBytes = lazyRecords.reduce((n, r) => n + 8 + r.length, 0);
  const l = new LocalLog(dir, { fsync: true, segmentBytes: lazyBytes + 100 });
  const order: string[] = [];
  const lazy = l.append(lazyRecords, false).then((o) => (order.push('lazy'), o));
  const committing = l.commitWaiting();
  await new Promise((r) => setImmediate(r));
  const urgentRecord = Buffer.alloc(200, 9);
  const urgent = l.append([urgentRecord]).then((o) => (order.push('urgent'), o));
  const [, [u]] = await Promise.all([lazy, urgent]);
  await committing;
  assert.equal(order, ['lazy', 'urgent']);
  assert.is(u, FILE_HEADER + lazyBytes);
  assert.equal(l.segments().map((s) => [s.base, s.end]), [[FILE_HEADER, u], [u, u! + 8 + urgentRecord.length]]);
  await l.close();
  const again = new LocalLog(dir, { fsync: true, segmentBytes: lazyBytes + 100 });
  assert.equal(again.read(again.start, 10).length, 4);
  assert.ok(again.read(u!, 10)[0]!.bytes.equals(urgentRecord));
  await again.close();
});

log('closing commits the records still waiting for a commit', async () => {
  const { dir, path } = fresh();
  const l = new LocalLog(dir, { fsync: true });
  await l.append([record(1)]);
  const waiting = l.append([record(2)], false);
  await l.close();
  assert.equal(await waiting, [FILE_HEADER + 8 + record(1).length]);
  assert.is(statSync(path).size, FILE_HEADER + 16 + record(1).length + record(2).length);
});

log('an empty record is refused: a zero length marks the end of the records', async () => {
  const l = new LocalLog(freshDir(), { fsync: false });
  try {
    await l.append([Buffer.alloc(0)]);
    assert.unreachable();
  } catch (err) {
    assert.is((err as { code: string }).code, 'BUS_WRITE_FAILED');
  }
  await l.close();
});

/** A log of small segments: `count` records appended one commit each, left open. */
async function segmented(count: number, segmentBytes = 1000): Promise<{ dir: string; l: LocalLog; offsets: number[] }> {
  const dir = freshDir();
  const l = new LocalLog(dir, { fsync: false, segmentBytes });
  const offsets: number[] = [];
  for (let i = 0; i < count; i++) offsets.push(...(await l.append([record(i)])));
  return { dir, l, offsets };
}

const files = (dir: string, ext: string) => readdirSync(dir).filter((n) => n.endsWith(ext)).sort();

log('a full segment is sealed and the next one started at the offset where it ends; reads run across them', async () => {
  const { dir, l, offsets } = await segmented(100);
  const segments = l.segments();
  assert.ok(segments.length >= 5, `${segments.length} segments`);
  for (let i = 1; i < segments.length; i++) assert.is(segments[i]!.base, segments[i - 1]!.end, 'contiguous');
  assert.equal(files(dir, '.log'), segments.map((s) => segmentName(s.base, 'log')), 'named by base offset');
  assert.equal(files(dir, '.seal'), segments.slice(0, -1).map((s) => segmentName(s.base, 'seal')), 'every segment but the last sealed');
  for (const s of segments.slice(0, -1)) {
    assert.ok(s.end - s.base <= 1000, 'no larger than asked (one commit at a time)');
    assert.is(statSync(join(dir, segmentName(s.base, 'log'))).size, FILE_HEADER + s.end - s.base, 'a sealed segment holds its records alone');
  }
  const all: number[] = [];
  const bodies: string[] = [];
  for (let at = l.start; at < l.size; ) {
    const got = l.read(at, 1000);
    all.push(...got.map((r) => r.offset));
    bodies.push(...got.map((r) => r.bytes.toString()));
    at = got[got.length - 1]!.next;
  }
  assert.equal(all, offsets);
  assert.equal(bodies, Array.from({ length: 100 }, (_, i) => record(i).toString()));
  const size = l.size;
  await l.close();
  const again = new LocalLog(dir, { fsync: false, segmentBytes: 1000 });
  assert.is(again.size, size);
  assert.equal(again.segments().map((s) => s.base), segments.map((s) => s.base));
  assert.is(again.read(offsets[57]!, 1)[0]!.bytes.toString(), record(57).toString());
  assert.ok(offsets.every((o) => again.isRecordStart(o)));
  await again.close();
});

log('retention deletes only the oldest sealed segments that are both committed past and old enough', async () => {
  const { dir, l, offsets } = await segmented(100);
  const segments = l.segments();
  const now = Date.now();
  const third = segments[2]!;
  // A position inside the third segment: the first two are committed past, the third is not.
  const committed = offsets.find((o) => o > third.base)!;
  assert.equal(l.retain(committed, 60_000, now), [], 'nothing sealed a minute ago yet');
  assert.equal(l.retain(committed, 60_000, now + 61_000).map((s) => s.base), [segments[0]!.base, segments[1]!.base]);
  assert.is(l.start, third.base);
  assert.not.ok(existsSync(join(dir, segmentName(segments[0]!.base, 'log'))));
  assert.not.ok(existsSync(join(dir, segmentName(segments[1]!.base, 'seal'))));
  assert.ok(existsSync(join(dir, segmentName(third.base, 'log'))));
  assert.throws(() => l.read(offsets[0]!, 1), (err: Error & { code: string }) => err.code === 'BUS_LOG_CORRUPT' && /before the oldest record kept/.test(err.message));
  assert.is(l.read(third.base, 1)[0]!.offset, third.base);
  // Everything committed: every sealed segment goes, the one appended to stays.
  l.retain(l.size, 0, now);
  assert.equal(l.segments().map((s) => s.base), [segments[segments.length - 1]!.base]);
  assert.is(l.start, segments[segments.length - 1]!.base);
  const [next] = await l.append([record(1000)]);
  assert.is(next, segments[segments.length - 1]!.end);
  const size = l.size;
  await l.close();
  const again = new LocalLog(dir, { fsync: false, segmentBytes: 1000 });
  assert.is(again.start, segments[segments.length - 1]!.base);
  assert.is(again.size, size);
  await again.close();
});

log('a torn record at the end of the last segment is cut at open with a log line; sealed segments are untouched', async () => {
  const { dir, l } = await segmented(40);
  const last = l.segments().pop()!;
  const end = l.size;
  await l.close();
  const torn = Buffer.alloc(300, 0x61);
  const frame = Buffer.concat([frameHeader(torn), torn.subarray(0, 150)]);
  const file = join(dir, segmentName(last.base, 'log'));
  writeAt(file, FILE_HEADER + end - last.base, frame);
  const { logger, seen } = warnings();
  const again = new LocalLog(dir, { fsync: false, segmentBytes: 1000, logger });
  assert.is(again.size, end);
  assert.is(seen.length, 1);
  assert.is(seen[0]!.msg, 'cut a torn or damaged record from the end of the event log');
  assert.is(seen[0]!.offset, end);
  assert.is(seen[0]!.file, file);
  assert.is(statSync(file).size, FILE_HEADER + end - last.base);
  await again.close();
});

log('a start reads no sealed segment\'s records: a byte flipped inside one is found only when it is read', async () => {
  const { dir, l, offsets } = await segmented(100);
  const first = l.segments()[0]!;
  await l.close();
  // Inside the second record's body: the file's size, which the seal vouches for, is unchanged.
  writeAt(join(dir, segmentName(first.base, 'log')), FILE_HEADER + offsets[1]! - first.base + 9, Buffer.from('!'));
  const again = new LocalLog(dir, { fsync: false, segmentBytes: 1000 });
  assert.is(again.read(offsets[0]!, 10).length, 1, 'the records before it');
  assert.throws(() => again.read(offsets[1]!, 1), (err: Error & { code: string }) => err.code === 'BUS_LOG_CORRUPT' && err.message.includes(`offset ${offsets[1]}`));
  await again.close();
});

log('opening takes as long whatever the sealed segments hold: only the last one is scanned', async () => {
  const opening = async (records: number) => {
    const dir = freshDir();
    const l = new LocalLog(dir, { fsync: false, segmentBytes: 256 * 1024 });
    const batch = Array.from({ length: 500 }, (_, i) => record(i));
    for (let n = 0; n < records; n += batch.length) await l.append(batch);
    // The same last segment for both: one more roll, then a few records.
    await l.append([Buffer.alloc(300 * 1024, 1)]);
    await l.append([record(1)]);
    const segments = l.segments().length;
    await l.close();
    let best = Infinity;
    for (let i = 0; i < 5; i++) {
      const started = performance.now();
      const again = new LocalLog(dir, { fsync: false, segmentBytes: 256 * 1024 });
      best = Math.min(best, performance.now() - started);
      await again.close();
    }
    return { best, segments };
  };
  const small = await opening(5_000);
  const large = await opening(200_000);
  assert.ok(large.segments > small.segments * 10, `${large.segments} and ${small.segments} segments`);
  // A scan of the large log's records takes ~100 ms here; opening it stays within a few ms.
  assert.ok(large.best < small.best + 20, `opened in ${large.best.toFixed(1)} ms with ${large.segments} segments, ${small.best.toFixed(1)} ms with ${small.segments}`);
});

log('a sealed segment that changed size after it was sealed is refused; one whose seal is gone is scanned and sealed again', async () => {
  const { dir, l } = await segmented(60);
  const [first, second] = l.segments();
  await l.close();
  unlinkSync(join(dir, segmentName(second!.base, 'seal')));
  const { logger, seen } = warnings();
  const resealed = new LocalLog(dir, { fsync: false, segmentBytes: 1000, logger });
  assert.is(seen[0]!.msg, 'an event log segment had no valid seal: it was scanned and sealed again');
  assert.ok(existsSync(join(dir, segmentName(second!.base, 'seal'))));
  await resealed.close();
  truncateSync(join(dir, segmentName(first!.base, 'log')), FILE_HEADER + first!.end - first!.base - 1);
  try {
    new LocalLog(dir, { fsync: false, segmentBytes: 1000 });
    assert.unreachable('opened a log whose sealed segment lost a byte');
  } catch (err) {
    assert.is((err as { code: string }).code, 'BUS_LOG_CORRUPT');
    assert.match((err as Error).message, /changed after it was sealed/);
  }
});

log('a roll cut short after the seal (no next segment yet) reopens the sealed segment for appends', async () => {
  const { dir, l } = await segmented(30);
  const last = l.segments().pop()!;
  const size = l.size;
  await l.close();
  writeFileSync(join(dir, segmentName(last.base, 'seal')), encodeSeal({ base: last.base, end: last.end, records: 1, sealedAt: Date.now() }));
  const again = new LocalLog(dir, { fsync: false, segmentBytes: 1000 });
  assert.not.ok(existsSync(join(dir, segmentName(last.base, 'seal'))));
  assert.is(again.size, size);
  const [at] = await again.append([record(1)]);
  assert.is(at, size);
  await again.close();
});

log('a log from before segments (one events.log) becomes the first segment, its offsets unchanged', async () => {
  // Written the way an older Agate wrote it: one file, header then frames.
  const { dir: old, path: oldFile } = fresh();
  const l = new LocalLog(old, { fsync: false });
  const offsets = (await Promise.all(Array.from({ length: 30 }, (_, i) => l.append([record(i)])))).flat();
  await l.close();
  const dir = freshDir();
  const legacy = join(dir, 'events.log');
  cpSync(oldFile, legacy);
  const size = statSync(legacy).size;
  const adopted = new LocalLog(join(dir, 'segments'), { fsync: false, legacyFile: legacy, segmentBytes: 1000 });
  assert.not.ok(existsSync(legacy));
  assert.is(adopted.start, FILE_HEADER);
  assert.is(adopted.size, size, 'offsets are file positions, as before');
  assert.equal(adopted.read(offsets[0]!, 100).map((r) => r.offset), offsets);
  // Larger than a segment: the next append seals it and starts the second one.
  const [next] = await adopted.append([record(99)]);
  assert.is(next, size);
  assert.is(adopted.segments().length, 2);
  await adopted.close();
  const again = new LocalLog(join(dir, 'segments'), { fsync: false, legacyFile: legacy, segmentBytes: 1000 });
  const [last] = again.read(offsets[29]!, 2); // a read stays in its segment
  assert.is(last!.next, next);
  assert.is(again.read(last!.next, 2)[0]!.bytes.toString(), record(99).toString());
  await again.close();
  // An older Agate that started a new events.log beside the segments: refused, not guessed at.
  cpSync(oldFile, legacy);
  try {
    new LocalLog(join(dir, 'segments'), { fsync: false, legacyFile: legacy });
    assert.unreachable('opened a log with both an events.log and segments');
  } catch (err) {
    assert.is((err as { code: string }).code, 'BUS_LOG_CORRUPT');
    assert.match((err as Error).message, /are both there/);
  }
});

log.after(() => {
  for (const d of dirs) rmSync(d, { recursive: true, force: true });
});

log.run();

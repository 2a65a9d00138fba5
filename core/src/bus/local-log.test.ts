import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import { closeSync, copyFileSync, mkdtempSync, openSync, readFileSync, rmSync, statSync, writeFileSync, writeSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { Logger } from '../log.js';
import { LocalLog } from './local-log.js';
import { FILE_HEADER, frameHeader, recordsIn } from './log-frame.js';

const dirs: string[] = [];
const freshPath = () => {
  const d = mkdtempSync(join(tmpdir(), 'agate-log-'));
  dirs.push(d);
  return join(d, 'events.log');
};
const record = (i: number) => Buffer.from(`record ${i} `.repeat(1 + (i % 7)));
/** Waits until the zeros written ahead are on disk (they are written off the event loop). */
const settled = async (path: string, records: number) => {
  for (let i = 0; i < 200 && statSync(path).size <= records; i++) await new Promise((r) => setTimeout(r, 10));
};

const log = suite('LocalLog');

log('runs ahead of its records with zeros while open, and holds only the records once closed', async () => {
  const path = freshPath();
  const l = new LocalLog(path, { fsync: true });
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
  const path = freshPath();
  const l = new LocalLog(path, { fsync: true });
  for (let i = 0; i < 20; i++) await l.append([record(i)]);
  await settled(path, l.size);
  const crashed = path + '.crashed';
  copyFileSync(path, crashed); // the file as a crash would leave it: records, then zeros
  const size = l.size;
  await l.close();
  assert.ok(statSync(crashed).size > size);
  const again = new LocalLog(crashed, { fsync: true });
  assert.is(again.size, size);
  assert.is(statSync(crashed).size, size);
  const [at] = await again.append([record(99)]);
  assert.is(at, size);
  const all = again.read(again.start, 100);
  assert.is(all.length, 21);
  assert.is(all[20]!.bytes.toString(), record(99).toString());
  await again.close();
  // The bytes on disk are the header and whole, checked frames only.
  const bytes = readFileSync(crashed);
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
async function threeRecords(): Promise<{ path: string; offsets: number[] }> {
  const path = freshPath();
  const l = new LocalLog(path, { fsync: true });
  const offsets = (await l.append([record(1), record(2), record(3)]));
  await l.close();
  return { path, offsets };
}

function writeAt(path: string, at: number, bytes: Buffer): void {
  const fd = openSync(path, 'r+');
  writeSync(fd, bytes, 0, bytes.length, at);
  closeSync(fd);
}

log('a torn record inside the zeros written ahead is cut at open, with a log line saying what was cut', async () => {
  const path = freshPath();
  const l = new LocalLog(path, { fsync: true });
  for (let i = 0; i < 5; i++) await l.append([record(i)]);
  await settled(path, l.size);
  const crashed = path + '.crashed';
  copyFileSync(path, crashed); // records, then the zeros written ahead
  const end = l.size;
  await l.close();
  // A crash while writing the next record: its frame header made it, half its bytes did not.
  const torn = Buffer.alloc(300, 0x61);
  const frame = Buffer.concat([frameHeader(torn), torn.subarray(0, 150)]);
  writeAt(crashed, end, frame);
  const { logger, seen } = warnings();
  const again = new LocalLog(crashed, { fsync: true, logger });
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
  const cut = new LocalLog(tail.path, { fsync: true, logger });
  assert.is(cut.size, tail.offsets[2]);
  assert.is(seen[0]!.offset, tail.offsets[2]);
  await cut.close();

  const middle = await threeRecords();
  writeAt(middle.path, middle.offsets[1]! + 9, Buffer.from('!'));
  try {
    new LocalLog(middle.path, { fsync: true });
    assert.unreachable('opened a log with a damaged acknowledged record');
  } catch (err) {
    assert.is((err as { code: string }).code, 'BUS_LOG_CORRUPT');
    assert.match((err as Error).message, new RegExp(`the record at offset ${middle.offsets[1]} is damaged \\(a record that fails its CRC-32C\\) and whole records follow it`));
  }
});

log('a record damaged after open is never handed over: reading it fails, naming its offset', async () => {
  const { path, offsets } = await threeRecords();
  const l = new LocalLog(path, { fsync: true });
  writeAt(path, offsets[1]! + 9, Buffer.from('!'));
  assert.equal(l.read(offsets[0]!, 3).map((r) => r.offset), [offsets[0]], 'the records before it, and not it');
  assert.throws(() => l.read(offsets[1]!, 3), (err: Error & { code: string }) => err.code === 'BUS_LOG_CORRUPT' && err.message.includes(`offset ${offsets[1]}`));
  assert.ok(l.isRecordStart(offsets[0]!));
  assert.not.ok(l.isRecordStart(offsets[0]! + 1));
  await l.close();
});

log('a log from before record checksums is refused by name; an empty file gets a header', async () => {
  const path = freshPath();
  const old = Buffer.alloc(4 + 5);
  old.writeUInt32BE(5);
  old.write('hello', 4);
  writeFileSync(path, old);
  try {
    new LocalLog(path, { fsync: false });
    assert.unreachable('read an old-format log');
  } catch (err) {
    assert.is((err as { code: string }).code, 'BUS_LOG_CORRUPT');
    assert.match((err as Error).message, /from before records carried checksums/);
  }
  assert.equal(readFileSync(path), old, 'the old log is left as it was');
  const fresh = freshPath();
  writeFileSync(fresh, '');
  const l = new LocalLog(fresh, { fsync: false });
  assert.is(l.size, FILE_HEADER);
  await l.close();
  assert.is(readFileSync(fresh).subarray(0, 8).toString(), 'agatelog');
});

log('reads records across read blocks, and records larger than a block', async () => {
  const l = new LocalLog(freshPath(), { fsync: false });
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
  const path = freshPath();
  const l = new LocalLog(path, { fsync: true });
  const lazy = l.append([record(1)], false);
  const urgent = l.append([record(2)]);
  const [[a], [b]] = await Promise.all([lazy, urgent]);
  assert.is(b, a! + 8 + record(1).length);
  const alone = await l.append([record(3)], false);
  assert.is(alone[0], b! + 8 + record(2).length);
  assert.is(l.read(l.start, 10).length, 3);
  await l.close();
});

log('closing commits the records still waiting for a commit', async () => {
  const path = freshPath();
  const l = new LocalLog(path, { fsync: true });
  await l.append([record(1)]);
  const waiting = l.append([record(2)], false);
  await l.close();
  assert.equal(await waiting, [FILE_HEADER + 8 + record(1).length]);
  assert.is(statSync(path).size, FILE_HEADER + 16 + record(1).length + record(2).length);
});

log('an empty record is refused: a zero length marks the end of the records', async () => {
  const l = new LocalLog(freshPath(), { fsync: false });
  try {
    await l.append([Buffer.alloc(0)]);
    assert.unreachable();
  } catch (err) {
    assert.is((err as { code: string }).code, 'BUS_WRITE_FAILED');
  }
  await l.close();
});

log.after(() => {
  for (const d of dirs) rmSync(d, { recursive: true, force: true });
});

log.run();

import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import { copyFileSync, mkdtempSync, readFileSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { LocalLog } from './local-log.js';

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
  const read = l.read(0, 100);
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
  const all = again.read(0, 100);
  assert.is(all.length, 21);
  assert.is(all[20]!.bytes.toString(), record(99).toString());
  await again.close();
  // The bytes on disk are whole frames only.
  const bytes = readFileSync(crashed);
  let pos = 0;
  while (pos < bytes.length) pos += 4 + bytes.readUInt32BE(pos);
  assert.is(pos, bytes.length);
});

log('reads records across read blocks, and records larger than a block', async () => {
  const l = new LocalLog(freshPath(), { fsync: false });
  const records = [Buffer.alloc(100_000, 1), Buffer.alloc(200_000, 2), Buffer.alloc(600_000, 3), Buffer.alloc(10, 4), ...Array.from({ length: 300 }, (_, i) => record(i))];
  for (const r of records) await l.append([r]);
  const all = l.read(0, 1000);
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
  assert.is(b, a! + 4 + record(1).length);
  const alone = await l.append([record(3)], false);
  assert.is(alone[0], b! + 4 + record(2).length);
  assert.is(l.read(0, 10).length, 3);
  await l.close();
});

log('closing commits the records still waiting for a commit', async () => {
  const path = freshPath();
  const l = new LocalLog(path, { fsync: true });
  await l.append([record(1)]);
  const waiting = l.append([record(2)], false);
  await l.close();
  assert.equal(await waiting, [4 + record(1).length]);
  assert.is(statSync(path).size, 8 + record(1).length + record(2).length);
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

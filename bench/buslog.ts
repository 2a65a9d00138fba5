import { randomUUID } from 'node:crypto';
import { mkdtempSync, readdirSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { LocalBus } from '../core/src/bus/local-bus.js';
import { DEFAULT_SEGMENT_BYTES, LocalLog } from '../core/src/bus/local-log.js';
import { silentLogger } from '../core/src/log.js';
import { EventCodec } from '../schemas/src/codec.js';
import type { AgateEvent } from '../schemas/src/events.js';
import { SAMPLES } from '../schemas/src/samples.js';

/*
 * The embedded bus log at rest: bytes per statement (its Command, Verdict and Response, as the
 * schema's sample events of a PostgreSQL statement), the log's size on disk while a consumer
 * group keeps up and retention deletes what it read, and the time to open a log of N records
 * held in one file (every record scanned at start, as before segments) against the same
 * records in segments (only the last one scanned).
 *   npm run bench -- buslog [--records N] [--statements N] [--segment-bytes N]
 */

const MiB = 1024 * 1024;

export async function run(args: string[]): Promise<void> {
  const { values } = parseArgs({ args, options: { records: { type: 'string', default: '1000000' }, statements: { type: 'string', default: '100000' }, 'segment-bytes': { type: 'string', default: String(DEFAULT_SEGMENT_BYTES) } } });
  const records = Number(values.records);
  const statements = Number(values.statements);
  const segmentBytes = Number(values['segment-bytes']);
  const root = mkdtempSync(join(tmpdir(), 'agate-bench-buslog-'));
  const codec = new EventCodec();
  try {
    const perStatement = statementBytes(codec);
    console.log(`bytes per statement at rest: ${perStatement.total} (Command ${perStatement.Command}, Verdict ${perStatement.Verdict}, Response ${perStatement.Response}; each with its 8-byte frame)`);
    console.log(`  at 500 statements/s: ${(perStatement.total * 500 * 3600 / MiB).toFixed(0)} MiB per hour of retention`);
    await retention(join(root, 'retention'), codec, statements, segmentBytes);
    await startup(root, codec, records, segmentBytes);
  } finally {
    rmSync(root, { recursive: true, force: true });
  }
}

/** One statement's events, encoded: what the log holds for it, frames included. */
function statementBytes(codec: EventCodec): { total: number; Command: number; Verdict: number; Response: number } {
  const [c, v, r] = statementEvents().map((e) => codec.encode(e).length + 8);
  return { total: c! + v! + r!, Command: c!, Verdict: v!, Response: r! };
}

function statementEvents(): AgateEvent[] {
  const command = { ...SAMPLES.Command, event_id: randomUUID() };
  return [command, { ...SAMPLES.Verdict, event_id: randomUUID(), command_id: command.event_id, decision: 'allow', rule_id: null, reason: 'default allow' }, { ...SAMPLES.Response, event_id: randomUUID(), command_id: command.event_id }];
}

const diskBytes = (dir: string) => readdirSync(dir).reduce((n, f) => n + statSync(join(dir, f)).size, 0);

/**
 * `statements` statements through a LocalBus with a consumer group that keeps up, retention 0
 * (a sealed segment goes as soon as the group committed past it) checked every 100 ms: the
 * largest the log got on disk, and where it ended, against what was written.
 */
async function retention(dir: string, codec: EventCodec, statements: number, segmentBytes: number): Promise<void> {
  const bus = new LocalBus({ dir, fsync: false, logger: silentLogger, codec, segmentBytes, retentionMs: 0, retentionCheckMs: 100 });
  let consumed = 0;
  const sub = await bus.subscribe({ group: 'ledger', types: ['Command', 'Verdict', 'Response'], handler: async (batch) => void (consumed += batch.length) });
  const segments = join(dir, 'segments');
  let largest = 0;
  const started = performance.now();
  for (let i = 0; i < statements; i += 100) {
    await Promise.all(Array.from({ length: 100 }, () => statementEvents()).flat().map((e) => bus.publish(e)));
    if (i % 10_000 === 0) largest = Math.max(largest, diskBytes(segments));
  }
  while (consumed < statements * 3) await new Promise((r) => setTimeout(r, 20));
  await sub.close();
  bus.retain();
  largest = Math.max(largest, diskBytes(segments));
  const written = bus.segments().at(-1)!.end;
  const kept = diskBytes(segments);
  console.log(`retention (segments of ${(segmentBytes / MiB).toFixed(0)} MiB, retention_ms 0, one group keeping up): ${statements} statements in ${((performance.now() - started) / 1000).toFixed(1)} s, ${(written / MiB).toFixed(1)} MiB written; on disk at most ${(largest / MiB).toFixed(1)} MiB, at the end ${(kept / MiB).toFixed(1)} MiB in ${bus.segments().length} segment(s)`);
  await bus.close();
}

/** A log of `records` records (the sample statement events in turn), written with segments of `segmentBytes`. */
async function writeLog(dir: string, codec: EventCodec, records: number, segmentBytes: number): Promise<number> {
  const log = new LocalLog(dir, { fsync: false, segmentBytes });
  const batch = Array.from({ length: 334 }, () => statementEvents()).flat().map((e) => codec.encode(e));
  for (let n = 0; n < records; n += batch.length) await log.append(batch.slice(0, Math.min(batch.length, records - n)));
  const size = log.size;
  await log.close();
  return size;
}

/** Opening the log, best of five: the same records in one segment, then in segments of `segmentBytes`. */
async function startup(root: string, codec: EventCodec, records: number, segmentBytes: number): Promise<void> {
  for (const [label, bytes] of [['one file (as before segments: every record scanned)', Number.MAX_SAFE_INTEGER], [`segments of ${(segmentBytes / MiB).toFixed(0)} MiB (the last one scanned)`, segmentBytes]] as const) {
    const dir = join(root, `startup-${bytes}`);
    const size = await writeLog(dir, codec, records, bytes);
    let best = Infinity;
    let segments = 0;
    for (let i = 0; i < 5; i++) {
      const t = performance.now();
      const log = new LocalLog(dir, { fsync: false, segmentBytes: bytes });
      best = Math.min(best, performance.now() - t);
      segments = log.segments().length;
      await log.close();
    }
    console.log(`start-up, ${records} records (${(size / MiB).toFixed(0)} MiB), ${label}: ${best.toFixed(1)} ms (${segments} segment(s))`);
    rmSync(dir, { recursive: true, force: true });
  }
}

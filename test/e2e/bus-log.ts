import { existsSync, readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import type { EventCodec } from '../../schemas/src/codec.js';
import type { AgateEvent } from '../../schemas/src/events.js';
import { FILE_HEADER, recordsIn, segmentBase } from '../../core/src/bus/log-frame.js';

/**
 * The events of a running Agate's local log (bytes from `busLogBytes`), read while it writes: the
 * log is written record after record, so only the last one can be half there (its frame
 * written, its bytes not yet); reading stops before it (its checksum does not hold yet), and a
 * later read finds it whole.
 */
export function logEvents(bytes: Buffer, codec: EventCodec): AgateEvent[] {
  const out: AgateEvent[] = [];
  for (const record of recordsIn(bytes)) {
    try {
      out.push(codec.decode(record));
    } catch {
      break; // the record being written
    }
  }
  return out;
}

/** The segment files of the local log under `busDir` (`data_dir/bus`), oldest first. */
export function busSegments(busDir: string): string[] {
  const dir = join(busDir, 'segments');
  if (!existsSync(dir)) return [];
  return readdirSync(dir).filter((n) => segmentBase(n, 'log') !== undefined).sort().map((n) => join(dir, n));
}

/**
 * The local log under `busDir` as one log file: the first segment's header, then every segment's
 * records (sealed segments hold their records alone; the last one, read last, may end in zeros).
 * Empty when there is no log yet.
 */
export function busLogBytes(busDir: string): Buffer {
  const files = busSegments(busDir);
  return Buffer.concat(files.map((f, i) => (i === 0 ? readFileSync(f) : readFileSync(f).subarray(FILE_HEADER))));
}

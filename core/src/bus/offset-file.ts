import { readFileSync } from 'node:fs';
import { replaceFileSynced } from '../durable-file.js';
import { AgateError, ErrorCode } from '../errors.js';

/*
 * A consumer group's committed position in the embedded log: one decimal number in a file of
 * its own, replaced atomically and durably (durable-file.ts). An unreadable, empty or corrupt
 * file, or a position past the end of the log, is refused with the file named: guessing (say,
 * reading from 0) would silently redeliver or skip the whole log.
 */

const DECIMAL = /^(0|[1-9][0-9]*)$/;

const invalid = (file: string, group: string, why: string) => new AgateError(
  ErrorCode.BUS_OFFSET_INVALID,
  `${file}: the committed position of consumer group "${group}" ${why}. Nothing is guessed; if the file was lost or damaged, delete it and the group reads the log from its start (the ledger recognises what it holds already)`,
);

/** What the offset is checked against: the log's records. */
interface OffsetBounds {
  /** Where the first record starts. */
  start: number;
  /** The end of the records. */
  size: number;
  isRecordStart(position: number): boolean;
}

/**
 * The committed position in `file` (the log's start when there is none yet), checked against
 * the log: inside it, and where a whole record starts.
 */
export function readOffsetFile(file: string, group: string, log: OffsetBounds): number {
  let text: string;
  try {
    text = readFileSync(file, 'utf8');
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return log.start;
    throw invalid(file, group, `cannot be read (${(err as Error).message})`);
  }
  if (!DECIMAL.test(text) || !Number.isSafeInteger(Number(text))) {
    throw invalid(file, group, text.length === 0 ? 'is empty' : `is not a decimal number (${JSON.stringify(text.slice(0, 40))})`);
  }
  const position = Number(text);
  if (position > log.size) throw invalid(file, group, `is ${position}, past the end of the log (${log.size} bytes): the log was cut or replaced after it was committed`);
  if (position === 0) return log.start; // committed before the log had a header: its start
  if (position < log.start) throw invalid(file, group, `is ${position}, before the oldest record the log keeps (${log.start}): the segments holding what follows it were deleted`);
  if (!log.isRecordStart(position)) throw invalid(file, group, `is ${position}, where no record of the log starts`);
  return position;
}

/**
 * The committed position in `file` as it stands, unchecked (retention only needs a lower
 * bound): undefined when there is none, or it cannot be read as a number.
 */
export function peekOffsetFile(file: string): number | undefined {
  try {
    const text = readFileSync(file, 'utf8');
    return DECIMAL.test(text) ? Number(text) : undefined;
  } catch {
    return undefined;
  }
}

/** Commits `position`: the old file or the new one survives a crash, never an empty one. */
export function writeOffsetFile(file: string, position: number): Promise<void> {
  return replaceFileSynced(file, String(position));
}

import { setImmediate as nextTurn } from 'node:timers/promises';

/**
 * Lines parsed between two turns of the event loop. A ledger row of a few hundred bytes parses in
 * about 1-2 µs, so a turn holds the loop well under a millisecond.
 */
export const LINES_PER_TURN = 256;

/**
 * Parses newline-delimited JSON (the engine's JSONEachRow: one value per line), yielding to the
 * event loop every LINES_PER_TURN lines. In `agate start` the embedded store's results are parsed
 * on the loop every proxy session runs on: a 5,000-row page of the facts index parsed in one go
 * held every statement behind it for about 10 ms (issue 21, the 1-client p99).
 */
export async function parseJsonLines<T>(text: string): Promise<T[]> {
  const out: T[] = [];
  let at = 0;
  let inTurn = 0;
  while (at < text.length) {
    let end = text.indexOf('\n', at);
    if (end < 0) end = text.length;
    // Blank lines carry no value (the engine ends its output with a newline).
    const line = text.slice(at, end);
    if (line.trim() !== '') {
      out.push(JSON.parse(line) as T);
      if (++inTurn === LINES_PER_TURN) {
        inTurn = 0;
        await nextTurn();
      }
    }
    at = end + 1;
  }
  return out;
}

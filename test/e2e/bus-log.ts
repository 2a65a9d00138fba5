import type { EventCodec } from '../../schemas/src/codec.js';
import type { AgateEvent } from '../../schemas/src/events.js';

/**
 * The events of a running Agate's local log (`.agate/bus/events.log`), read while it writes: the
 * log is written record after record, so only the last one can be half there (its length
 * written, its bytes not yet); reading stops before it, and a later read finds it whole.
 */
export function logEvents(bytes: Buffer, codec: EventCodec): AgateEvent[] {
  const out: AgateEvent[] = [];
  for (let pos = 0; pos + 4 <= bytes.length; ) {
    const len = bytes.readUInt32BE(pos);
    // Length 0: the zeros the log writes ahead of its records (core/src/bus/local-log.ts).
    if (len === 0 || pos + 4 + len > bytes.length) break;
    let event: AgateEvent;
    try {
      event = codec.decode(bytes.subarray(pos + 4, pos + 4 + len));
    } catch {
      break; // the record being written
    }
    out.push(event);
    pos += 4 + len;
  }
  return out;
}

import type { EventCodec } from '../../schemas/src/codec.js';
import type { AgateEvent } from '../../schemas/src/events.js';
import { recordsIn } from '../../core/src/bus/log-frame.js';

/**
 * The events of a running Agate's local log (`.agate/bus/events.log`), read while it writes: the
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

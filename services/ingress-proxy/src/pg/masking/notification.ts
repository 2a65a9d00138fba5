import { BufferReader } from '../buffer-reader.js';
import { BufferWriter } from '../buffer-writer.js';
import { MaskingError } from './data-row.js';
import type { Masker } from '../../masking/masker.js';

/**
 * Masks the payload of one NotificationResponse ('A') frame. A notification can come from any
 * session or trigger (`pg_notify('c', NEW.token)`), so no column rule reaches it: its channel and
 * payload go through the masker's detectors. Returns the frame itself when nothing was masked; a
 * frame that cannot be read throws {@link MaskingError} (withheld, fail closed).
 */
export function maskNotification(frame: Buffer, masker: Masker): { frame: Buffer; masked: number } {
  // 'A', Int32 length, Int32 sending process id, String channel, String payload.
  let pid: number;
  let channel: string;
  let payload: string;
  try {
    const r = new BufferReader(frame, 5);
    pid = r.int32();
    channel = r.cstring();
    payload = r.cstring();
  } catch (cause) {
    throw new MaskingError('a notification from the target could not be read for masking', { cause });
  }
  const c = masker.maskText(channel);
  const p = masker.maskText(payload);
  const masked = c.count + p.count;
  if (masked === 0) return { frame, masked };
  return { frame: new BufferWriter().addInt32(pid).addCString(c.text).addCString(p.text).flush(frame[0]!), masked };
}

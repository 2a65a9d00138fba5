import { BufferReader } from '../buffer-reader.js';
import { BufferWriter } from '../buffer-writer.js';
import { MaskingError } from './data-row.js';
import type { Masker } from '../../masking/masker.js';

/** The fields of one NotificationResponse ('A') frame. */
interface NotificationFields {
  pid: number;
  channel: string;
  payload: string;
}

/** Reads a NotificationResponse frame ('A', Int32 length, Int32 sender pid, String channel, String payload); throws when it cannot. */
export function readNotification(frame: Buffer): NotificationFields {
  const r = new BufferReader(frame, 5);
  const pid = r.int32();
  const channel = r.cstring();
  const payload = r.cstring();
  return { pid, channel, payload };
}

/**
 * Masks the payload of one NotificationResponse ('A') frame. A notification can come from any
 * session or trigger (`pg_notify('c', NEW.token)`), so no column rule reaches it: its channel and
 * payload go through the masker's detectors. Returns the frame itself when nothing was masked; a
 * frame that cannot be read throws {@link MaskingError} (withheld, fail closed).
 */
export function maskNotification(frame: Buffer, masker: Masker): { frame: Buffer; masked: number } {
  let n: NotificationFields;
  try {
    n = readNotification(frame);
  } catch (cause) {
    throw new MaskingError('a notification from the target could not be read for masking', { cause });
  }
  const c = masker.maskText(n.channel);
  const p = masker.maskText(n.payload);
  const masked = c.count + p.count;
  if (masked === 0) return { frame, masked };
  return { frame: new BufferWriter().addInt32(n.pid).addCString(c.text).addCString(p.text).flush(frame[0]!), masked };
}

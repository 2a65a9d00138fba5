import { createHash, randomUUID } from 'node:crypto';
import { ErrorCode, ProtocolError } from '../../../../core/src/errors.js';
import { nowMicros, type Notification } from '../../../../schemas/src/events.js';
import { Masker } from '../masking/masker.js';
import { readNotification } from './masking/notification.js';
import type { RecordingOptions } from './result-recorder.js';

/**
 * The Notification event for one NotificationResponse the client was sent. `raw` is the frame as
 * the target sent it and `delivered` as forwarded (masked with `client`, which masked `masked`
 * values). Channel and payload are recorded from `raw` masked with the audit set and the
 * client's, like every recorded value; size and digest describe the payload as delivered, so a
 * client's copy can be checked against the record. A frame that cannot be read throws
 * ProtocolError: nothing reaches the client unrecorded.
 */
export function notificationEvent(sessionId: string, raw: Buffer, delivered: Buffer, client: Masker | undefined, masked: number, recording: RecordingOptions): Notification {
  let sent;
  let payload: Buffer;
  try {
    sent = readNotification(raw);
    payload = payloadOf(delivered);
  } catch (cause) {
    throw new ProtocolError('the target sent a notification that could not be read', ErrorCode.PROTOCOL_VIOLATION, { cause });
  }
  const audit = Masker.union(recording.audit, client);
  const text = audit.maskText(sent.payload).text;
  return {
    type: 'Notification', event_id: randomUUID(), time: nowMicros(), session_id: sessionId, sender_pid: sent.pid,
    channel: audit.maskText(sent.channel).text,
    payload: text.length <= recording.valueChars ? text : `${text.slice(0, recording.valueChars)}…`,
    payload_bytes: payload.length, digest: `sha256:${createHash('sha256').update(payload).digest('hex')}`, masked_values: masked,
  };
}

/** The payload's bytes exactly as a NotificationResponse frame carries them (pid, channel NUL, payload NUL). */
function payloadOf(frame: Buffer): Buffer {
  const channelEnd = frame.indexOf(0, 9);
  const payloadEnd = channelEnd < 0 ? -1 : frame.indexOf(0, channelEnd + 1);
  if (frame.length < 10 || payloadEnd < 0) throw new Error('a NotificationResponse without its channel and payload');
  return frame.subarray(channelEnd + 1, payloadEnd);
}

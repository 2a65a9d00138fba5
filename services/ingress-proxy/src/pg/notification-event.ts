import { createHash, randomUUID } from 'node:crypto';
import { ErrorCode, ProtocolError } from '../../../../core/src/errors.js';
import { nowMicros, type Notification } from '../../../../schemas/src/events.js';
import { Masker } from '../masking/masker.js';
import { BufferReader } from './buffer-reader.js';
import { maskErrorFields } from './masking/error-fields.js';
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

/** A Notification's sender_pid for a notice: no backend process has pid 0. */
export const NOTICE_SENDER_PID = 0;

/**
 * The record of one NoticeResponse the client was sent (a NOTICE, WARNING, INFO … : `RAISE
 * NOTICE` in a DO block can carry data, a WARNING can say a GRANT granted nothing). The Avro
 * schemas are frozen, so a notice is a Notification with sender_pid 0 (no backend's pid):
 * `channel` is its severity and SQLSTATE (`WARNING 01007`), `payload` its message with its DETAIL
 * and HINT on lines of their own, masked as an error's fields are with the audit set and the
 * client's, and cut to record_value_chars; size and digest describe the message as delivered.
 * A frame that cannot be read throws ProtocolError: nothing reaches the client unrecorded.
 */
export function noticeEvent(sessionId: string, raw: Buffer, delivered: Buffer, client: Masker | undefined, masked: number, recording: RecordingOptions): Notification {
  let recorded: Map<number, string>;
  let message: Buffer;
  try {
    recorded = noticeFields(maskErrorFields(raw, Masker.union(recording.audit, client)).frame);
    message = Buffer.from(noticeFields(delivered).get(MESSAGE) ?? '');
  } catch (cause) {
    throw new ProtocolError('the target sent a notice that could not be read', ErrorCode.PROTOCOL_VIOLATION, { cause });
  }
  const text = [recorded.get(MESSAGE) ?? '', ...[DETAIL, HINT].filter((f) => recorded.has(f)).map((f) => `${f === DETAIL ? 'DETAIL' : 'HINT'}: ${recorded.get(f)}`)].join('\n');
  return {
    type: 'Notification', event_id: randomUUID(), time: nowMicros(), session_id: sessionId, sender_pid: NOTICE_SENDER_PID,
    channel: `${recorded.get(SEVERITY) ?? recorded.get(LOCALIZED_SEVERITY) ?? ''} ${recorded.get(SQLSTATE) ?? ''}`.trim(),
    payload: text.length <= recording.valueChars ? text : `${text.slice(0, recording.valueChars)}…`,
    payload_bytes: message.length, digest: `sha256:${createHash('sha256').update(message).digest('hex')}`, masked_values: masked,
  };
}

const SEVERITY = 0x56; // V: never localized
const LOCALIZED_SEVERITY = 0x53; // S
const SQLSTATE = 0x43; // C
const MESSAGE = 0x4d; // M
const DETAIL = 0x44; // D
const HINT = 0x48; // H

// 'N' | Int32 len | { Byte1 field type, String value } … | Byte1 0
function noticeFields(frame: Buffer): Map<number, string> {
  const r = new BufferReader(frame, 5);
  const out = new Map<number, string>();
  for (let type = r.byte(); type !== 0; type = r.byte()) out.set(type, r.cstring());
  return out;
}

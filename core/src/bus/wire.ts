import type { AgateEvent, EventType } from '../../../schemas/src/events.js';

/**
 * How events are framed on a broker. The embedded default and a broker without a registry use
 * Avro single-object encoding (self-describing by schema fingerprint); with a schema registry,
 * the Confluent wire format (magic 0, schema id, Avro body).
 */
export interface WireCodec {
  /** Prepares whatever the codec needs (e.g. registers subjects); idempotent. */
  init(): Promise<void>;
  encode(event: AgateEvent): Buffer;
  /**
   * One message back to its event: synchronous when the codec has what it needs at hand (a
   * reader of every record costs a promise and a turn per record otherwise), a promise only
   * when it must first fetch something (a schema another writer registered).
   */
  decode(bytes: Buffer): AgateEvent | Promise<AgateEvent>;
  /**
   * Whether a message's bytes are the EventCodec's single-object encoding itself, the bytes the
   * ledger stores as a record's payload (StreamInfo.encoded): a consumer can then hand them on
   * instead of encoding the event again.
   */
  readonly carriesCodecEncoding: boolean;
}

/** Record-name subjects per topic, as the Confluent TopicRecordNameStrategy names them. */
export function subjectFor(topic: string, eventType: EventType): string {
  return `${topic}-agate.event.${eventType}`;
}

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
  decode(bytes: Buffer): Promise<AgateEvent>;
  /**
   * The EventCodec (single-object) encoding of the event `bytes` carry, when it can be had
   * without encoding the event again; undefined otherwise. The ledger stores it as the record's
   * payload: encoding each event a second time was a large part of its work per event.
   */
  singleObject(bytes: Buffer): Buffer | undefined;
}

/** Record-name subjects per topic, as the Confluent TopicRecordNameStrategy names them. */
export function subjectFor(topic: string, eventType: EventType): string {
  return `${topic}-agate.event.${eventType}`;
}

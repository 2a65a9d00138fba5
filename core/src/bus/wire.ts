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
}

/** Record-name subjects per topic, as the Confluent TopicRecordNameStrategy names them. */
export function subjectFor(topic: string, eventType: EventType): string {
  return `${topic}-agate.event.${eventType}`;
}

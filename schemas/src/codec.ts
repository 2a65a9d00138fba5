import type avro from 'avsc';
import { AgateError, ErrorCode } from '../../core/src/errors.js';
import type { AgateEvent, EventType } from './events.js';
import { currentSchemas, frozenSchemas, type SchemaVersion } from './registry.js';

/** Avro single-object encoding marker (spec: "Single object encoding"). */
const MAGIC = Buffer.from([0xc3, 0x01]);
const HEADER = MAGIC.length + 8;

interface Reader {
  eventType: EventType;
  type: avro.Type;
  resolver: avro.Resolver | undefined;
}

/**
 * Encodes events as Avro single-object encoding (marker, CRC-64-AVRO fingerprint, body), so
 * every stored or logged event names the exact schema that wrote it without a registry.
 *
 * @example
 * const codec = new EventCodec();
 * const bytes = codec.encode(event);
 * const same = codec.decode(bytes);
 */
export class EventCodec {
  readonly #writers: Map<EventType, SchemaVersion>;
  readonly #readers = new Map<string, Reader>();

  constructor() {
    this.#writers = currentSchemas();
    for (const w of this.#writers.values()) {
      this.#readers.set(w.fingerprint.toString('hex'), { eventType: w.eventType, type: w.type, resolver: undefined });
    }
    for (const old of frozenSchemas()) {
      const key = old.fingerprint.toString('hex');
      if (this.#readers.has(key)) continue;
      const current = this.#writers.get(old.eventType)!;
      this.#readers.set(key, {
        eventType: old.eventType,
        type: current.type,
        resolver: current.type.createResolver(old.type),
      });
    }
  }

  /** The schema this codec writes for an event type. */
  writerSchema(eventType: EventType): SchemaVersion {
    return this.#writers.get(eventType)!;
  }

  encode(event: AgateEvent): Buffer {
    const writer = this.#writers.get(event.type)!;
    const { type: _type, ...record } = event;
    let body: Buffer;
    try {
      body = writer.type.toBuffer(record);
    } catch (cause) {
      throw new AgateError(ErrorCode.EVENT_ENCODING, `cannot encode ${event.type} event ${event.event_id}`, { cause });
    }
    return Buffer.concat([MAGIC, writer.fingerprint, body]);
  }

  decode(bytes: Uint8Array): AgateEvent {
    const buf = Buffer.isBuffer(bytes) ? bytes : Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength);
    if (buf.length < HEADER || buf[0] !== MAGIC[0] || buf[1] !== MAGIC[1]) {
      throw new AgateError(ErrorCode.EVENT_ENCODING, 'not an Avro single-object encoded event');
    }
    const fingerprint = buf.subarray(MAGIC.length, HEADER).toString('hex');
    const reader = this.#readers.get(fingerprint);
    if (reader === undefined) {
      throw new AgateError(ErrorCode.EVENT_UNKNOWN_SCHEMA, `no known schema has fingerprint ${fingerprint}`);
    }
    try {
      const record = reader.type.fromBuffer(buf.subarray(HEADER), reader.resolver) as object;
      // avsc returns instances of generated record classes; callers get plain data.
      return { type: reader.eventType, ...structuredClone(record) } as AgateEvent;
    } catch (cause) {
      throw new AgateError(ErrorCode.EVENT_ENCODING, `corrupt ${reader.eventType} event body`, { cause });
    }
  }
}

import avro from 'avsc';
import { COMPATIBILITY, SchemaRegistry, SchemaType } from '@kafkajs/confluent-schema-registry';
import type { EventCodec } from '../../../schemas/src/codec.js';
import { EVENT_TYPES, type AgateEvent, type EventType } from '../../../schemas/src/events.js';
import { AgateError, ErrorCode } from '../errors.js';
import { subjectFor, type WireCodec } from './wire.js';

/** Confluent wire format: magic byte 0, schema id (big-endian int32), Avro binary body. */
const MAGIC = 0;
const HEADER = 5;

interface Reader {
  eventType: EventType;
  type: avro.Type;
  resolver: avro.Resolver | undefined;
}

/**
 * Events on Kafka in the Confluent wire format, with every event schema registered at start in a
 * Confluent-compatible registry (subject per topic and record, BACKWARD compatibility enforced by
 * the registry, so an incompatible schema change is refused before anything is written).
 */
export class RegistryWire implements WireCodec {
  readonly #registry: SchemaRegistry;
  readonly #ids = new Map<EventType, number>();
  readonly #readers = new Map<number, Reader>();

  constructor(private readonly url: string, private readonly topic: string, private readonly codec: EventCodec) {
    this.#registry = new SchemaRegistry({ host: url });
  }

  async init(): Promise<void> {
    for (const t of EVENT_TYPES) {
      const writer = this.codec.writerSchema(t);
      let id: number;
      try {
        ({ id } = await this.#registry.register(
          { type: SchemaType.AVRO, schema: JSON.stringify(writer.type.schema()) },
          { subject: subjectFor(this.topic, t), compatibility: COMPATIBILITY.BACKWARD },
        ));
      } catch (cause) {
        throw new AgateError(ErrorCode.EVENT_UNKNOWN_SCHEMA, `the schema registry at ${this.url} refused ${subjectFor(this.topic, t)}: ${(cause as Error).message}`, { cause });
      }
      this.#ids.set(t, id);
      this.#readers.set(id, { eventType: t, type: writer.type, resolver: undefined });
    }
  }

  encode(event: AgateEvent): Buffer {
    const id = this.#ids.get(event.type);
    if (id === undefined) throw new AgateError(ErrorCode.EVENT_ENCODING, `no registered schema for ${event.type}; call init() first`);
    const { type: _t, ...record } = event;
    const body = this.codec.writerSchema(event.type).type.toBuffer(record);
    const header = Buffer.alloc(HEADER);
    header.writeUInt8(MAGIC, 0);
    header.writeInt32BE(id, 1);
    return Buffer.concat([header, body]);
  }

  async decode(bytes: Buffer): Promise<AgateEvent> {
    if (bytes.length < HEADER || bytes[0] !== MAGIC) throw new AgateError(ErrorCode.EVENT_ENCODING, 'not a Confluent wire-format message');
    const id = bytes.readInt32BE(1);
    const reader = this.#readers.get(id) ?? (await this.#fetchReader(id));
    const record = reader.type.fromBuffer(bytes.subarray(HEADER), reader.resolver) as object;
    return { type: reader.eventType, ...structuredClone(record) } as AgateEvent;
  }

  /** A schema another writer registered (an older or newer Agate): resolve it to ours. */
  async #fetchReader(id: number): Promise<Reader> {
    let writerType: avro.Type;
    try {
      const remote = (await this.#registry.getSchema(id)) as unknown as { schema(): unknown };
      writerType = avro.Type.forSchema(remote.schema() as avro.Schema);
    } catch (cause) {
      throw new AgateError(ErrorCode.EVENT_UNKNOWN_SCHEMA, `schema id ${id} is not in the registry at ${this.url}`, { cause });
    }
    const name = (writerType as unknown as { name?: string }).name ?? '';
    const eventType = EVENT_TYPES.find((t) => name === `agate.event.${t}`);
    if (eventType === undefined) throw new AgateError(ErrorCode.EVENT_UNKNOWN_SCHEMA, `schema id ${id} (${name}) is not an Agate event`);
    const current = this.codec.writerSchema(eventType).type;
    const reader = { eventType, type: current, resolver: current.createResolver(writerType) };
    this.#readers.set(id, reader);
    return reader;
  }
}

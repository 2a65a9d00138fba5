import { Agent as HttpsAgent } from 'node:https';
import type { ConnectionOptions } from 'node:tls';
import avro from 'avsc';
import { COMPATIBILITY, SchemaRegistry, SchemaType } from '@kafkajs/confluent-schema-registry';
import type { EventCodec } from '../../../schemas/src/codec.js';
import { EVENT_TYPES, type AgateEvent, type EventType } from '../../../schemas/src/events.js';
import { AgateError, ErrorCode } from '../errors.js';
import { Backoff, pause } from '../retry.js';
import { subjectFor, type WireCodec } from './wire.js';

/**
 * The registry client reports a connection failure as a response (ResponseError) of status 400
 * whose message is the socket error; a server error (5xx) is as passing. Other errors (a refusal,
 * or the client's own compatibility check meeting a subject another service is still setting up)
 * are not about reachability.
 */
function unreachable(err: unknown): boolean {
  if ((err as Error).name !== 'ResponseError') return false;
  const status = (err as { status?: number }).status;
  if (status === undefined || status >= 500) return true;
  return status === 400 && /\b(ECONNREFUSED|ECONNRESET|ETIMEDOUT|EHOSTUNREACH|ENETUNREACH|ENOTFOUND|EAI_AGAIN|EPIPE)\b|socket hang up|certificate|CERT_/.test((err as Error).message);
}

/** How Agate reaches a registry that asks clients to authenticate or serves TLS. */
interface RegistryAccess {
  basic?: { username: string; password: string };
  token?: string;
  tls?: ConnectionOptions;
}

/** Confluent wire format: magic byte 0, schema id (big-endian int32), Avro binary body. */
const MAGIC = 0;
const HEADER = 5;
const REGISTER_ATTEMPTS = 4;
/** Waits between those attempts (core/src/retry.ts): the racing services' retries spread apart. */
const REGISTER_BACKOFF = { firstMs: 100, maxMs: 400 };

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
  /** Confluent framing (magic, schema id) is not the codec's single-object encoding. */
  readonly carriesCodecEncoding = false;
  readonly #registry: SchemaRegistry;
  readonly #ids = new Map<EventType, number>();
  readonly #readers = new Map<number, Reader>();

  readonly #url: string;
  readonly #topic: string;
  readonly #codec: EventCodec;

  constructor(url: string, topic: string, codec: EventCodec, access: RegistryAccess = {}) {
    this.#url = url;
    this.#topic = topic;
    this.#codec = codec;
    const bearer = access.token;
    this.#registry = new SchemaRegistry({
      host: url,
      ...(access.basic === undefined ? {} : { auth: access.basic }),
      ...(access.tls === undefined ? {} : { agent: new HttpsAgent({ ...access.tls, keepAlive: true }) }),
      ...(bearer === undefined ? {} : { middlewares: [() => ({ request: (req) => req.enhance({ headers: { authorization: `Bearer ${bearer}` } }) })] }),
    });
  }

  async init(): Promise<void> {
    for (const t of EVENT_TYPES) {
      const writer = this.#codec.writerSchema(t);
      const id = await this.#register(t, JSON.stringify(writer.type.schema()));
      this.#ids.set(t, id);
      this.#readers.set(id, { eventType: t, type: writer.type, resolver: undefined });
    }
  }

  /**
   * Registers one subject. Services starting together on a fresh registry race on the subject's
   * first registration (each then sets its compatibility, and the loser is refused because the rule
   * already exists); a second attempt finds the rule and only registers, so refusals are retried a
   * few times. A registry that cannot be reached is a retriable error (the bus retries connect).
   */
  async #register(t: EventType, schema: string): Promise<number> {
    const subject = subjectFor(this.#topic, t);
    const backoff = new Backoff(REGISTER_BACKOFF);
    for (let attempt = 1; ; attempt++) {
      try {
        const { id } = await this.#registry.register({ type: SchemaType.AVRO, schema }, { subject, compatibility: COMPATIBILITY.BACKWARD });
        return id;
      } catch (cause) {
        if (unreachable(cause)) {
          throw new AgateError(ErrorCode.BUS_UNAVAILABLE, `the schema registry at ${this.#url} cannot be reached: ${(cause as Error).message}`, { cause, retriable: true });
        }
        if (attempt >= REGISTER_ATTEMPTS) {
          throw new AgateError(ErrorCode.EVENT_UNKNOWN_SCHEMA, `the schema registry at ${this.#url} refused ${subject}: ${(cause as Error).message}`, { cause });
        }
        await pause(backoff.next());
      }
    }
  }

  encode(event: AgateEvent): Buffer {
    const id = this.#ids.get(event.type);
    if (id === undefined) throw new AgateError(ErrorCode.EVENT_ENCODING, `no registered schema for ${event.type}; call init() first`);
    const { type: _t, ...record } = event;
    const body = this.#codec.writerSchema(event.type).type.toBuffer(record);
    const header = Buffer.alloc(HEADER);
    header.writeUInt8(MAGIC, 0);
    header.writeInt32BE(id, 1);
    return Buffer.concat([header, body]);
  }

  decode(bytes: Buffer): AgateEvent | Promise<AgateEvent> {
    if (bytes.length < HEADER || bytes[0] !== MAGIC) throw new AgateError(ErrorCode.EVENT_ENCODING, 'not a Confluent wire-format message');
    const id = bytes.readInt32BE(1);
    const reader = this.#readers.get(id);
    // Only a schema id met for the first time costs a registry look-up (and a promise).
    return reader !== undefined ? readWith(reader, bytes) : this.#fetchReader(id).then((r) => readWith(r, bytes));
  }

  /** A schema another writer registered (an older or newer Agate): resolve it to ours. */
  async #fetchReader(id: number): Promise<Reader> {
    let writerType: avro.Type;
    try {
      const remote = (await this.#registry.getSchema(id)) as unknown as { schema(): unknown };
      writerType = avro.Type.forSchema(remote.schema() as avro.Schema);
    } catch (cause) {
      throw new AgateError(ErrorCode.EVENT_UNKNOWN_SCHEMA, `schema id ${id} is not in the registry at ${this.#url}`, { cause });
    }
    const name = (writerType as unknown as { name?: string }).name ?? '';
    const eventType = EVENT_TYPES.find((t) => name === `agate.event.${t}`);
    if (eventType === undefined) throw new AgateError(ErrorCode.EVENT_UNKNOWN_SCHEMA, `schema id ${id} (${name}) is not an Agate event`);
    const current = this.#codec.writerSchema(eventType).type;
    const reader = { eventType, type: current, resolver: current.createResolver(writerType) };
    this.#readers.set(id, reader);
    return reader;
  }
}

/** A message's body read with its writer's reader, as a plain event. */
function readWith(reader: Reader, bytes: Buffer): AgateEvent {
  const record = reader.type.fromBuffer(bytes.subarray(HEADER), reader.resolver) as object;
  return { type: reader.eventType, ...structuredClone(record) } as AgateEvent;
}

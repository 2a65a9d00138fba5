import type avro from 'avsc';
import { AgateError, ErrorCode } from '../../core/src/errors.js';
import type { AgateEvent, EventType } from './events.js';
import { plainReader } from './plain-reader.js';
import { plainWriter, putBytes, type Sink, type Write } from './plain-writer.js';
import { IdentityMemo } from './identity-memo.js';
import { currentSchemas, frozenSchemas, type SchemaVersion } from './registry.js';

/** Avro single-object encoding marker (spec: "Single object encoding"). */
const MAGIC = Buffer.from([0xc3, 0x01]);
const HEADER = MAGIC.length + 8;

interface Reader {
  eventType: EventType;
  type: avro.Type;
  resolver: avro.Resolver | undefined;
  /** For the current schemas: reads the body into a plain event, `type` first (plain-reader.ts). */
  plain?: (body: Buffer) => unknown;
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
  /**
   * The same readers by fingerprintKey: decode finds a reader without making a hex string of
   * every event's fingerprint (a Kafka consumer decodes every record it reads).
   */
  readonly #readersByKey = new Map<number, { rest: number; reader: Reader }>();
  /**
   * Where events are encoded before being copied out at their exact size: one buffer that
   * grows as needed (a Command with a CI token's claims is ~1.7 KiB).
   */
  readonly #sink: Sink = { buf: Buffer.allocUnsafe(64 * 1024), pos: 0 };
  /** Per event type, its writer compiled from the schema (plain-writer.ts). */
  readonly #encoders = new Map<EventType, Write>();
  /**
   * A session's identity (a CI token's ~25 claims, most of a Command's bytes) is one frozen
   * object shared by all its events: encoded once and copied after.
   */
  readonly #identities = new WeakMap<object, Buffer>();
  /** Decoding's counterpart: a session's identity decoded once, shared (frozen) by its events. */
  readonly #decodedIdentities = new IdentityMemo();

  constructor() {
    this.#writers = currentSchemas();
    for (const w of this.#writers.values()) this.#encoders.set(w.eventType, plainWriter(w.type, (field, type) => field === 'identity' && type.typeName === 'record' ? (write) => this.#identityWriter(write) : undefined));
    for (const w of this.#writers.values()) {
      this.#addReader(w.fingerprint, { eventType: w.eventType, type: w.type, resolver: undefined, plain: plainReader(w.type, w.eventType, this.#decodedIdentities) });
    }
    for (const old of frozenSchemas()) {
      if (this.#readers.has(old.fingerprint.toString('hex'))) continue;
      const current = this.#writers.get(old.eventType)!;
      this.#addReader(old.fingerprint, {
        eventType: old.eventType,
        type: current.type,
        resolver: current.type.createResolver(old.type),
      });
    }
  }

  #addReader(fingerprint: Buffer, reader: Reader): void {
    this.#readers.set(fingerprint.toString('hex'), reader);
    const key = fingerprintKey(fingerprint, 0);
    // Two fingerprints sharing a key (not seen among ours) leave the second to the hex map.
    if (!this.#readersByKey.has(key)) this.#readersByKey.set(key, { rest: fingerprintRest(fingerprint, 0), reader });
  }

  #readerOf(buf: Buffer): Reader | undefined {
    const byKey = this.#readersByKey.get(fingerprintKey(buf, MAGIC.length));
    if (byKey !== undefined && byKey.rest === fingerprintRest(buf, MAGIC.length)) return byKey.reader;
    return this.#readers.get(buf.subarray(MAGIC.length, HEADER).toString('hex'));
  }

  /** The schema this codec writes for an event type. */
  writerSchema(eventType: EventType): SchemaVersion {
    return this.#writers.get(eventType)!;
  }

  encode(event: AgateEvent): Buffer {
    const writer = this.#writers.get(event.type)!;
    const sink = this.#sink;
    sink.pos = HEADER;
    try {
      // No schema has a field named `type`: the writer reads the schema's fields only.
      this.#encoders.get(event.type)!(sink, event);
    } catch (cause) {
      throw new AgateError(ErrorCode.EVENT_ENCODING, `cannot encode ${event.type} event ${event.event_id}`, { cause });
    }
    const out = Buffer.allocUnsafe(sink.pos);
    MAGIC.copy(out, 0);
    writer.fingerprint.copy(out, MAGIC.length);
    sink.buf.copy(out, HEADER, HEADER, sink.pos);
    return out;
  }

  /** An identity's writer with its bytes cached: only a frozen identity is sure to encode the same next time. */
  #identityWriter(write: Write): Write {
    return (s, value) => {
      if (!isFrozenIdentity(value)) return write(s, value);
      const known = this.#identities.get(value);
      if (known !== undefined) return putBytes(s, known);
      const start = s.pos;
      write(s, value);
      this.#identities.set(value, Buffer.from(s.buf.subarray(start, s.pos)));
    };
  }

  decode(bytes: Uint8Array): AgateEvent {
    const buf = Buffer.isBuffer(bytes) ? bytes : Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength);
    if (buf.length < HEADER || buf[0] !== MAGIC[0] || buf[1] !== MAGIC[1]) {
      throw new AgateError(ErrorCode.EVENT_ENCODING, 'not an Avro single-object encoded event');
    }
    const reader = this.#readerOf(buf);
    if (reader === undefined) {
      throw new AgateError(ErrorCode.EVENT_UNKNOWN_SCHEMA, `no known schema has fingerprint ${buf.subarray(MAGIC.length, HEADER).toString('hex')}`);
    }
    try {
      if (reader.plain !== undefined) return reader.plain(buf.subarray(HEADER)) as AgateEvent;
      const record = reader.type.fromBuffer(buf.subarray(HEADER), reader.resolver) as object;
      // avsc returns instances of generated record classes; callers get plain data.
      return { type: reader.eventType, ...structuredClone(record) } as AgateEvent;
    } catch (cause) {
      throw new AgateError(ErrorCode.EVENT_ENCODING, `corrupt ${reader.eventType} event body`, { cause });
    }
  }
}

/** A fingerprint's first 53 bits (its 8 bytes at `at`) as an exact number, read without allocating. */
function fingerprintKey(buf: Buffer, at: number): number {
  return buf.readUInt32LE(at) * 2 ** 21 + (buf.readUInt32LE(at + 4) & 0x1fffff);
}

/** The fingerprint's other 11 bits. */
function fingerprintRest(buf: Buffer, at: number): number {
  return buf.readUInt32LE(at + 4) >>> 21;
}

/** Whether `value` is an identity frozen with its claims: what it serializes to can no longer change (a cache may keep it). */
export function isFrozenIdentity(value: unknown): value is object {
  return value !== null && typeof value === 'object' && Object.isFrozen(value) && Object.isFrozen((value as { claims?: object }).claims ?? {});
}

/**
 * Freezes an event and everything it holds (identity, claims, parameters, attributes), so what
 * was encoded for the log is what every later reader sees: a write after publishing throws
 * instead of making the ledger record something the log does not hold. Returns the event.
 */
export function freezeEvent<T extends AgateEvent>(event: T): T {
  deepFreeze(event, 0);
  return event;
}

function deepFreeze(value: object, depth: number): void {
  // Events are shallow (an identity's claims are the deepest, at depth 2); already frozen
  // members (a session's identity, shared by all its commands) are skipped.
  if (Object.isFrozen(value) || depth > 4) return;
  Object.freeze(value);
  // Indexes and for-in rather than Object.values: no array of the values per object, on every
  // event of every statement (a statement's three events: about 1 KiB less garbage, measured).
  if (Array.isArray(value)) {
    for (let i = 0; i < value.length; i++) freezeMember(value[i], depth);
    return;
  }
  for (const key in value) freezeMember((value as Record<string, unknown>)[key], depth);
}

function freezeMember(v: unknown, depth: number): void {
  if (v !== null && typeof v === 'object' && !Buffer.isBuffer(v)) deepFreeze(v, depth + 1);
}

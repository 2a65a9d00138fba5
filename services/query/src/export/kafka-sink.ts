import { Producer } from '@platformatic/kafka';
import { STRING_SERDE, clientOptions, describeKafkaError, keyPartitioner, withAdmin, type KafkaConnection } from '../../../../core/src/bus/kafka-client.js';
import { createTopics } from '../../../../core/src/bus/kafka-topics.js';
import { AgateError, ErrorCode } from '../../../../core/src/errors.js';
import { Backoff, pause } from '../../../../core/src/retry.js';
import type { OcsfEvent } from '../ocsf/map.js';
import { sizedRuns } from './fit-events.js';
import type { ExportSink } from './types.js';

interface KafkaSinkOptions {
  brokers: string[];
  topic: string;
  /** Partitions and replication of the topic when the sink creates it (it is left as is when it exists). */
  partitions?: number;
  replicationFactor?: number;
  clientId?: string;
  /** Attempts per batch before giving up (the position stays, so a later run resumes). */
  maxAttempts?: number;
  /** The first backoff step (core/src/retry.ts); doubles per attempt, up to `maxDelayMs`. */
  baseDelayMs?: number;
  maxDelayMs?: number;
  /**
   * JSON bytes per produce request (and so per record): under the broker's `message.max.bytes`
   * (1,048,588 by default), which refuses a larger batch for good. Default 900,000.
   */
  maxRequestBytes?: number;
  signal?: AbortSignal;
}

/**
 * OCSF events to a Kafka topic for SIEM connectors, one JSON event per record, keyed by session
 * (`metadata.correlation_uid`) so a session's events stay in order in one partition. A batch
 * counts as delivered once every in-sync replica has it (idempotent producer, `acks=all`);
 * until then the exporter keeps its position, so a failure redelivers the batch (at least
 * once) and consumers deduplicate on `metadata.uid`. Headers carry the ledger position. A batch
 * is sent in runs under the broker's size limit, and an event longer than that has its longest
 * texts cut (fit-events.ts): an agent's long statement must not stop the export.
 */
export class KafkaSink implements ExportSink {
  readonly name: string;
  readonly #producer: Producer<string, string, string, string>;
  readonly #connection: KafkaConnection;
  #connected = false;

  readonly #options: KafkaSinkOptions;

  constructor(options: KafkaSinkOptions) {
    this.#options = options;
    this.name = `kafka:${options.topic}`;
    this.#connection = { clientId: options.clientId ?? 'agate-export', brokers: options.brokers, retries: 3, connectTimeoutMs: 3_000, requestTimeoutMs: 10_000 };
    this.#producer = new Producer({
      ...clientOptions(this.#connection),
      idempotent: true,
      acks: -1,
      autocreateTopics: false,
      partitioner: keyPartitioner, // the same key hashing as the bus: Java's default partitioner
      serializers: { ...STRING_SERDE, value: STRING_SERDE.key },
    });
  }

  /** The batch in sends small enough for the broker, one after another (so a session's order holds). */
  async deliver(events: readonly OcsfEvent[]): Promise<void> {
    for (const run of sizedRuns(events, this.#options.maxRequestBytes ?? 900_000)) await this.#send(run);
  }

  async #send(events: readonly OcsfEvent[]): Promise<void> {
    const messages = events.map((e) => ({
      key: String(e.metadata.correlation_uid ?? e.metadata.uid ?? ''),
      value: JSON.stringify(e),
      headers: { 'agate-chain': e.metadata.log_name, 'agate-seq': String(e.metadata.sequence) },
    }));
    const max = this.#options.maxAttempts ?? 10;
    const backoff = new Backoff({ firstMs: this.#options.baseDelayMs ?? 250, maxMs: this.#options.maxDelayMs ?? 30_000 });
    for (let attempt = 1; ; attempt++) {
      try {
        await this.#connect();
        await this.#producer.send({ acks: -1, messages: messages.map((m) => ({ topic: this.#options.topic, ...m })) });
        return;
      } catch (err) {
        if (err instanceof AgateError && !err.retriable) throw err;
        if (attempt >= max) {
          throw new AgateError(ErrorCode.EXPORT_DELIVERY_FAILED, `${this.name} did not accept ${events.length} events after ${attempt} attempt(s): ${describeKafkaError(err)}`, { cause: err, retriable: true });
        }
      }
      await pause(backoff.next(), this.#options.signal);
      this.#options.signal?.throwIfAborted();
    }
  }

  async close(): Promise<void> {
    await this.#producer.close();
    this.#connected = false;
  }

  /** Connects once, creating the topic when it does not exist. */
  async #connect(): Promise<void> {
    if (this.#connected) return;
    await withAdmin(this.#connection, async (admin) => {
      const topics = await admin.listTopics();
      if (!topics.includes(this.#options.topic)) {
        await createTopics(admin, [{ topic: this.#options.topic, partitions: this.#options.partitions ?? 1, replicationFactor: this.#options.replicationFactor ?? 1, configs: {} }]);
      }
    });
    await this.#producer.initIdempotentProducer({});
    this.#connected = true;
  }
}

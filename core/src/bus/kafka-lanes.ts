import { Producer } from '@platformatic/kafka';
import { AgateError, ErrorCode } from '../errors.js';
import type { Logger } from '../log.js';
import { STRING_SERDE, clientOptions, describeKafkaError, keyPartitioner, type KafkaConnection } from './kafka-client.js';

/** A send not acknowledged in this time fails (its publishers fail closed) and the producer is replaced. */
const SEND_TIMEOUT_MS = 30_000;
/** How long a publish queued with `urgent: false` may wait for a send to join. */
const LAZY_MS = 2;

/** A record as the bus sends it: keyed by session (or command), the bus's headers. */
export interface Message {
  key: string;
  value: Buffer;
  headers: Record<string, string>;
}

interface TopicMessages {
  topic: string;
  messages: Message[];
}

type BusProducer = Producer<string, Buffer, string, string>;

interface Queued {
  topicMessages: TopicMessages[];
  done: (err?: Error) => void;
}

/**
 * One idempotent producer and the publishes waiting for it. An idempotent producer keeps one
 * request in flight (its sequence numbers advance only when a send returns), so this is a group
 * commit: publishes that arrive while a send is out ride the next one, in order.
 */
export class ProducerLane {
  #producer: BusProducer;
  /** Whether #producer has its producer id; a replaced producer gets one before its first send. */
  #connected = false;
  #queue: Queued[] = [];
  #flushing: Promise<void> | undefined;
  /** An urgent publish is in #queue. */
  #urgentQueued = false;
  /** Sends the publishes queued with `urgent: false` when no urgent one came to take them along. */
  #lazyTimer: NodeJS.Timeout | undefined;

  constructor(
    private readonly connection: KafkaConnection,
    /** The reply topic: its copy of a reply event is sent only after the record copy is acknowledged. */
    private readonly verdictsTopic: string,
    private readonly logger: Logger,
  ) {
    this.#producer = this.#newProducer();
  }

  /** Gets the idempotent producer's id from the cluster: the first round trip, before any send. */
  async connect(): Promise<void> {
    await this.#producer.initIdempotentProducer({});
    this.#connected = true;
  }

  /**
   * Queues a publish; resolves once the brokers acknowledged it. `urgent` (the default) starts a
   * send at once, or the next one when a send is under way. A publish nobody waits on to go on
   * (a statement's Response) passes `urgent: false`: it joins the next urgent publish's send (the
   * session's next Command, usually) or is sent LAZY_MS later if none comes, instead of costing a
   * produce request of its own that the next Command would queue behind. The queue keeps publish
   * order, so a session's records stay in order either way.
   */
  enqueue(topicMessages: TopicMessages[], urgent = true): Promise<void> {
    return new Promise((resolve, reject) => {
      this.#queue.push({ topicMessages, done: (err) => (err ? reject(err) : resolve()) });
      if (urgent) this.#urgentQueued = true;
      if (this.#flushing !== undefined) return; // the send under way decides when it ends (#flush)
      if (urgent) this.#startFlush();
      else this.#lazyTimer ??= setTimeout(() => this.#startFlush(), LAZY_MS);
    });
  }

  /** Waits for the sends under way and sends what waits to join one, then disconnects. */
  async close(): Promise<void> {
    while (this.#flushing !== undefined || this.#queue.length > 0) {
      this.#startFlush();
      await this.#flushing;
    }
    await this.#producer.close().catch(() => undefined);
  }

  #newProducer(): BusProducer {
    // Topics are created by connect() (kafka-topics.ts settings), never by a send to a missing one.
    return new Producer({ ...clientOptions({ ...this.connection, retries: 3 }), idempotent: true, acks: -1, autocreateTopics: false, partitioner: keyPartitioner, serializers: STRING_SERDE });
  }

  #startFlush(): void {
    clearTimeout(this.#lazyTimer);
    this.#lazyTimer = undefined;
    if (this.#queue.length > 0) this.#flushing ??= this.#flush();
  }

  /**
   * Sends what is queued, then again as long as an urgent publish came meanwhile; publishes that
   * can wait and came alone are left for the next urgent one or the lazy timer. #flushing is
   * cleared in the same synchronous step that looks at the queue (no await between): a publisher
   * woken by the last acknowledgement enqueues before any later step, and must either be taken by
   * this loop or find no send under way.
   */
  async #flush(): Promise<void> {
    try {
      do {
        const batch = this.#queue;
        this.#queue = [];
        this.#urgentQueued = false;
        await this.#sendBatch(batch);
      } while (this.#urgentQueued);
    } finally {
      this.#flushing = undefined;
      if (this.#queue.length > 0) this.#lazyTimer ??= setTimeout(() => this.#startFlush(), LAZY_MS);
    }
  }

  /** Sends one group of publishes and settles each of them; never throws. */
  async #sendBatch(batch: Queued[]): Promise<void> {
    // Appended in place: copying each topic's list for every queued publish was quadratic in
    // the publishes a flush gathers (thousands under load).
    const byTopic = new Map<string, Message[]>();
    for (const q of batch) {
      for (const tm of q.topicMessages) {
        const list = byTopic.get(tm.topic);
        if (list === undefined) byTopic.set(tm.topic, [...tm.messages]);
        else for (const m of tm.messages) list.push(m);
      }
    }
    try {
      await withTimeout(this.#send([...byTopic].map(([topic, messages]) => ({ topic, messages }))), SEND_TIMEOUT_MS, `no acknowledgement within ${SEND_TIMEOUT_MS} ms`);
    } catch (cause) {
      this.#replaceProducer(cause);
      const err = new AgateError(ErrorCode.BUS_WRITE_FAILED, `Kafka did not acknowledge the events: ${describeKafkaError(cause)}`, { cause, retriable: true });
      for (const q of batch) q.done(err);
      return;
    }
    for (const q of batch) q.done();
  }

  async #send(topicMessages: TopicMessages[]): Promise<void> {
    if (!this.#connected) await this.connect();
    // A proxy runs a statement as soon as it reads its verdict (and ends a session as soon as it
    // reads a termination request), so the event the ledger records (events topic) must be
    // acknowledged before the copy proxies read (verdicts topic) is sent.
    // In one request the two partitions succeed or fail separately (each has its own error code,
    // and with different leaders they are two requests), so they are two sends, in this order.
    const reply = topicMessages.filter((tm) => tm.topic === this.verdictsTopic);
    const record = topicMessages.filter((tm) => tm.topic !== this.verdictsTopic);
    if (record.length > 0) await this.#producer.send({ messages: records(record), acks: -1 });
    if (reply.length > 0) await this.#producer.send({ messages: records(reply), acks: -1 });
  }

  /**
   * After a failed or stuck send the idempotent producer may be wedged for good (a broker that
   * restarted lost its sequence state and now refuses every batch as out of order), so the next
   * send goes through a fresh producer with a new producer id. Redelivered duplicates are
   * harmless: consumers are idempotent by event id.
   */
  #replaceProducer(cause: unknown): void {
    const old = this.#producer;
    this.#producer = this.#newProducer();
    this.#connected = false;
    void old.close().catch(() => undefined);
    this.logger.warn('a Kafka send failed; the next send uses a new producer', { error: describeKafkaError(cause) });
  }
}

/** One list of records for the client, each naming its topic. */
function records(topicMessages: TopicMessages[]): { topic: string; key: string; value: Buffer; headers: Record<string, string> }[] {
  const out: { topic: string; key: string; value: Buffer; headers: Record<string, string> }[] = [];
  for (const tm of topicMessages) for (const m of tm.messages) out.push({ topic: tm.topic, key: m.key, value: m.value, headers: m.headers });
  return out;
}

function withTimeout<T>(p: Promise<T>, ms: number, message: string): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error(message)), ms);
  });
  return Promise.race([p, timeout]).finally(() => clearTimeout(timer));
}

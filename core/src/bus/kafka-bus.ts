import { randomBytes } from 'node:crypto';
import type { ConnectionOptions } from 'node:tls';
import { Consumer, type MessagesStream } from '@platformatic/kafka';
import type { AgateEvent, Command } from '../../../schemas/src/events.js';
import { eventTraceParent } from '../tracing/traceparent.js';
import { READY, type Readiness } from '../ops/readiness.js';
import { AgateError, ErrorCode, describeError } from '../errors.js';
import type { Logger } from '../log.js';
import { Backoff, pause } from '../retry.js';
import { warnWhileWaiting } from '../waiting.js';
import type { Bus, StreamInfo, SubscribeOptions, Subscription, VerdictOutcome, VerdictRequestOptions } from './bus.js';
import { clientOptions, describeKafkaError, isTransientKafkaError, withAdmin, type KafkaConnection } from './kafka-client.js';
import { BUS_DESERIALIZERS, RecordReader, TypeFilter, byPartition, type BusRecord } from './kafka-stream.js';
import { DEFAULT_RETENTION_MS, createTopics, topicSpecs } from './kafka-topics.js';
import { ProducerLane, type Message } from './kafka-lanes.js';
import { PROCESS_GROUPS, type ProxyLeases } from './leases.js';
import { isReplyEventType, replyKey } from './reply-events.js';
import { VerdictWaiters } from './verdict-waiters.js';
import type { WireCodec } from './wire.js';

export interface KafkaBusOptions {
  brokers: string[];
  /** This process's instance id: a label in its client id and verdict consumer group. */
  instanceId: string;
  /**
   * Prefix of every consumer group this deployment uses (`<prefix>.policy`, `<prefix>.ledger`, …),
   * so two deployments sharing one Kafka never share a group. See `consumerGroupPrefix`.
   */
  groupPrefix: string;
  /** Every audit event, keyed by session so a session stays ordered in one partition. */
  eventsTopic: string;
  /**
   * A copy of each reply event (reply-events.ts: verdicts, termination requests), read by every
   * proxy instance: the verdicts for the commands it waits on, the requests to end its sessions.
   */
  verdictsTopic: string;
  partitions: number;
  replicationFactor: number;
  /** Topic settings of the topics `connect` creates (see kafka-topics.ts). */
  minInsyncReplicas?: number;
  retentionMs?: number;
  wire: WireCodec;
  logger: Logger;
  /** Whether this process waits on verdicts (proxies do; policy and ledger don't). */
  awaitsVerdicts: boolean;
  /** TLS to the brokers; the server's certificate and name are verified. */
  tls?: ConnectionOptions;
  /** SASL login (SCRAM or PLAIN) to the brokers. */
  sasl?: { mechanism: 'scram-sha-512' | 'scram-sha-256' | 'plain'; username: string; password: string };
  /** How long `connect` keeps retrying retriable errors (default 30 s). */
  connectTimeoutMs?: number;
  /** Where each consumer reports whether it runs (a service process's readiness); a CLI command's bus has none. */
  readiness?: Readiness;
  /**
   * Per consumer group: how long a fetch may wait at the broker for LINGER_BYTES before it
   * returns what there is, so the group reads fewer, larger batches. For stores that want few
   * large inserts (the ledger into ClickHouse); never for groups on the verdict path.
   */
  lingerMs?: Readonly<Record<string, number>>;
}

/** Waits between retries of a batch whose handler failed (core/src/retry.ts). */
const HANDLER_BACKOFF = { firstMs: 50, maxMs: 5_000 };
/** How long a consumer's first start keeps retrying what a loaded or restarting broker answers. */
const FIRST_START_DEADLINE_MS = 60_000;
/** How long one attempt to join a consumer group may take before a new member tries. */
const JOIN_TIMEOUT_MS = 30_000;
/**
 * Fetch settings. A fetch with nothing to read is held at the broker up to `maxWaitTime`, and
 * the broker answers it as soon as a record arrives (`minBytes` 1), so a long wait costs no
 * latency: it only sets how often an idle consumer asks again. A 5 ms wait made each consumer ask
 * 200 times a second: about 7.5 % of a core per idle process and 25 % for the broker, against 3 %
 * and 6 % at 500 ms (`npm run bench -- idle`). A 5 s wait saves nothing more per process and only
 * ~1.5 % of the broker, and would hold up a rebalance or a stop behind a fetch nobody interrupts.
 */
const FETCH = { maxWaitTime: 500, minBytes: 1 } as const;
/**
 * Group membership. The broker drops a member silent for `sessionTimeout`: that is how long a
 * crashed proxy's lease outlives it (leases.ts, docs/operating.md). A member learns of a rebalance
 * at its next heartbeat, so the heartbeat sets how long a group (policy's, on the verdict path)
 * stalls when an instance joins or leaves; 3 s heartbeats measured no less idle CPU than 1 s.
 */
const MEMBERSHIP = { sessionTimeout: 10_000, heartbeatInterval: 1_000 } as const;
/**
 * What a lingering group's fetch waits for (KafkaBusOptions.lingerMs): under load a fetch fills
 * this at once, so only a light trickle waits the linger out.
 */
const LINGER_BYTES = 1 << 20;
/** How often a proxy's verdict consumer commits its offsets (see #listenForVerdicts). */
const VERDICT_COMMIT_INTERVAL_MS = 1_000;
/** How often a subscription commits past records none of which it handles (see subscribe). */
const SKIPPED_COMMIT_INTERVAL_MS = 1_000;
/** Most records one fetch of one partition brings. */
const MAX_BYTES_PER_PARTITION = 4 << 20;
/** Records a consumer's stream holds read ahead of its handler before it stops fetching. */
const READ_AHEAD_RECORDS = 4_096;
/** A consumer that does not leave its group in this time (a broker away) is dropped: the group forgets it after sessionTimeout. */
const CLOSE_TIMEOUT_MS = 5_000;

type BusConsumer = Consumer<Buffer | undefined, Buffer | undefined, string, Buffer | undefined>;
type BusStream = MessagesStream<Buffer | undefined, Buffer | undefined, string, Buffer | undefined>;
/** A consumer and its record stream: what #supervise starts, watches and stops. */
interface Consumption {
  consumer: BusConsumer;
  stream: BusStream;
  /** The read loop: settles when the stream ends, rejects with the error that stopped it. */
  loop: Promise<void>;
}

/**
 * The consumer-group prefix of a deployment: the configured one, else derived from its events
 * topic. The default topic keeps the historical prefix `agate`, so an existing deployment keeps
 * its committed offsets.
 */
export function consumerGroupPrefix(eventsTopic: string, configured?: string): string {
  if (configured !== undefined) return configured;
  return eventsTopic === 'agate.events' ? 'agate' : eventsTopic;
}

/**
 * The distributed bus over Kafka (@platformatic/kafka behind Agate's own interface; it replaced
 * kafkajs on measured client CPU, BENCHMARKS.md). Publishing uses an idempotent producer with
 * acks from all in-sync replicas; concurrent publishes share one request (group commit), so the
 * write-ahead wait costs one round trip. Several producers sending in parallel were measured and
 * gave no consistent gain (BENCHMARKS.md, pipeline).
 */
export class KafkaBus implements Bus, ProxyLeases {
  readonly #connection: KafkaConnection;
  readonly #producer: ProducerLane;
  readonly #consumers = new Set<Consumption>();
  readonly #waiters = new VerdictWaiters();
  /** Per-process subscriptions served by the verdict consumer (#readReplies). */
  readonly #replyReaders = new Set<ReplyReader>();
  /**
   * This process's own verdict group. Every proxy must read every verdict, so a group shared by
   * two processes (a copied config, a reused instance_id) would split the verdicts between them
   * and time out half the commands: a random suffix makes the group this process's alone, and
   * close() deletes it.
   */
  readonly #verdictGroup: string;
  /** What makes this process's own groups (its verdict group, SubscribeOptions.perProcess) its alone. */
  readonly #processSuffix: string;
  /** Per-process groups this process subscribed with and has not deleted yet. */
  readonly #processGroups = new Set<string>();
  #closed = false;
  /** What this bus reported into readiness, withdrawn when it closes. */
  readonly #readinessComponents = new Set<string>();

  readonly #options: KafkaBusOptions;

  private constructor(options: KafkaBusOptions) {
    this.#options = options;
    this.#processSuffix = `${options.instanceId}.${randomBytes(6).toString('hex')}`;
    this.#verdictGroup = `${options.groupPrefix}.verdicts.${this.#processSuffix}`;
    this.#connection = {
      clientId: `agate-${options.instanceId}`,
      brokers: options.brokers,
      retries: 5,
      connectTimeoutMs: 3_000,
      requestTimeoutMs: 10_000,
      ...(options.tls === undefined ? {} : { tls: options.tls }),
      ...(options.sasl === undefined ? {} : { sasl: options.sasl }),
    };
    this.#producer = new ProducerLane(this.#connection, options.verdictsTopic, options.logger);
  }

  /**
   * Connects, creating the topics when missing. A freshly created topic can take a while to
   * have leaders everywhere (the broker answers "does not host this topic-partition" until
   * then), so retriable Kafka errors are retried with a fresh client until `connectTimeoutMs`.
   */
  static async connect(options: KafkaBusOptions): Promise<KafkaBus> {
    const deadline = Date.now() + (options.connectTimeoutMs ?? 30_000);
    const backoff = new Backoff({ firstMs: 200, maxMs: 2_000 });
    for (;;) {
      const bus = new KafkaBus(options);
      try {
        await options.wire.init();
        await bus.#ensureTopics();
        await bus.#producer.connect();
        if (options.awaitsVerdicts) await bus.#listenForVerdicts();
        return bus;
      } catch (cause) {
        await bus.close().catch(() => undefined);
        const delay = backoff.next();
        if (isTransientKafkaError(cause) && Date.now() + delay < deadline) {
          options.logger.warn('Kafka is not ready yet; retrying', { error: describeKafkaError(cause), retry_in_ms: delay });
          await pause(delay);
          continue;
        }
        if (cause instanceof AgateError && cause.code === ErrorCode.CONFIG_INVALID) throw cause;
        throw new AgateError(ErrorCode.BUS_UNAVAILABLE, `cannot connect to Kafka at ${options.brokers.join(', ')}: ${describeKafkaError(cause)}`, { cause, retriable: true });
      }
    }
  }

  publish(event: AgateEvent): Promise<void> {
    if (this.#closed) return Promise.reject(new AgateError(ErrorCode.BUS_CLOSED, 'the bus is closed'));
    const value = this.#options.wire.encode(event);
    const headers = recordHeaders(event);
    const message: Message = { key: event.session_id, value, headers };
    const topicMessages = [{ topic: this.#options.eventsTopic, messages: [message] }];
    // A reply event also goes to the verdicts topic, sent only once its events-topic copy is acknowledged (kafka-lanes.ts).
    const replyTo = replyKey(event);
    if (replyTo !== undefined) topicMessages.push({ topic: this.#options.verdictsTopic, messages: [{ key: replyTo, value, headers }] });
    // Nothing waits on a Response to go on: it rides the next send (kafka-lanes.ts).
    return this.#producer.enqueue(topicMessages, event.type !== 'Response');
  }

  requestVerdict(command: Command, deadlineMs: number, options: VerdictRequestOptions = {}): Promise<VerdictOutcome> {
    return this.#waiters.wait(command, deadlineMs, options, () => this.publish(command));
  }

  async subscribe(options: SubscribeOptions): Promise<Subscription> {
    if (options.perProcess && !(PROCESS_GROUPS as readonly string[]).includes(options.group)) {
      // The ledger finds a dead process's groups by these names only; any other would stay for good.
      throw new AgateError(ErrorCode.CONFIG_INVALID, `a per-process consumer group must be one of ${PROCESS_GROUPS.join(', ')}, not ${options.group}`);
    }
    if (options.perProcess && options.types.every(isReplyEventType)) return this.#readReplies(options);
    const groupId = options.perProcess ? `${this.#options.groupPrefix}.${options.group}.${this.#processSuffix}` : `${this.#options.groupPrefix}.${options.group}`;
    if (options.perProcess) this.#processGroups.add(groupId);
    const types = new Set<string>(options.types);
    const typeHeader = new TypeFilter(types);
    const wire = this.#options.wire;
    const log = this.#options.logger.child({ group: options.group });
    const max = options.maxBatch ?? 2_000;
    // Read ahead at least one full batch, so a group that wants large batches (the ledger's
    // inserts) gets them, as a fetch of a busy partition brings them.
    const readAhead = Math.max(READ_AHEAD_RECORDS, max);
    let stopping = false;
    // Counts this member's group joins (each brings a new assignment of partitions); batches
    // carry the count, so a handler knows when a partition may have been elsewhere meanwhile.
    let joins = 0;
    // When each partition's offsets were last committed (Date.now()).
    const lastCommit = new Map<number, number>();
    const supervised = await this.#supervise(options.group, async () => {
      const consumer = this.#newConsumer(groupId, this.#fetchSettings(options.group));
      consumer.on('consumer:group:join', () => void (joins += 1));
      const stream = await consumeOrClose(consumer, {
        topics: [this.#options.eventsTopic],
        mode: 'committed',
        fallbackMode: options.from === 'latest' ? 'latest' : 'earliest',
        autocommit: false,
        highWaterMark: readAhead,
      }, log);
      // Set when a handler call outlived the session timeout and this member left its group (see below).
      let stalled = false;
      // A partition handed to another member meanwhile is that member's to read, from the
      // offsets committed so far: its records still buffered here are left alone.
      const owned = (partition: number) => consumer.assignments?.some((a) => a.topic === this.#options.eventsTopic && a.partitions.includes(partition)) === true;
      const handlePartition = async (partition: number, records: BusRecord[]) => {
        for (let i = 0; i < records.length; i += max) {
          if (stopping || !owned(partition)) return;
          const slice = records.slice(i, i + max);
          const events: AgateEvent[] = [];
          const positions: number[] = [];
          // Each event's bytes as they travelled, when they are the codec's encoding: the ledger
          // stores them as they are instead of encoding every event again (StreamInfo.encoded).
          const encoded: Buffer[] | undefined = wire.carriesCodecEncoding ? [] : undefined;
          for (const m of slice) {
            if (!typeHeader.admits(m.headers.get('agate-type'))) continue;
            if (m.value === undefined) continue;
            const decoded = wire.decode(m.value);
            const e = decoded instanceof Promise ? await decoded : decoded;
            if (types.has(e.type) && (options.accept === undefined || options.accept(e))) {
              events.push(e);
              positions.push(Number(m.offset) + 1);
              encoded?.push(m.value);
            }
          }
          if (events.length > 0) {
            const assignment = joins;
            const backoff = new Backoff(HANDLER_BACKOFF);
            for (;;) {
              // The client heartbeats on a timer, whatever the handler does, so a handler stuck
              // (a store that hangs mid-insert) would keep its partitions for good. A handler call
              // that outlives the session timeout makes this member leave its group, as a member
              // silent that long would be dropped: its partitions go to a member that makes
              // progress, from the last commit, and this one joins again once the call returns.
              const watchdog = setTimeout(() => {
                stalled = true;
                log.warn('an event handler call outlived the group session timeout; leaving the group so another member takes its partitions', { timeout_ms: MEMBERSHIP.sessionTimeout, partition });
                void new Promise<void>((resolve) => consumer.leaveGroup(true, () => resolve()));
              }, MEMBERSHIP.sessionTimeout);
              try {
                await options.handler(events, { stream: `${this.#options.eventsTopic}-${partition}`, positions, assignment, ...(encoded === undefined ? {} : { encoded }) });
                break;
              } catch (err) {
                const delay = backoff.next();
                log.error('event handler failed; retrying the batch', { error: describeError(err), events: events.length, retry_in_ms: delay });
                if (stopping || stalled || !owned(partition)) return; // uncommitted: redelivered to the partition's owner
                await pause(delay);
              } finally {
                clearTimeout(watchdog);
              }
            }
            if (stalled) return; // not committed: the partition's new owner reads it again
          }
          // Commit only after the handler succeeded: at least once in, idempotent handlers.
          // A slice with nothing of this subscription's types (a query process's session-end
          // reader sees every Command, Verdict and Response) needs no commit of its own: reading
          // it again after a restart finds nothing again. Committing each such slice was a
          // request per fetch in the reader's loop, so it rides the next handled slice's
          // commit, or one at most every SKIPPED_COMMIT_INTERVAL_MS.
          if (events.length > 0 || Date.now() - (lastCommit.get(partition) ?? 0) >= SKIPPED_COMMIT_INTERVAL_MS) {
            try {
              await slice[slice.length - 1]!.commit();
              lastCommit.set(partition, Date.now());
            } catch (err) {
              // A commit refused after a rebalance (the partition moved): its new owner reads
              // from the last commit that went through, so the batch is handled again, not lost.
              log.warn('an offset commit failed; the records after the last commit will be read again', { error: describeKafkaError(err), partition });
            }
          }
        }
      };
      const reader = new RecordReader(stream);
      const loop = (async () => {
        for (;;) {
          const records = await reader.next(readAhead);
          if (records === null || stopping) return;
          for (const [partition, list] of byPartition(records)) {
            if (stalled) break;
            await handlePartition(partition, list);
          }
          // This member left its group: a new consumer (#supervise) joins again, from the commits.
          if (stalled) throw new Error('an event handler call outlived the group session timeout; this member left its group and joins again');
        }
      })();
      return { consumer, stream, loop };
    });
    return {
      close: async () => {
        stopping = true;
        await supervised.stop();
        if (options.perProcess) await this.#deleteProcessGroups([groupId]);
      },
    };
  }

  /** A consumer of this bus's brokers in `groupId`, with the group membership settings. */
  #newConsumer(groupId: string, fetch: { maxWaitTime: number; minBytes: number }): BusConsumer {
    return new Consumer<Buffer | undefined, Buffer | undefined, string, Buffer | undefined>({
      ...clientOptions(this.#connection),
      groupId,
      ...fetch,
      ...MEMBERSHIP,
      maxBytesPerPartition: MAX_BYTES_PER_PARTITION,
      deserializers: BUS_DESERIALIZERS,
    });
  }

  /** A group's fetch settings: FETCH, or a lingering group's longer wait for more bytes. */
  #fetchSettings(group: string): { maxWaitTime: number; minBytes: number } {
    const linger = this.#options.lingerMs?.[group] ?? 0;
    return linger > 0 ? { maxWaitTime: linger, minBytes: LINGER_BYTES } : FETCH;
  }

  /**
   * Starts a consumer with `start` and starts a new one whenever its stream stops with an error:
   * a fetch that fails (its broker went away) ends the client's stream for good, and the process
   * would then read nothing more, silently (verdicts never arrive, events are never recorded).
   * The first start's failure goes to the caller; later ones are retried with backoff until stopped.
   */
  async #supervise(label: string, start: () => Promise<Consumption>): Promise<{ stop(): Promise<void> }> {
    let current: Consumption | undefined;
    let stopped = false;
    const component = `kafka.consumer.${label}`;
    this.#readinessComponents.add(component);
    const watch = (c: Consumption) => {
      current = c;
      this.#consumers.add(c);
      this.#options.readiness?.set(component, READY);
      c.loop.then(
        () => undefined,
        (err: unknown) => {
          if (stopped || this.#closed) return;
          const message = describeKafkaError(err);
          this.#options.readiness?.set(component, { ready: false, reason: `stopped (${message.slice(0, 200)}); starting a new one` });
          this.#options.logger.warn('a Kafka consumer stopped; starting a new one', { consumer: label, error: message });
          this.#consumers.delete(c);
          void closeConsumption(c);
          void relaunch();
        },
      );
    };
    const relaunch = async () => {
      const backoff = new Backoff({ firstMs: HANDLER_BACKOFF.firstMs * 4, maxMs: HANDLER_BACKOFF.maxMs });
      while (!stopped && !this.#closed) {
        const delay = backoff.next();
        await pause(delay);
        if (stopped || this.#closed) return;
        try {
          return watch(await start());
        } catch (err) {
          this.#options.logger.warn('could not start a Kafka consumer; retrying', { consumer: label, error: describeKafkaError(err), retry_in_ms: delay });
        }
      }
    };
    // The first start retries what a loaded or restarting broker answers for a while (a
    // coordinator not found yet, a join that timed out), as connect() does; anything else, or
    // still failing at the deadline, goes to the caller.
    const deadline = Date.now() + FIRST_START_DEADLINE_MS;
    const backoff = new Backoff({ firstMs: 200, maxMs: 2_000 });
    for (;;) {
      try {
        watch(await start());
        break;
      } catch (err) {
        const delay = backoff.next();
        if (this.#closed || !isTransientKafkaError(err) || Date.now() + delay >= deadline) throw err;
        this.#options.logger.warn('could not start a Kafka consumer; retrying', { consumer: label, error: describeKafkaError(err), retry_in_ms: delay });
        await pause(delay);
      }
    }
    return {
      stop: async () => {
        stopped = true;
        this.#options.readiness?.remove(component);
        if (current === undefined) return;
        this.#consumers.delete(current);
        await closeConsumption(current);
      },
    };
  }

  /** A proxy's lease is its own verdict group: held while its consumer heartbeats (leases.ts). */
  get lease(): string | undefined {
    return this.#options.awaitsVerdicts ? this.#verdictGroup : undefined;
  }

  /** This deployment's verdict groups with no member: proxies that died (or are between consumers). */
  async vacantLeases(): Promise<string[]> {
    const prefix = `${this.#options.groupPrefix}.verdicts.`;
    return this.#vacantGroups((g) => g.startsWith(prefix));
  }

  /** This deployment's per-process groups (PROCESS_GROUPS) with no member: left by processes that died, or between consumers. */
  async vacantProcessGroups(): Promise<string[]> {
    const prefixes = PROCESS_GROUPS.map((g) => `${this.#options.groupPrefix}.${g}.`);
    return this.#vacantGroups((g) => prefixes.some((p) => g.startsWith(p)));
  }

  async #vacantGroups(wanted: (groupId: string) => boolean): Promise<string[]> {
    return withAdmin(this.#connection, async (admin) => {
      const ids = [...(await admin.listGroups()).keys()].filter(wanted);
      if (ids.length === 0) return [];
      const groups = await admin.describeGroups({ groups: ids });
      return [...groups.values()].filter((g) => g.members.size === 0 && (g.state === 'EMPTY' || g.state === 'DEAD')).map((g) => g.id);
    });
  }

  /** Deletes a vacant lease's group; the broker refuses while it has a member (GROUP_NOT_EMPTY). */
  async releaseLease(lease: string): Promise<void> {
    await withAdmin(this.#connection, (admin) => admin.deleteGroups({ groups: [lease] }));
  }

  /** Asks the cluster for its brokers: the readiness probe of a process that may be idle. */
  async ping(): Promise<void> {
    await withAdmin(this.#connection, (admin) => admin.metadata({ topics: [], forceUpdate: true }));
  }

  async close(): Promise<void> {
    if (this.#closed) return;
    this.#closed = true;
    for (const c of this.#readinessComponents) this.#options.readiness?.remove(c);
    await this.#producer.close(); // sends under way finish first
    await Promise.all([...this.#consumers].map((c) => closeConsumption(c)));
    this.#consumers.clear();
    await this.#deleteProcessGroups([...(this.#options.awaitsVerdicts ? [this.#verdictGroup] : []), ...this.#processGroups]);
  }

  /**
   * Best effort: this process's own groups, once their consumers left. The groups of a process
   * that crashed are deleted by the ledger once they stayed vacant (leases.ts, lease-sweeper.ts).
   */
  async #deleteProcessGroups(groupIds: string[]): Promise<void> {
    if (groupIds.length === 0) return;
    for (const g of groupIds) this.#processGroups.delete(g);
    try {
      await withAdmin(this.#connection, (admin) => admin.deleteGroups({ groups: groupIds }));
    } catch (err) {
      this.#options.logger.debug('could not delete this process\'s consumer groups', { groups: groupIds, error: describeKafkaError(err) });
    }
  }

  async #ensureTopics(): Promise<void> {
    await withAdmin(this.#connection, async (admin) => {
      const existing = new Set(await admin.listTopics());
      const wanted = [this.#options.eventsTopic, this.#options.verdictsTopic].filter((t) => !existing.has(t));
      if (wanted.length === 0) return;
      const { brokers } = await admin.metadata({ topics: [], forceUpdate: true });
      if (brokers.size < this.#options.replicationFactor) {
        // The broker would only say INVALID_REPLICATION_FACTOR; the fix is a setting, so say which.
        throw new AgateError(ErrorCode.CONFIG_INVALID, `cannot create ${wanted.join(', ')}: bus.replication_factor is ${this.#options.replicationFactor} but the cluster has ${brokers.size} broker${brokers.size === 1 ? '' : 's'}; lower bus.replication_factor or create the topics yourself`);
      }
      const specs = topicSpecs({ ...this.#options, retentionMs: this.#options.retentionMs ?? DEFAULT_RETENTION_MS }).filter((s) => wanted.includes(s.topic));
      await createTopics(admin, specs);
    });
  }

  /**
   * Every proxy instance reads all reply events (its own group): it wakes the commands it waits
   * on and hands termination requests to its reader (#readReplies).
   */
  async #listenForVerdicts(): Promise<void> {
    let first = true;
    await this.#supervise('verdicts', async () => {
      const consumer = this.#newConsumer(this.#verdictGroup, FETCH);
      // The first start reads from the ends the topic has before connect() returns, so every
      // verdict for a command published after that is read (a "latest" resolved later, after
      // the group join, could skip one and time its command out). A restarted consumer resumes
      // from its committed offsets instead.
      let starts: bigint[] | undefined;
      if (first) {
        try {
          starts = (await consumer.listOffsets({ topics: [this.#options.verdictsTopic] })).get(this.#options.verdictsTopic) ?? [];
        } catch (err) {
          await new Promise<void>((resolve) => consumer.close(true, () => resolve()));
          throw err;
        }
      }
      const stream = await consumeOrClose(consumer, {
        topics: [this.#options.verdictsTopic],
        ...(starts === undefined
          ? { mode: 'committed' as const, fallbackMode: 'latest' as const }
          : { mode: 'manual' as const, offsets: starts.map((offset, partition) => ({ topic: this.#options.verdictsTopic, partition, offset })) }),
        // These offsets only say where a restarted consumer resumes; re-reading a second of
        // verdicts is harmless (they are matched to waiters by command id), so they are committed
        // at most once a second, never a request per verdict in the fetch loop.
        autocommit: VERDICT_COMMIT_INTERVAL_MS,
        highWaterMark: READ_AHEAD_RECORDS,
      }, this.#options.logger);
      first = false;
      const reader = new RecordReader(stream);
      const loop = (async () => {
        for (;;) {
          const records = await reader.next(READ_AHEAD_RECORDS);
          if (records === null) return;
          for (const record of records) await this.#replyRecord(record);
        }
      })();
      return { consumer, stream, loop };
    });
  }

  /**
   * A per-process subscription to reply events only (a proxy's termination requests) is served by
   * this process's verdict consumer, over the small verdicts topic, instead of by a consumer of
   * its own fetching and decoding the whole events topic: about 11 µs of client CPU per record,
   * every Command and Response, to find a rare request. It hears what arrives from now on (as
   * `from: 'latest'`) and creates no consumer group. A handler that fails is logged, not retried:
   * the verdicts behind it must not wait (the request itself stays in the record).
   */
  #readReplies(options: SubscribeOptions): Subscription {
    if (!this.#options.awaitsVerdicts) {
      throw new AgateError(ErrorCode.CONFIG_INVALID, `only a process that waits on verdicts (a proxy) reads ${options.types.join(', ')} from the verdicts topic`);
    }
    const reader: ReplyReader = { types: new Set(options.types), accept: options.accept, handler: options.handler, log: this.#options.logger.child({ group: options.group }) };
    this.#replyReaders.add(reader);
    return { close: async () => void this.#replyReaders.delete(reader) };
  }

  /**
   * Wakes the command a verdict-topic record answers, if this process waits on it, and hands the
   * record to the reply readers that want its type. Decoded only when someone wants it: most
   * verdicts answer another process's commands.
   */
  async #replyRecord(message: BusRecord): Promise<void> {
    if (message.value === undefined) return;
    // The verdicts topic is small (reply events only): its type header and key are read as strings.
    const type = message.headers.get('agate-type')?.toString();
    const key = message.key?.toString();
    const waited = (type === undefined || type === 'Verdict') && key !== undefined && this.#waiters.has(key);
    const readers = this.#replyReaders.size === 0 ? [] : [...this.#replyReaders].filter((r) => type === undefined || r.types.has(type));
    if (!waited && readers.length === 0) return;
    const decoded = this.#options.wire.decode(message.value);
    const event = decoded instanceof Promise ? await decoded : decoded;
    if (waited && event.type === 'Verdict') this.#waiters.deliver(event);
    const source: StreamInfo = { stream: `${message.topic}-${message.partition}`, positions: [Number(message.offset) + 1] };
    for (const r of readers) {
      if (!r.types.has(event.type) || (r.accept !== undefined && !r.accept(event))) continue;
      try {
        await r.handler([event], source);
      } catch (err) {
        r.log.error('a reply event\'s handler failed; the event is not handed over again', { error: describeError(err), type: event.type, event_id: event.event_id });
      }
    }
  }
}

/** A per-process subscription served by the verdict consumer. */
interface ReplyReader {
  types: ReadonlySet<string>;
  accept: SubscribeOptions['accept'];
  handler: SubscribeOptions['handler'];
  log: Logger;
}

/** The consumer's record stream; a consumer that could not start one is closed, not left connected. */
async function consumeOrClose(consumer: BusConsumer, options: Parameters<BusConsumer['consume']>[0], logger: Logger): Promise<BusStream> {
  const consuming = consumer.consume(options);
  let timer: NodeJS.Timeout | undefined;
  // A join can hang past every request timeout (seen: a process silent for a minute at start on
  // a loaded machine); given up at JOIN_TIMEOUT_MS, it is retried by the caller with a new member.
  const late = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new AgateError(ErrorCode.BUS_UNAVAILABLE, `joining the Kafka consumer group ${consumer.groupId} took longer than ${JOIN_TIMEOUT_MS} ms`, { retriable: true })), JOIN_TIMEOUT_MS);
  });
  try {
    // Joining waits on the group coordinator, which a loaded broker can make slow: said, not silent.
    return await warnWhileWaiting(logger, `the Kafka consumer group ${consumer.groupId} to be joined`, Promise.race([consuming, late]));
  } catch (err) {
    // A join that completes after its deadline: its stream goes with the consumer.
    consuming.then((stream) => stream.close(() => undefined), () => undefined);
    await new Promise<void>((resolve) => consumer.close(true, () => resolve()));
    throw err;
  } finally {
    clearTimeout(timer);
  }
}

/** Stops a consumer's stream and leaves its group, bounded: with its broker away, leaving would wait for good. */
async function closeConsumption(c: Consumption): Promise<void> {
  const closing = (async () => {
    // Errors are dropped: a consumer being closed has nothing more to say that anyone would act on.
    await new Promise<void>((resolve) => c.stream.close(() => resolve()));
    await new Promise<void>((resolve) => c.consumer.close(true, () => resolve()));
  })();
  let timer: NodeJS.Timeout | undefined;
  await Promise.race([closing, new Promise<void>((r) => (timer = setTimeout(r, CLOSE_TIMEOUT_MS)))]);
  clearTimeout(timer);
  await c.loop.catch(() => undefined);
}

/**
 * A record's headers: its event type, and the W3C `traceparent` its event carries (the header
 * name Kafka instrumentations read, so tools that follow traces through Kafka see Agate's).
 */
export function recordHeaders(event: AgateEvent): Record<string, string> {
  const traceParent = eventTraceParent(event);
  return traceParent === null ? { 'agate-type': event.type } : { 'agate-type': event.type, traceparent: traceParent };
}

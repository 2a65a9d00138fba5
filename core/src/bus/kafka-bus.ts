import { randomBytes } from 'node:crypto';
import type { ConnectionOptions } from 'node:tls';
import { Kafka, logLevel, type Consumer, type KafkaMessage, type Message, type SASLOptions } from 'kafkajs';
import type { AgateEvent, Command, Verdict } from '../../../schemas/src/events.js';
import { eventTraceParent } from '../tracing/traceparent.js';
import { READY, type Readiness } from '../ops/readiness.js';
import { AgateError, ErrorCode, describeError } from '../errors.js';
import type { Logger } from '../log.js';
import { Backoff, pause } from '../retry.js';
import type { Bus, StreamInfo, SubscribeOptions, Subscription, VerdictOutcome, VerdictRequestOptions } from './bus.js';
import { DEFAULT_RETENTION_MS, topicSpecs } from './kafka-topics.js';
import { installKafkajsIdleFix } from './kafkajs-idle-fix.js';
import { ProducerLane } from './kafka-lanes.js';
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
/**
 * Fetch settings. A fetch with nothing to read is held at the broker up to `maxWaitTimeInMs`, and
 * the broker answers it as soon as a record arrives (`minBytes` 1), so a long wait costs no
 * latency: it only sets how often an idle consumer asks again. A 5 ms wait made each consumer ask
 * 200 times a second: about 7.5 % of a core per idle process and 25 % for the broker, against 3 %
 * and 6 % at 500 ms (`npm run bench -- idle`; most of that 3 % was kafkajs spinning, now cut by
 * kafkajs-idle-fix.ts, leaving about 1 %). A 5 s wait saves nothing more per process and only
 * ~1.5 % of the broker, and (kafkajs's default) would hold up a rebalance or a stop behind a fetch
 * nobody interrupts.
 */
const FETCH = { maxWaitTimeInMs: 500, minBytes: 1 } as const;
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
 * The distributed bus over Kafka (kafkajs behind Agate's own interface). Publishing uses an
 * idempotent producer with acks from all in-sync replicas; concurrent publishes share one request
 * (group commit), so the write-ahead wait costs one round trip. Several producers sending in
 * parallel were measured and gave no consistent gain (BENCHMARKS.md, pipeline).
 */
export class KafkaBus implements Bus, ProxyLeases {
  readonly #kafka: Kafka;
  readonly #producer: ProducerLane;
  readonly #consumers = new Set<Consumer>();
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
    installKafkajsIdleFix(); // before the first connection: without it each one spins with no traffic
    this.#processSuffix = `${options.instanceId}.${randomBytes(6).toString('hex')}`;
    this.#verdictGroup = `${options.groupPrefix}.verdicts.${this.#processSuffix}`;
    this.#kafka = new Kafka({
      clientId: `agate-${options.instanceId}`,
      brokers: options.brokers,
      logLevel: logLevel.NOTHING,
      retry: { retries: 5, initialRetryTime: 100, maxRetryTime: 2_000 },
      connectionTimeout: 3_000,
      requestTimeout: 10_000,
      ...(options.tls === undefined ? {} : { ssl: options.tls }),
      ...(options.sasl === undefined ? {} : { sasl: options.sasl as SASLOptions }),
    });
    this.#producer = new ProducerLane(this.#kafka, options.verdictsTopic, options.logger);
  }

  /**
   * A consumer that crashed (its broker went away) restarts itself on a timer, unless the bus
   * is closed by then: a restart after close() would reconnect forever and keep the process alive.
   */
  readonly #consumerRetry = { restartOnFailure: async () => !this.#closed };

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
        if (isTransient(cause) && Date.now() + delay < deadline) {
          options.logger.warn('Kafka is not ready yet; retrying', { error: (cause as Error).message, retry_in_ms: delay });
          await pause(delay);
          continue;
        }
        if (cause instanceof AgateError && cause.code === ErrorCode.CONFIG_INVALID) throw cause;
        throw new AgateError(ErrorCode.BUS_UNAVAILABLE, `cannot connect to Kafka at ${options.brokers.join(', ')}: ${(cause as Error).message}`, { cause, retriable: true });
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
    return this.#producer.enqueue(topicMessages);
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
    const log = this.#options.logger.child({ group: options.group });
    let stopping = false;
    // Counts this member's group joins (each brings a new assignment of partitions); batches
    // carry the count, so a handler knows when a partition may have been elsewhere meanwhile.
    let joins = 0;
    // When each partition's offsets were last committed (Date.now()).
    const lastCommit = new Map<number, number>();
    const supervised = await this.#supervise(options.group, async () => {
      const consumer = this.#kafka.consumer({ groupId, ...this.#fetchSettings(options.group), ...MEMBERSHIP, maxBytesPerPartition: 4 << 20, retry: this.#consumerRetry });
      this.#consumers.add(consumer);
      consumer.on(consumer.events.GROUP_JOIN, () => void (joins += 1));
      await consumer.connect();
      await consumer.subscribe({ topic: this.#options.eventsTopic, fromBeginning: options.from !== 'latest' });
      await consumer.run({
        autoCommit: false,
        eachBatchAutoResolve: false,
        eachBatch: async ({ batch, resolveOffset, heartbeat, commitOffsetsIfNecessary, isRunning, isStale }) => {
          const max = options.maxBatch ?? 2_000;
          const assignment = joins;
          for (let i = 0; i < batch.messages.length && isRunning() && !isStale(); i += max) {
            const slice = batch.messages.slice(i, i + max);
            const events: AgateEvent[] = [];
            const positions: number[] = [];
            for (const m of slice) {
              const type = m.headers?.['agate-type']?.toString();
              if (type !== undefined && !types.has(type)) continue;
              if (m.value === null) continue;
              const e = await this.#options.wire.decode(m.value);
              if (types.has(e.type) && (options.accept === undefined || options.accept(e))) (events.push(e), positions.push(Number(m.offset) + 1));
            }
            if (events.length > 0) {
              const backoff = new Backoff(HANDLER_BACKOFF);
              for (;;) {
                try {
                  await options.handler(events, { stream: `${batch.topic}-${batch.partition}`, positions, assignment });
                  break;
                } catch (err) {
                  const delay = backoff.next();
                  log.error('event handler failed; retrying the batch', { error: describeError(err), events: events.length, retry_in_ms: delay });
                  if (stopping || !isRunning() || isStale()) return; // uncommitted: redelivered to the partition's owner
                  await heartbeat();
                  await pause(delay);
                }
              }
            }
            // Commit only after the handler succeeded: at least once in, idempotent handlers.
            // A slice with nothing of this subscription's types (a query process's session-end
            // reader sees every Command, Verdict and Response) needs no commit of its own: reading
            // it again after a restart finds nothing again. Committing each such slice was a
            // request per fetch in the reader's loop, so it rides the next handled slice's
            // commit, or one at most every SKIPPED_COMMIT_INTERVAL_MS.
            resolveOffset(slice[slice.length - 1]!.offset);
            if (events.length > 0 || Date.now() - (lastCommit.get(batch.partition) ?? 0) >= SKIPPED_COMMIT_INTERVAL_MS) {
              await commitOffsetsIfNecessary({ topics: [{ topic: batch.topic, partitions: [{ partition: batch.partition, offset: (BigInt(slice[slice.length - 1]!.offset) + 1n).toString() }] }] });
              lastCommit.set(batch.partition, Date.now());
            }
            await heartbeat();
          }
        },
      });
      return consumer;
    });
    return {
      close: async () => {
        stopping = true;
        await supervised.stop();
        if (options.perProcess) await this.#deleteProcessGroups([groupId]);
      },
    };
  }

  /** A group's fetch settings: FETCH, or a lingering group's longer wait for more bytes. */
  #fetchSettings(group: string): { maxWaitTimeInMs: number; minBytes: number } {
    const linger = this.#options.lingerMs?.[group] ?? 0;
    return linger > 0 ? { maxWaitTimeInMs: linger, minBytes: LINGER_BYTES } : FETCH;
  }

  /**
   * Starts a consumer with `start` and starts a new one whenever kafkajs gives up on it: after a
   * broker restart a consumer can crash with an error kafkajs does not restart from, and would
   * then read nothing more, silently (verdicts never arrive, events are never recorded). The
   * first start's failure goes to the caller; later ones are retried with backoff until stopped.
   */
  async #supervise(label: string, start: () => Promise<Consumer>): Promise<{ stop(): Promise<void> }> {
    let current: Consumer | undefined;
    let stopped = false;
    const component = `kafka.consumer.${label}`;
    this.#readinessComponents.add(component);
    const watch = (consumer: Consumer) => {
      current = consumer;
      this.#options.readiness?.set(component, READY);
      consumer.on(consumer.events.CRASH, ({ payload }) => {
        if (payload.restart || stopped || this.#closed) return;
        this.#options.readiness?.set(component, { ready: false, reason: `stopped (${payload.error.message.slice(0, 200)}); starting a new one` });
        this.#options.logger.warn('a Kafka consumer stopped for good; starting a new one', { consumer: label, error: payload.error.message });
        this.#consumers.delete(consumer);
        void consumer.disconnect().catch(() => undefined);
        void relaunch();
      });
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
          this.#options.logger.warn('could not start a Kafka consumer; retrying', { consumer: label, error: describeError(err), retry_in_ms: delay });
        }
      }
    };
    watch(await start());
    return {
      stop: async () => {
        stopped = true;
        this.#options.readiness?.remove(component);
        if (current === undefined) return;
        this.#consumers.delete(current);
        await current.disconnect();
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
    const admin = this.#kafka.admin();
    try {
      await admin.connect();
      const ids = (await admin.listGroups()).groups.map((g) => g.groupId).filter(wanted);
      if (ids.length === 0) return [];
      const { groups } = await admin.describeGroups(ids);
      return groups.filter((g) => g.members.length === 0 && (g.state === 'Empty' || g.state === 'Dead')).map((g) => g.groupId);
    } finally {
      await admin.disconnect().catch(() => undefined);
    }
  }

  /** Deletes a vacant lease's group; the broker refuses while it has a member (GROUP_NOT_EMPTY). */
  async releaseLease(lease: string): Promise<void> {
    const admin = this.#kafka.admin();
    try {
      await admin.connect();
      await admin.deleteGroups([lease]);
    } finally {
      await admin.disconnect().catch(() => undefined);
    }
  }

  /** Asks the cluster for its brokers: the readiness probe of a process that may be idle. */
  async ping(): Promise<void> {
    const admin = this.#kafka.admin();
    try {
      await admin.connect();
      await admin.describeCluster();
    } finally {
      await admin.disconnect().catch(() => undefined);
    }
  }

  async close(): Promise<void> {
    if (this.#closed) return;
    this.#closed = true;
    for (const c of this.#readinessComponents) this.#options.readiness?.remove(c);
    await this.#producer.close(); // sends under way finish first
    await Promise.all([...this.#consumers].map((c) => c.disconnect().catch(() => undefined)));
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
    const admin = this.#kafka.admin();
    try {
      await admin.connect();
      await admin.deleteGroups(groupIds);
    } catch (err) {
      this.#options.logger.debug('could not delete this process\'s consumer groups', { groups: groupIds, error: describeError(err) });
    } finally {
      await admin.disconnect().catch(() => undefined);
    }
  }

  async #ensureTopics(): Promise<void> {
    const admin = this.#kafka.admin();
    await admin.connect();
    try {
      const existing = new Set(await admin.listTopics());
      const wanted = [this.#options.eventsTopic, this.#options.verdictsTopic].filter((t) => !existing.has(t));
      if (wanted.length > 0) {
        const { brokers } = await admin.describeCluster();
        if (brokers.length < this.#options.replicationFactor) {
          // kafkajs would only say "Topic creation errors"; the fix is a setting, so say which.
          throw new AgateError(ErrorCode.CONFIG_INVALID, `cannot create ${wanted.join(', ')}: bus.replication_factor is ${this.#options.replicationFactor} but the cluster has ${brokers.length} broker${brokers.length === 1 ? '' : 's'}; lower bus.replication_factor or create the topics yourself`);
        }
        const specs = topicSpecs({ ...this.#options, retentionMs: this.#options.retentionMs ?? DEFAULT_RETENTION_MS }).filter((s) => wanted.includes(s.topic));
        await admin.createTopics({
          waitForLeaders: true,
          topics: specs.map((s) => ({ topic: s.topic, numPartitions: s.partitions, replicationFactor: s.replicationFactor, configEntries: Object.entries(s.configs).map(([name, value]) => ({ name, value })) })),
        });
      }
    } finally {
      await admin.disconnect();
    }
  }

  /**
   * Every proxy instance reads all reply events (its own group): it wakes the commands it waits
   * on and hands termination requests to its reader (#readReplies).
   */
  async #listenForVerdicts(): Promise<void> {
    let first = true;
    await this.#supervise('verdicts', async () => {
      // A new group starting at "latest" resolves that offset only at its first fetch, after it
      // joined, which is after run() returns: a verdict written in between was skipped and its
      // command timed out. The first start reads from the ends the topic had before connect()
      // returned, so every verdict for a command published after that is read. A restarted
      // consumer resumes from its committed offsets instead.
      const starts = first ? await this.#topicEnds(this.#options.verdictsTopic) : [];
      first = false;
      const consumer = this.#kafka.consumer({ groupId: this.#verdictGroup, ...FETCH, ...MEMBERSHIP, retry: this.#consumerRetry });
      this.#consumers.add(consumer);
      await consumer.connect();
      await consumer.subscribe({ topic: this.#options.verdictsTopic, fromBeginning: false });
      const running = consumer.run({
        // kafkajs's autoCommit commits after every batch, a request in this consumer's fetch loop
        // for each verdict read (one per statement under light load). These offsets only say
        // where a restarted consumer resumes; re-reading a second of verdicts is harmless (they
        // are matched to waiters by command id), so they are committed at most once a second.
        autoCommit: false,
        autoCommitInterval: VERDICT_COMMIT_INTERVAL_MS,
        eachBatch: async ({ batch, resolveOffset, commitOffsetsIfNecessary }) => {
          for (const message of batch.messages) {
            await this.#replyRecord(message, batch.topic, batch.partition);
            resolveOffset(message.offset);
          }
          await commitOffsetsIfNecessary();
        },
      });
      await running;
      for (const { partition, offset } of starts) consumer.seek({ topic: this.#options.verdictsTopic, partition, offset });
      return consumer;
    });
  }

  /**
   * A per-process subscription to reply events only (a proxy's termination requests) is served by
   * this process's verdict consumer, over the small verdicts topic, instead of by a consumer of
   * its own fetching and decoding the whole events topic: about 11 µs of kafkajs CPU per record,
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
  async #replyRecord(message: KafkaMessage, topic: string, partition: number): Promise<void> {
    if (message.value === null) return;
    const type = message.headers?.['agate-type']?.toString();
    const key = message.key?.toString();
    const waited = (type === undefined || type === 'Verdict') && key !== undefined && this.#waiters.has(key);
    const readers = this.#replyReaders.size === 0 ? [] : [...this.#replyReaders].filter((r) => type === undefined || r.types.has(type));
    if (!waited && readers.length === 0) return;
    const event = await this.#options.wire.decode(message.value);
    if (waited && event.type === 'Verdict') this.#waiters.deliver(event);
    const source: StreamInfo = { stream: `${topic}-${partition}`, positions: [Number(message.offset) + 1] };
    for (const r of readers) {
      if (!r.types.has(event.type) || (r.accept !== undefined && !r.accept(event))) continue;
      try {
        await r.handler([event], source);
      } catch (err) {
        r.log.error('a reply event\'s handler failed; the event is not handed over again', { error: describeError(err), type: event.type, event_id: event.event_id });
      }
    }
  }

  /** The next offset of each partition of a topic. */
  async #topicEnds(topic: string): Promise<{ partition: number; offset: string }[]> {
    const admin = this.#kafka.admin();
    try {
      await admin.connect();
      return (await admin.fetchTopicOffsets(topic)).map(({ partition, high }) => ({ partition, offset: high }));
    } finally {
      await admin.disconnect().catch(() => undefined);
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

/**
 * Whether `connect` should try again: kafkajs gives up on an unreachable broker after its own few
 * retries with a "non-retriable" NumberOfRetriesExceeded, which at start-up only means "not up yet".
 */
function isTransient(err: unknown): boolean {
  if ((err as { retriable?: boolean }).retriable === true) return true;
  const names = ['KafkaJSConnectionError', 'KafkaJSNumberOfRetriesExceeded', 'KafkaJSRequestTimeoutError', 'KafkaJSBrokerNotFound', 'KafkaJSConnectionClosedError', 'KafkaJSLockTimeout'];
  return names.includes((err as Error).name) || (err instanceof Error && err.cause !== undefined && err.cause !== err && isTransient(err.cause));
}

/**
 * A record's headers: its event type, and the W3C `traceparent` its event carries (the header
 * name Kafka instrumentations read, so tools that follow traces through Kafka see Agate's).
 */
export function recordHeaders(event: AgateEvent): Record<string, string> {
  const traceParent = eventTraceParent(event);
  return traceParent === null ? { 'agate-type': event.type } : { 'agate-type': event.type, traceparent: traceParent };
}

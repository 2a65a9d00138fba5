import { ConnectionPool, ListOffsetTimestamps, type Consumer, type KafkaRecord } from '@platformatic/kafka';
import { clientOptions, type KafkaConnection } from './kafka-client.js';

/** A record batch's attribute bit for a transaction's control marker (not a record of the topic). */
const IS_CONTROL = 0b10_0000;

/** One partition's records from the fetches since the last `next`: each record beside its offset. */
export interface PartitionRecords {
  partition: number;
  records: KafkaRecord[];
  offsets: number[];
}

export interface FetchLoopOptions {
  topic: string;
  /** Where a partition with no committed offset starts. */
  from: 'earliest' | 'latest';
  maxWaitTime: number;
  minBytes: number;
  maxBytesPerPartition: number;
  /** Records held read ahead of the reader before fetching stops (backpressure). */
  readAhead: number;
}

/** The bus's consumers (kafka-bus.ts); a fetch returns records as the client parsed them, whatever the deserializers. */
type AnyConsumer = Consumer<Buffer | undefined, Buffer | undefined, string, Buffer | undefined>;
type FetchResponse = Awaited<ReturnType<AnyConsumer['fetch']>>;

/**
 * Reads the partitions a group member is assigned, by fetching itself: the client's consumer
 * stream builds, per record, a message object with a bound commit, a header Map, a BigInt offset
 * and a diagnostics context, and pushes it through an object-mode Readable. That was about three
 * times what parsing the fetch response costs (BENCHMARKS.md, issue 21), for every record both the
 * ledger and the policy read. Here a record stays as the client parsed it.
 *
 * What it keeps from the stream: the group (joins, heartbeats, assignments) stays the client's;
 * after each join the positions are read again from the group's commits (a partition with none
 * keeps the position it had, else starts at `from`); a fetch per partition leader, each leader's
 * answered on its own, so an idle leader's held fetch never delays a busy one; fetches on
 * connections of their own, so a fetch the broker holds never delays a heartbeat or a commit;
 * records before the offset asked for (a batch is returned whole) are skipped; reading ahead stops
 * at `readAhead` records. Any failed fetch ends the loop (`next` throws): the caller starts a new
 * member, which resumes from the commits.
 */
export class FetchLoop {
  readonly #consumer: AnyConsumer;
  readonly #pool: ConnectionPool;
  readonly #options: FetchLoopOptions;
  /** The next offset to fetch, per partition. */
  readonly #positions = new Map<number, bigint>();
  /** Leaders with a fetch under way. */
  readonly #inflight = new Set<number>();
  #queue: PartitionRecords[] = [];
  #queued = 0;
  /**
   * Counts the member's joins. A fetch answered after a join is dropped without moving its
   * positions: they are read again from the commits, or stay where that fetch started.
   */
  #generation = 0;
  #refreshing: Promise<void> | undefined;
  #pumping = false;
  #pumpAgain = false;
  #error: unknown;
  #stopped = false;
  #wake: (() => void) | undefined;
  // Records already queued stay: the reader skips the partitions no longer assigned, and handles
  // the others before what the new positions bring (read again from the last commit).
  readonly #onJoin = () => {
    this.#generation += 1;
    this.#refresh();
  };

  constructor(consumer: AnyConsumer, connection: KafkaConnection, options: FetchLoopOptions) {
    this.#consumer = consumer;
    this.#options = options;
    this.#pool = new ConnectionPool(connection.clientId, clientOptions(connection));
  }

  /** Joins the group for the topic and reads the positions; the first records follow. */
  async start(): Promise<void> {
    this.#consumer.topics.track(this.#options.topic);
    await this.#consumer.joinGroup({});
    this.#consumer.on('consumer:group:join', this.#onJoin);
    this.#refresh();
    await this.#refreshing;
  }

  /** The records read since the last call (whole fetches, about `max` records), waiting while there are none; null once stopped. */
  async next(max: number): Promise<PartitionRecords[] | null> {
    for (;;) {
      if (this.#stopped) return null;
      if (this.#error !== undefined) throw this.#error;
      if (this.#queue.length > 0) {
        const out = new Map<number, PartitionRecords>();
        let taken = 0;
        while (this.#queue.length > 0 && taken < max) {
          const chunk = this.#queue.shift()!;
          taken += chunk.records.length;
          const same = out.get(chunk.partition);
          if (same === undefined) out.set(chunk.partition, chunk);
          else {
            for (const r of chunk.records) same.records.push(r);
            for (const o of chunk.offsets) same.offsets.push(o);
          }
        }
        this.#queued -= taken;
        this.#pump();
        return [...out.values()];
      }
      await new Promise<void>((resolve) => (this.#wake = resolve));
    }
  }

  /** Stops fetching; a fetch under way is abandoned with its connections. */
  async stop(): Promise<void> {
    this.#stopped = true;
    this.#consumer.off('consumer:group:join', this.#onJoin);
    this.#poke();
    await new Promise<void>((resolve) => this.#pool.close(() => resolve()));
  }

  #poke(): void {
    const wake = this.#wake;
    this.#wake = undefined;
    wake?.();
  }

  #fail(err: unknown): void {
    if (this.#stopped || this.#error !== undefined) return;
    this.#error = err ?? new Error('a Kafka request failed and said nothing more');
    this.#poke();
  }

  #assigned(): number[] {
    return this.#consumer.assignments?.find((a) => a.topic === this.#options.topic)?.partitions ?? [];
  }

  /** Reads the positions of the assigned partitions from the group's commits, then fetches. */
  #refresh(): void {
    const generation = this.#generation;
    const { topic } = this.#options;
    const refreshing = (async () => {
      const partitions = this.#assigned();
      if (partitions.length === 0) return;
      const committed = (await this.#consumer.listCommittedOffsets({ topics: [{ topic, partitions }] })).get(topic) ?? [];
      let ends: bigint[] | undefined;
      for (const p of partitions) {
        const offset = committed[p] ?? -1n;
        if (offset >= 0n) this.#positions.set(p, offset);
        else if (!this.#positions.has(p)) {
          ends ??= (await this.#consumer.listOffsets({ topics: [topic], timestamp: this.#options.from === 'earliest' ? ListOffsetTimestamps.EARLIEST : ListOffsetTimestamps.LATEST })).get(topic) ?? [];
          const end = ends[p];
          if (end === undefined) throw new Error(`no offsets for partition ${p} of ${topic}`);
          this.#positions.set(p, end);
        }
      }
    })();
    this.#refreshing = refreshing;
    refreshing.then(
      () => {
        if (this.#refreshing === refreshing) this.#refreshing = undefined;
        if (generation === this.#generation) this.#pump();
      },
      (err: unknown) => this.#fail(err),
    );
  }

  /** Starts a fetch at every leader of assigned partitions that has none under way, while the reader keeps up. */
  #pump(): void {
    if (this.#pumping) return void (this.#pumpAgain = true);
    if (this.#stopped || this.#error !== undefined || this.#refreshing !== undefined || this.#queued >= this.#options.readAhead) return;
    const partitions = this.#assigned();
    if (partitions.length === 0) return;
    this.#pumping = true;
    const { topic } = this.#options;
    this.#consumer.metadata({ topics: [topic] }, (error, metadata) => {
      this.#pumping = false;
      if (error || metadata === undefined) return this.#fail(error);
      const again = this.#pumpAgain;
      this.#pumpAgain = false;
      const info = metadata.topics.get(topic);
      if (info === undefined) return this.#fail(new Error(`no metadata for ${topic}`));
      const byLeader = new Map<number, number[]>();
      for (const p of partitions) {
        const leader = info.partitions[p]?.leader;
        if (leader === undefined || leader < 0 || this.#inflight.has(leader) || !this.#positions.has(p)) continue;
        const list = byLeader.get(leader);
        if (list === undefined) byLeader.set(leader, [p]);
        else list.push(p);
      }
      for (const [leader, list] of byLeader) this.#fetch(leader, info.id, list);
      if (again) this.#pump();
    });
  }

  #fetch(leader: number, topicId: string, partitions: number[]): void {
    const generation = this.#generation;
    const asked = new Map<number, bigint>();
    const requested = partitions.map((partition) => {
      const fetchOffset = this.#positions.get(partition)!;
      asked.set(partition, fetchOffset);
      // Leader epoch -1: the broker does not check it (no fencing on a leader change; a
      // partition that moved fails the fetch instead, and the member starts again).
      return { partition, fetchOffset, partitionMaxBytes: this.#options.maxBytesPerPartition, currentLeaderEpoch: -1, lastFetchedEpoch: -1 };
    });
    this.#inflight.add(leader);
    this.#consumer.fetch(
      { node: leader, topics: [{ topicId, partitions: requested }], maxWaitTime: this.#options.maxWaitTime, minBytes: this.#options.minBytes, maxBytes: this.#options.maxBytesPerPartition * partitions.length, connectionPool: this.#pool },
      (error, response) => {
        this.#inflight.delete(leader);
        if (this.#stopped) return;
        if (error || response === undefined) return this.#fail(error);
        if (generation === this.#generation) this.#take(response, asked);
        this.#pump();
      },
    );
  }

  /** Queues a fetch's records, from the offsets asked for, and moves the positions past them. */
  #take(response: FetchResponse, asked: ReadonlyMap<number, bigint>): void {
    let added = 0;
    for (const topicResponse of response.responses) {
      for (const p of topicResponse.partitions) {
        const batches = p.records;
        const from = asked.get(p.partitionIndex);
        if (batches === undefined || batches.length === 0 || from === undefined) continue;
        const records: KafkaRecord[] = [];
        const offsets: number[] = [];
        const first = Number(from);
        for (const batch of batches) {
          if ((batch.attributes & IS_CONTROL) !== 0) continue;
          const base = Number(batch.firstOffset);
          for (const r of batch.records) {
            const offset = base + r.offsetDelta;
            if (offset < first) continue; // the part of a batch before the offset asked for: read already
            records.push(r);
            offsets.push(offset);
          }
        }
        const last = batches[batches.length - 1]!;
        this.#positions.set(p.partitionIndex, last.firstOffset + BigInt(last.lastOffsetDelta) + 1n);
        if (records.length === 0) continue;
        this.#queue.push({ partition: p.partitionIndex, records, offsets });
        added += records.length;
      }
    }
    this.#queued += added;
    if (added > 0) this.#poke();
  }
}

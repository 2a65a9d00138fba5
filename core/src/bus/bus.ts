import type { AgateEvent, Command, EventType, Verdict } from '../../../schemas/src/events.js';

/**
 * The streaming backbone as the services see it. Two implementations: `LocalBus` (embedded,
 * one process, a local append-only log) and the Kafka bus (distributed). Neither leaks through:
 * services publish typed events, subscribe with a consumer group, and ask for verdicts.
 */
export interface Bus {
  /**
   * Resolves only once the event is durable (Kafka: acknowledged by all in-sync replicas;
   * embedded: written and fsynced to the local log). Rejects with a retriable `BUS_WRITE_FAILED`.
   */
  publish(event: AgateEvent): Promise<void>;

  /**
   * Publishes the command durably (write-ahead), then waits for the first verdict on it for at
   * most `deadlineMs`. A missing verdict is `{ kind: 'timeout' }`, never an exception: the caller
   * refuses the command and records why (and the command itself, if its publish then fails).
   * A publish that fails before the deadline rejects. With `onHold`, a `hold` verdict is reported
   * to it and the wait goes on, up to the hold's expiry plus `deadlineMs`, for the final verdict.
   */
  requestVerdict(command: Command, deadlineMs: number, options?: VerdictRequestOptions): Promise<VerdictOutcome>;

  /**
   * Delivers events of the given types to `handler` in publish order, in batches. Members of one
   * group share the stream; each group sees every event once it commits (at least once: handlers
   * must be idempotent by `event_id`). A handler that throws is retried with backoff, so a
   * failing store delays recording but loses nothing.
   */
  subscribe(options: SubscribeOptions): Promise<Subscription>;

  /**
   * The name under which the backbone knows this process is alive, when it holds a lease (a
   * proxy on Kafka; see leases.ts). Its sessions carry it, so they can be closed if it dies.
   */
  readonly lease?: string;

  /**
   * Why the bus cannot do its work, e.g. a consumer group that stopped on a record it cannot
   * read (it never skips one); undefined when it can. /healthz and /readyz report it.
   */
  problem?(): string | undefined;

  /**
   * The embedded bus only (policy runs in the same process): from now on each published command
   * is decided by `decider` as it is written, and the command and what the decider returns (its
   * verdict, after an ApprovalRequested for a hold) share one durable write; a waiter hears the
   * verdict only once that write is durable. So a command never runs under a verdict a crash
   * can lose, at one fdatasync per statement. `undefined` withdraws the decider (its service
   * stopped). Absent on Kafka, where the policy service's verdict is replicated to the in-sync
   * replicas before any proxy can read it.
   */
  decideInline?(decider: InlineDecider | undefined): void;

  close(): Promise<void>;
}

/** Decides commands as they are written (`Bus.decideInline`). */
export interface InlineDecider {
  /**
   * The events to write right after `command`, in order (none when the command gets no
   * verdict). It must not throw: a command it cannot decide is refused.
   */
  decide(command: Command): readonly AgateEvent[];
  /**
   * Told once the events `decide` returned are durable, before any waiter hears their verdict;
   * never told of a write that failed. What follows from a decision (a hold's expiry) starts
   * here, so it never acts on a decision the log lacks.
   */
  written(events: readonly AgateEvent[]): void;
}

export interface VerdictRequestOptions {
  /** Called once per `hold` verdict (the command awaits a human); the wait continues. */
  onHold?: (verdict: Verdict) => void;
}

export type VerdictOutcome =
  | { kind: 'verdict'; verdict: Verdict }
  /**
   * `published` settles with the command's own publish, which may still be in flight at the
   * deadline (a broker away) and fail later: the caller then records the command itself.
   */
  | { kind: 'timeout'; published: Promise<void> };

/** Where a batch came from: one totally ordered stream (a Kafka partition, or the local log). */
export interface StreamInfo {
  /** Stable id, e.g. `agate.events-3`; the ledger keeps one hash chain per stream. */
  stream: string;
  /**
   * The batch's events exactly as the bus encoded them (EventCodec single-object encoding),
   * index for index, when the bus has them at hand (the embedded log; Kafka with a wire that
   * carries that encoding, SingleObjectWire), so a consumer that
   * stores the encoding (the ledger) need not encode again.
   */
  encoded?: readonly Buffer[];
  /**
   * Each event's position in the stream just past it (the offset a consumer resumes from after
   * it: the embedded log's next byte, a Kafka offset + 1), index for index; it grows along the
   * stream. The ledger stores it with each record, so a replay from an older position (a lost
   * consumer offset) is recognised exactly, whatever its length.
   */
  positions?: readonly number[];
  /**
   * Which assignment of the stream to this consumer delivered the batch, when the bus can move a
   * stream between the members of a group (Kafka partitions on a rebalance); it changes whenever
   * the stream may have been another member's in between. A consumer keeping state per stream
   * (the ledger's chain head) reloads it when this changes. Absent on the embedded log, which
   * has one consumer per group.
   */
  assignment?: number;
}

export interface SubscribeOptions {
  group: string;
  types: readonly EventType[];
  /**
   * Of the events of `types`, only those this accepts are handed over (the console takes only
   * `hold` verdicts of the Verdict every statement has); a pure function of the event. On the
   * embedded bus a group waiting at the end of the log moves past the others without a turn of
   * its loop, so it is not woken per statement; Kafka drops them from what it fetched.
   */
  accept?: (event: AgateEvent) => boolean;
  /**
   * Where a group with no committed position starts reading: `earliest` (the default: every
   * retained event) or `latest` (only events published from now on, for a reader that acts on
   * requests, such as a proxy's termination requests, and has no use for old ones). Kafka only;
   * on the embedded bus everything runs in one process and no such reader is started.
   */
  from?: 'earliest' | 'latest';
  /**
   * A group of this process alone (one of PROCESS_GROUPS; Kafka only): every process reads every
   * event, so the group is named after the process (its instance id and a random suffix, like its
   * verdict group) and deleted when the subscription or the bus closes. One a process that died
   * left behind is deleted by the ledger once it has stayed without a member (lease-sweeper.ts).
   * A subscription to reply events only (reply-events.ts: a proxy's termination requests) needs
   * no group: it is served by the proxy's verdict consumer, from now on, and is refused in a
   * process that waits on no verdicts.
   */
  perProcess?: boolean;
  /** Every batch comes from one stream, in that stream's order. */
  handler: (batch: readonly AgateEvent[], source: StreamInfo) => Promise<void>;
  /** Largest batch handed to the handler at once. */
  maxBatch?: number;
  /**
   * How many batches the handler may hold at once (default 1): the next batch comes before the
   * promise for the one before has settled. The handler must then apply batches in the order
   * given and fail any batch handed over after one that failed; the failed batch and all after
   * it are delivered again. The embedded bus honours it; Kafka delivers one batch at a time.
   */
  inFlight?: number;
}

export interface Subscription {
  /** Stops delivery after the batch in progress and commits its position. */
  close(): Promise<void>;
}

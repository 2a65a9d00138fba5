import { mkdirSync, readFileSync, renameSync, writeFileSync, existsSync } from 'node:fs';
import { join } from 'node:path';
import { EventCodec } from '../../../schemas/src/codec.js';
import type { AgateEvent, Command, Verdict } from '../../../schemas/src/events.js';
import { AgateError, ErrorCode, describeError } from '../errors.js';
import type { Logger } from '../log.js';
import type { Bus, SubscribeOptions, Subscription, VerdictOutcome } from './bus.js';
import { LocalLog } from './local-log.js';

export interface LocalBusOptions {
  /** Directory for the event log and the consumer groups' committed positions. */
  dir: string;
  /** fdatasync every append (write-ahead); only tests of throughput turn this off. */
  fsync: boolean;
  logger: Logger;
}

/**
 * The embedded bus: every event is appended to one fsynced local log before `publish`
 * resolves, and consumer groups read that log from their committed position, so a crash
 * between recording and storing loses nothing.
 */
export class LocalBus implements Bus {
  readonly #log: LocalLog;
  readonly #codec = new EventCodec();
  readonly #dir: string;
  readonly #logger: Logger;
  readonly #waiters = new Map<string, (verdict: Verdict) => void>();
  readonly #consumers = new Set<LocalConsumer>();
  #closed = false;

  constructor(options: LocalBusOptions) {
    this.#dir = options.dir;
    this.#logger = options.logger;
    mkdirSync(join(options.dir, 'groups'), { recursive: true });
    this.#log = new LocalLog(join(options.dir, 'events.log'), { fsync: options.fsync });
  }

  async publish(event: AgateEvent): Promise<void> {
    if (this.#closed) throw new AgateError(ErrorCode.BUS_CLOSED, 'the bus is closed');
    await this.#log.append([this.#codec.encode(event)]);
    if (event.type === 'Verdict') this.#waiters.get(event.command_id)?.(event);
    for (const c of this.#consumers) c.wake();
  }

  requestVerdict(command: Command, deadlineMs: number): Promise<VerdictOutcome> {
    return new Promise((resolve, reject) => {
      // Register before publishing so a fast verdict cannot slip past the waiter.
      const timer = setTimeout(() => {
        this.#waiters.delete(command.event_id);
        resolve({ kind: 'timeout' });
      }, deadlineMs);
      this.#waiters.set(command.event_id, (verdict) => {
        clearTimeout(timer);
        this.#waiters.delete(command.event_id);
        resolve({ kind: 'verdict', verdict });
      });
      this.publish(command).catch((err: unknown) => {
        clearTimeout(timer);
        this.#waiters.delete(command.event_id);
        reject(err);
      });
    });
  }

  async subscribe(options: SubscribeOptions): Promise<Subscription> {
    const consumer = new LocalConsumer(this.#log, this.#codec, join(this.#dir, 'groups', `${options.group}.offset`), options, this.#logger.child({ group: options.group }));
    this.#consumers.add(consumer);
    consumer.start();
    return {
      close: async () => {
        this.#consumers.delete(consumer);
        await consumer.stop();
      },
    };
  }

  async close(): Promise<void> {
    if (this.#closed) return;
    this.#closed = true;
    await Promise.all([...this.#consumers].map((c) => c.stop()));
    this.#consumers.clear();
    await this.#log.close();
  }
}

/** The local log is one stream. */
export const LOCAL_STREAM = { stream: 'embedded' } as const;

const MIN_BACKOFF_MS = 50;
const MAX_BACKOFF_MS = 5_000;

/** One consumer group member reading the local log sequentially. */
class LocalConsumer {
  readonly #types: ReadonlySet<string>;
  #position: number;
  #wake: (() => void) | undefined;
  #stopped = false;
  #loop: Promise<void> | undefined;

  constructor(
    private readonly log: LocalLog,
    private readonly codec: EventCodec,
    private readonly offsetFile: string,
    private readonly options: SubscribeOptions,
    private readonly logger: Logger,
  ) {
    this.#types = new Set(options.types);
    this.#position = existsSync(offsetFile) ? Number(readFileSync(offsetFile, 'utf8')) || 0 : 0;
  }

  start(): void {
    this.#loop = this.#run().catch((err: unknown) => {
      // A record that cannot be decoded is never skipped: stop this group loudly instead.
      this.logger.error('consumer stopped: cannot read the event log', { error: describeError(err), position: this.#position });
    });
  }

  wake(): void {
    this.#wake?.();
  }

  async stop(): Promise<void> {
    this.#stopped = true;
    this.wake();
    await this.#loop;
  }

  async #run(): Promise<void> {
    for (;;) {
      const records = this.log.read(this.#position, this.options.maxBatch ?? 500);
      if (records.length === 0) {
        // Stopping drains first: everything appended before stop() is handed over.
        if (this.#stopped) return;
        await new Promise<void>((resolve) => (this.#wake = resolve));
        this.#wake = undefined;
        continue;
      }
      const batch = records.map((r) => this.codec.decode(r.bytes)).filter((e) => this.#types.has(e.type));
      if (batch.length > 0 && !(await this.#deliver(batch))) return;
      this.#position = records[records.length - 1]!.next;
      this.#commit();
    }
  }

  /** Hands the batch to the handler until it succeeds; false when stopped meanwhile. */
  async #deliver(batch: readonly AgateEvent[]): Promise<boolean> {
    let backoff = MIN_BACKOFF_MS;
    for (;;) {
      try {
        await this.options.handler(batch, LOCAL_STREAM);
        return true;
      } catch (err) {
        this.logger.error('event handler failed; retrying the batch', { error: describeError(err), events: batch.length, retry_in_ms: backoff });
        await new Promise((r) => setTimeout(r, backoff));
        backoff = Math.min(backoff * 2, MAX_BACKOFF_MS);
        if (this.#stopped) return false;
      }
    }
  }

  #commit(): void {
    // Not fsynced: a lost commit only means redelivery, and handlers are idempotent.
    writeFileSync(this.offsetFile + '.tmp', String(this.#position));
    renameSync(this.offsetFile + '.tmp', this.offsetFile);
  }
}

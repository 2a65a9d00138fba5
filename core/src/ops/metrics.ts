import { Counter, Gauge, Registry, collectDefaultMetrics } from 'prom-client';
import { HotCounter, HotHistogram } from './hot-metrics.js';

/*
 * Agate's Prometheus metrics, served at `/metrics` on the ops listener. One registry per process,
 * like readiness: the services of one process report into the same scrape. Label values are
 * bounded: protocols, decisions, configured rule ids, event types, consumer groups, the stable
 * reason codes of AuthenticationFailed. Never a subject, a target address or command text.
 */
export const metricsRegistry = new Registry();
// The event-loop delay monitor samples with a repeating timer: prom-client's default of 10 ms woke
// an idle process 100 times a second. Sampling every 100 ms still measures each delay exactly.
collectDefaultMetrics({ register: metricsRegistry, prefix: 'agate_', eventLoopMonitoringPrecision: 100 });

const registers = [metricsRegistry];

/** Latency buckets from half a millisecond (an embedded verdict) to ten seconds (a deadline). */
const LATENCY_BUCKETS = [0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10];

export const metrics = {
  // Recorded for every statement: label sets resolved without building a key (hot-metrics.ts).
  commands: new HotCounter({
    name: 'agate_commands_total',
    help: 'Commands decided by this proxy, by protocol, decision (allow, deny, hold, mask, or timeout when no verdict came) and deciding rule ("none" for the default).',
    labelNames: ['protocol', 'decision', 'rule'] as const,
    registers,
  }),
  verdictLatency: new HotHistogram({
    name: 'agate_verdict_latency_seconds',
    help: 'From publishing a command (write-ahead) to its first verdict, as the proxy waits for it.',
    labelNames: ['protocol', 'decision'] as const,
    buckets: LATENCY_BUCKETS,
    registers,
  }),
  publishLatency: new HotHistogram({
    name: 'agate_bus_publish_seconds',
    help: 'Time until the bus reports an event durable (Kafka: acknowledged by all in-sync replicas; embedded: fsynced), by event type and outcome.',
    labelNames: ['type', 'outcome'] as const,
    buckets: LATENCY_BUCKETS,
    registers,
  }),
  consumed: new Counter({
    name: 'agate_consumer_events_total',
    help: 'Events a consumer group of this process handled successfully (group="ledger": events appended to the ledger).',
    labelNames: ['group'] as const,
    registers,
  }),
  consumerLag: new Gauge({
    name: 'agate_consumer_lag_seconds',
    help: 'Age of the newest event a consumer group handled, at the time it handled it (group="ledger": how far the ledger trails the proxies).',
    labelNames: ['group'] as const,
    registers,
  }),
  consumerFailures: new Counter({
    name: 'agate_consumer_failures_total',
    help: 'Batches a consumer group failed to handle (retried; a failing store shows here).',
    labelNames: ['group'] as const,
    registers,
  }),
  authFailures: new Counter({
    name: 'agate_auth_failures_total',
    help: 'Failed client logins recorded by this proxy, by protocol and reason code.',
    labelNames: ['protocol', 'reason'] as const,
    registers,
  }),
  holdsPending: new Gauge({
    name: 'agate_holds_pending',
    help: 'Commands this proxy holds for approval right now.',
    labelNames: ['protocol'] as const,
    registers,
  }),
  sessionsOpen: new Gauge({
    name: 'agate_sessions_open',
    help: 'Authenticated client sessions (connections) open through this proxy, by protocol.',
    labelNames: ['protocol'] as const,
    registers,
  }),
  checkpointTime: new Gauge({
    name: 'agate_ledger_checkpoint_timestamp_seconds',
    help: 'When the newest signed checkpoint of each chain was published (Unix time); checkpoint age is time() minus this.',
    labelNames: ['chain'] as const,
    registers,
  }),
  checkpointAge: new Gauge({
    name: 'agate_ledger_checkpoint_age_seconds',
    help: 'Seconds since the newest signed checkpoint of each chain this process published.',
    labelNames: ['chain'] as const,
    registers,
    collect() {
      this.reset();
      for (const [chain, at] of checkpointAt) this.set({ chain }, (Date.now() - at) / 1000);
    },
  }),
  engineMemory: new Gauge({
    name: 'agate_store_engine_memory_bytes',
    help: 'The embedded ClickHouse engine\'s own view of its memory (system.metrics): kind="tracked" is what its memory tracker counts as allocated by the engine (queries, inserts, merges, caches), the other kinds are its caches. Node\'s heap is agate_nodejs_heap_size_used_bytes; what neither counts (allocator free lists, thread stacks) is the rest of process_resident_memory_bytes.',
    labelNames: ['kind'] as const,
    registers,
    async collect() {
      if (engineMemorySource === undefined) return;
      // A failing store must not fail the scrape: its other metrics still say why.
      const read = await engineMemorySource().catch(() => undefined);
      this.reset();
      for (const [kind, bytes] of Object.entries(read ?? {})) this.set({ kind }, bytes);
    },
  }),
  ready: new Gauge({
    name: 'agate_ready',
    help: '1 when every component of this process is ready (what /readyz answers), else 0.',
    registers,
  }),
};

let engineMemorySource: (() => Promise<Record<string, number>>) | undefined;

/** The embedded engine's memory, read at scrape time (agate_store_engine_memory_bytes). */
export function observeEngineMemory(read: () => Promise<Record<string, number>>): void {
  engineMemorySource = read;
}

/** Newest checkpoint time (ms) per chain, read by the age gauge at scrape time. */
const checkpointAt = new Map<string, number>();

export function checkpointPublished(chain: string, timeMicros: number): void {
  checkpointAt.set(chain, timeMicros / 1000);
  metrics.checkpointTime.set({ chain }, timeMicros / 1e6);
}

/**
 * The audit pipeline, embedded and on Kafka side by side: verdict round trip (command published
 * durably, decided by the policy service, verdict back to the waiting proxy) and sustained
 * events/s from publishers into the ledger's store.
 *
 *   npm run bench -- pipeline [--verdicts N] [--events N] [--producers 1,4]
 *
 * Kafka (4.4, acks=all, 6 partitions, one broker) runs once per producer count, on fresh topics.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { randomUUID } from 'node:crypto';
import { parseArgs } from 'node:util';
import type { Bus } from '../core/src/bus/bus.js';
import { KafkaBus } from '../core/src/bus/kafka-bus.js';
import { LocalBus } from '../core/src/bus/local-bus.js';
import { SingleObjectWire } from '../core/src/bus/single-object-wire.js';
import { parseConfig } from '../core/src/config.js';
import { silentLogger } from '../core/src/log.js';
import { EmbeddedStore } from '../core/src/store/embedded.js';
import { EventCodec } from '../schemas/src/codec.js';
import type { AgateEvent, Command } from '../schemas/src/events.js';
import { nowMicros } from '../schemas/src/events.js';
import { SAMPLES } from '../schemas/src/samples.js';
import { loadOrCreateSigner } from '../services/ledger/src/keys.js';
import { LedgerService } from '../services/ledger/src/ledger.js';
import { CompiledPolicy, loadParsers } from '../services/policy/src/engine.js';
import { PolicyService } from '../services/policy/src/service.js';
import { startKafka } from '../test/harness/kafka.js';

interface Figures {
  mode: string;
  p50: number;
  p99: number;
  eventsPerSec: number;
  lagMs: number;
  /** CPU this process (proxy, policy and ledger clients of the bus) uses with no traffic, % of one core. */
  idleCpuPct: number;
}

/** This process's CPU over 5 s with nothing to do, after 1 s to settle, as % of one core. */
async function idleCpu(): Promise<number> {
  await new Promise((r) => setTimeout(r, 1_000));
  const before = process.cpuUsage();
  const t0 = performance.now();
  await new Promise((r) => setTimeout(r, 5_000));
  const used = process.cpuUsage(before);
  return ((used.user + used.system) / 1000 / (performance.now() - t0)) * 100;
}

const policy = new CompiledPolicy(parseConfig('identity: { dev_issuer: { enabled: true } }\npolicy: { default: allow, rules: [{ id: no-drop, action: deny, match: { sql: { statements: [DropStmt] } } }] }\n', 'bench.yaml').policy);

function percentile(sorted: number[], p: number): number {
  return sorted[Math.min(sorted.length - 1, Math.floor((p / 100) * sorted.length))]!;
}

async function verdictLatency(proxy: Bus, n: number): Promise<{ p50: number; p99: number }> {
  const times: number[] = [];
  const session = randomUUID();
  for (let i = 0; i < n + 50; i++) {
    const cmd: Command = { ...SAMPLES.Command, event_id: randomUUID(), session_id: session, time: nowMicros(), text: `SELECT ${i}` };
    const t0 = performance.now();
    const o = await proxy.requestVerdict(cmd, 5000);
    if (o.kind !== 'verdict') throw new Error('a verdict timed out during the benchmark');
    if (i >= 50) times.push(performance.now() - t0); // the first 50 warm up connections and caches
  }
  times.sort((a, b) => a - b);
  return { p50: percentile(times, 50), p99: percentile(times, 99) };
}

/** Publishes `n` events from 8 concurrent "sessions" and measures until the ledger stored all. */
async function throughput(bus: Bus, ledger: LedgerService, store: EmbeddedStore, n: number): Promise<{ eventsPerSec: number; lagMs: number }> {
  const [{ c: before }] = (await store.query<{ c: string }>('SELECT count() AS c FROM agate.ledger')) as [{ c: string }];
  const t0 = performance.now();
  const writers = Array.from({ length: 8 }, async (_, w) => {
    const session = randomUUID();
    const inflight: Promise<void>[] = [];
    for (let i = w; i < n; i += 8) {
      const e: AgateEvent = { ...SAMPLES.Response, event_id: randomUUID(), session_id: session, time: nowMicros() };
      inflight.push(bus.publish(e));
      if (inflight.length >= 256) await Promise.all(inflight.splice(0));
    }
    await Promise.all(inflight);
  });
  await Promise.all(writers);
  const published = performance.now();
  for (;;) {
    const [{ c }] = (await store.query<{ c: string }>('SELECT count() AS c FROM agate.ledger')) as [{ c: string }];
    if (Number(c) - Number(before) >= n) break;
    await new Promise((r) => setTimeout(r, 20));
  }
  const stored = performance.now();
  void ledger;
  return { eventsPerSec: Math.round(n / ((stored - t0) / 1000)), lagMs: Math.round(stored - published) };
}

async function embedded(verdicts: number, events: number): Promise<Figures> {
  const dir = mkdtempSync(join(tmpdir(), 'agate-bench-'));
  const store = EmbeddedStore.open(join(dir, 'store'));
  const bus = new LocalBus({ dir: join(dir, 'bus'), fsync: true, logger: silentLogger });
  const ledger = new LedgerService({ bus, store, codec: new EventCodec(), logger: silentLogger, chainId: 'embedded', signer: loadOrCreateSigner(join(dir, 'checkpoint.key'), 'agate.bench/ledger') });
  await ledger.start();
  const pol = new PolicyService({ bus, policy, logger: silentLogger, staleAfterMs: 5000 });
  await pol.start();
  const idle = await idleCpu();
  const lat = await verdictLatency(bus, verdicts);
  const tp = await throughput(bus, ledger, store, events);
  await pol.stop();
  await ledger.stop();
  await bus.close();
  await store.close();
  rmSync(dir, { recursive: true, force: true });
  return { mode: 'embedded (local log, fsync)', ...lat, ...tp, idleCpuPct: idle };
}

async function kafka(broker: Awaited<ReturnType<typeof startKafka>>, producers: number, verdicts: number, events: number): Promise<Figures> {
  const topics = `bench${producers}`;
  const dir = mkdtempSync(join(tmpdir(), 'agate-bench-'));
  const codec = new EventCodec();
  const connect = (instanceId: string, awaitsVerdicts: boolean) =>
    KafkaBus.connect({ brokers: [broker.bootstrap], instanceId, groupPrefix: topics, eventsTopic: `${topics}.events`, verdictsTopic: `${topics}.verdicts`, partitions: 6, replicationFactor: 1, wire: new SingleObjectWire(codec), logger: silentLogger, awaitsVerdicts, producers });
  const [proxyBus, policyBus, ledgerBus] = [await connect('proxy', true), await connect('policy', false), await connect('ledger', false)];
  const store = EmbeddedStore.open(join(dir, 'store'));
  const ledger = new LedgerService({ bus: ledgerBus, store, codec, logger: silentLogger, chainId: `${topics}.events-0`, signer: loadOrCreateSigner(join(dir, 'checkpoint.key'), 'agate.bench/ledger') });
  await ledger.start();
  const pol = new PolicyService({ bus: policyBus, policy, logger: silentLogger, staleAfterMs: 5000 });
  await pol.start();
  const idle = await idleCpu();
  const lat = await verdictLatency(proxyBus, verdicts);
  const tp = await throughput(proxyBus, ledger, store, events);
  await pol.stop();
  await ledger.stop();
  for (const b of [proxyBus, policyBus, ledgerBus]) await b.close();
  await store.close();
  rmSync(dir, { recursive: true, force: true });
  return { mode: `Kafka, ${producers} producer${producers === 1 ? '' : 's'}`, ...lat, ...tp, idleCpuPct: idle };
}

export async function run(argv: string[]): Promise<void> {
  const { values } = parseArgs({ args: argv, options: { verdicts: { type: 'string', default: '2000' }, events: { type: 'string', default: '200000' }, producers: { type: 'string', default: '1,4' } } });
  const verdicts = Number(values.verdicts);
  const events = Number(values.events);
  const producerCounts = values.producers.split(',').map(Number);
  await loadParsers();
  console.log(`pipeline benchmark: ${verdicts} sequential verdict round trips, then ${events} events from 8 publishers into the ledger (embedded ClickHouse store)\n`);
  const rows = [await embedded(verdicts, events)];
  const broker = await startKafka();
  try {
    for (const n of producerCounts) rows.push(await kafka(broker, n, verdicts, events));
  } finally {
    await broker.destroy();
  }
  const pad = (s: string, n: number) => s.padEnd(n);
  console.log(`${pad('mode', 36)}${pad('verdict p50', 13)}${pad('verdict p99', 13)}${pad('events/s into store', 21)}${pad('drain after last publish', 26)}idle CPU (3 clients)`);
  for (const r of rows) console.log(`${pad(r.mode, 36)}${pad(r.p50.toFixed(2) + ' ms', 13)}${pad(r.p99.toFixed(2) + ' ms', 13)}${pad(String(r.eventsPerSec), 21)}${pad(`${r.lagMs} ms`, 26)}${r.idleCpuPct.toFixed(1)} % of a core`);
  console.log('\ntargets (Kafka): verdict p50 < 5 ms, p99 < 20 ms; >= 50,000 events/s sustained into the store');
}

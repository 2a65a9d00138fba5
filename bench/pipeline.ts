/**
 * The audit pipeline, embedded and distributed side by side: verdict round trip (command published
 * durably, decided by the policy service, verdict back to the waiting proxy) and sustained
 * events/s from publishers into the ledger's store.
 *
 *   npm run bench -- pipeline [--verdicts N] [--events N] [--ledgers 1,2] [--store double|embedded] [--kind responses|statements]
 *
 * The embedded row runs everything in this process (local log, fsync, embedded engine). Each
 * Kafka row runs as the distributed deployment does: this process is the proxy (its bus client
 * publishes), `agate policy` and `agate ledger` (`--ledgers` of them,
 * one consumer group, one chain per partition) are processes of their own, Kafka 4.4 (one broker,
 * acks=all, 6 partitions, fresh topics per row). The ledgers' store is the ClickHouse HTTP test
 * double in its own process (the embedded engine behind a server's HTTP interface: what several
 * ledgers can share), or with `--store embedded` the engine inside the one ledger process.
 * Printed besides: the CPU each process used per event while the events went in, so the ledger's
 * own cost can be told from the rest on a loaded machine, and per verdict over the round trips.
 * `--kind statements` publishes statements instead of Responses alone: a Command carrying its
 * session's identity (a CI token's 25 claims) and its Response, the policy adding the Verdict.
 * AGATE_BENCH_NODE_ARGS (e.g. `--cpu-prof --cpu-prof-dir=/tmp/prof`) goes to the `agate` processes.
 */
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { availableParallelism, loadavg, tmpdir } from 'node:os';
import { join } from 'node:path';
import { randomBytes, randomUUID } from 'node:crypto';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import type { Bus } from '../core/src/bus/bus.js';
import { consumerGroupPrefix, KafkaBus } from '../core/src/bus/kafka-bus.js';
import { LocalBus } from '../core/src/bus/local-bus.js';
import { SingleObjectWire } from '../core/src/bus/single-object-wire.js';
import { parseConfig } from '../core/src/config.js';
import { silentLogger } from '../core/src/log.js';
import { createSecretFile } from '../core/src/secret-file.js';
import { EmbeddedStore } from '../core/src/store/embedded.js';
import { EventCodec } from '../schemas/src/codec.js';
import type { Command, Identity } from '../schemas/src/events.js';
import { nowMicros } from '../schemas/src/events.js';
import { SAMPLES } from '../schemas/src/samples.js';
import { loadOrCreateSigner } from '../services/ledger/src/keys.js';
import { LedgerService } from '../services/ledger/src/ledger.js';
import { generateSignerKey } from '../services/ledger/src/note.js';
import { CompiledPolicy, loadParsers } from '../services/policy/src/engine.js';
import { PolicyService } from '../services/policy/src/service.js';
import { startKafka, type KafkaBroker } from '../test/harness/kafka.js';
import { findFreePort } from '../test/harness/postgres.js';
import { startRole, type RoleProcess } from '../test/e2e/role-process.js';
import { startListeningChild } from './listening-child.js';

const POLICY_YAML = '{ default: allow, rules: [{ id: no-drop, action: deny, match: { sql: { statements: [DropStmt] } } }] }';
const PARTITIONS = 6;

interface Figures {
  mode: string;
  p50: number;
  p99: number;
  eventsPerSec: number;
  lagMs: number;
  /** CPU per event stored while the events went in, µs, per process (all its threads); embedded: all in `publishers`. */
  cpu: { publishers: number; broker?: number; ledgers?: number; store?: number; policy?: number };
  /** Events each ledger process stored (several: how the partitions were shared). */
  perLedger?: number[];
  /** CPU per verdict round trip, µs, per process (all its threads); Kafka rows only. */
  verdictCpu?: { proxy: number; broker: number; policy: number; ledgers: number; store?: number };
  load: string;
}

/** User plus system CPU of a process so far, in seconds (clock ticks of 1/100 s). */
function cpuSeconds(pid: number): number {
  const fields = readFileSync(`/proc/${pid}/stat`, 'utf8').split(') ')[1]!.split(' ');
  return (Number(fields[11]) + Number(fields[12])) / 100; // utime, stime
}

function selfCpuSeconds(): number {
  const u = process.cpuUsage();
  return (u.user + u.system) / 1e6;
}

const loadNow = () => loadavg().map((l) => l.toFixed(1)).join(' ');

function percentile(sorted: number[], p: number): number {
  return sorted[Math.min(sorted.length - 1, Math.floor((p / 100) * sorted.length))]!;
}

/**
 * `n` sequential verdict round trips after 50 to warm up. With `pids`, the CPU each of those
 * processes (and this one, as `proxy`) used over the timed round trips, in µs per verdict: what
 * a round trip costs the machine, which holds up better than its latency on a shared one.
 */
async function verdictLatency(proxy: Bus, n: number, pids: Record<string, number> = {}): Promise<{ p50: number; p99: number; verdictCpu: Record<string, number> }> {
  const times: number[] = [];
  const session = randomUUID();
  let cpuBefore: Record<string, number> = {};
  for (let i = 0; i < n + 50; i++) {
    if (i === 50) cpuBefore = { proxy: selfCpuSeconds(), ...Object.fromEntries(Object.entries(pids).map(([k, pid]) => [k, cpuSeconds(pid)])) };
    const cmd: Command = { ...SAMPLES.Command, event_id: randomUUID(), session_id: session, time: nowMicros(), text: `SELECT ${i}` };
    const t0 = performance.now();
    const o = await proxy.requestVerdict(cmd, 5000);
    if (o.kind !== 'verdict') throw new Error('a verdict timed out during the benchmark');
    if (i >= 50) times.push(performance.now() - t0); // the first 50 warm up connections and caches
  }
  const verdictCpu: Record<string, number> = { proxy: ((selfCpuSeconds() - cpuBefore.proxy!) * 1e6) / n };
  for (const [k, pid] of Object.entries(pids)) verdictCpu[k] = ((cpuSeconds(pid) - cpuBefore[k]!) * 1e6) / n;
  times.sort((a, b) => a - b);
  return { p50: percentile(times, 50), p99: percentile(times, 99), verdictCpu };
}

type Kind = 'responses' | 'statements';

/**
 * How old a Command the policy still decides. The statements the throughput publishes wait for no
 * verdict and reach the policy late on a loaded machine: each must still get its Verdict (the
 * count of events stored waits for them all), so they are never stale there.
 */
const staleAfterMs = (kind: Kind) => (kind === 'statements' ? 3_600_000 : 5000);

/** A session's identity as a CI token gives it (25 claims), one frozen object per session as the proxies hold it. */
function ciIdentity(session: string): Identity {
  const claims: Record<string, string> = { iss: 'https://token.actions.githubusercontent.com', sub: `repo:acme/app-${session.slice(0, 8)}:ref:refs/heads/main`, aud: 'agate' };
  for (const name of ['repository', 'repository_owner', 'workflow', 'job_workflow_ref', 'ref', 'sha', 'actor', 'run_id', 'run_number', 'run_attempt', 'event_name', 'environment', 'runner_environment', 'head_ref', 'base_ref', 'ref_type', 'repository_id', 'actor_id', 'workflow_ref', 'workflow_sha', 'iat', 'exp']) {
    claims[name] = `${name}-${session.slice(0, 8)}-value`;
  }
  return Object.freeze({ issuer: claims.iss!, subject: claims.sub!, claims: Object.freeze(claims) });
}

/**
 * Publishes `n` events from 8 concurrent publishers (256 unawaited publishes each at a time),
 * each over 8 sessions (so the sessions' keys spread over the partitions), and waits until
 * `stored()` has grown by all of them. `responses`: Response events; `statements`: a Command
 * and its Response per statement, and the store also gets the policy's Verdict (n / 2 more).
 * CPU of each process in `pids` (and of this one, as `self`) over the whole run, in µs per
 * event stored.
 */
async function throughput(bus: Bus, stored: () => Promise<number>, n: number, pids: Record<string, number>, kind: Kind = 'responses'): Promise<{ eventsPerSec: number; lagMs: number; cpu: Record<string, number> }> {
  const before = await stored();
  const cpuBefore = Object.fromEntries(Object.entries(pids).map(([k, pid]) => [k, cpuSeconds(pid)]));
  const selfBefore = selfCpuSeconds();
  const t0 = performance.now();
  let sent = 0;
  let commands = 0;
  const writers = Array.from({ length: 8 }, async (_, w) => {
    const sessions = Array.from({ length: 8 }, () => randomUUID());
    const identities = sessions.map(ciIdentity);
    const inflight: Promise<void>[] = [];
    let k = 0;
    for (let i = w; i < n; i += 8) {
      const s = k++ % 8;
      const head = { event_id: randomUUID(), session_id: sessions[s]!, time: nowMicros() };
      if (kind === 'responses') {
        inflight.push(bus.publish({ ...SAMPLES.Response, ...head }));
        sent += 1;
      } else {
        const command: Command = { ...SAMPLES.Command, ...head, identity: identities[s]!, sequence: i, text: `SELECT ${i}` };
        inflight.push(bus.publish(command), bus.publish({ ...SAMPLES.Response, event_id: randomUUID(), session_id: head.session_id, time: nowMicros(), command_id: command.event_id }));
        i += 8; // two events a statement
        sent += 2;
        commands += 1;
      }
      if (inflight.length >= 256) await Promise.all(inflight.splice(0));
    }
    await Promise.all(inflight);
  });
  await Promise.all(writers);
  const published = performance.now();
  // Published, plus the policy's verdict of each Command.
  const total = sent + commands;
  // Every 100 ms: each look at a ledger's count renders its whole /metrics page (about 1 ms of
  // its CPU), which at every 20 ms was some 5 % of the CPU per event charged to the ledger.
  while ((await stored()) - before < total) await new Promise((r) => setTimeout(r, 100));
  const done = performance.now();
  const perEvent = (seconds: number) => (seconds * 1e6) / total;
  const cpu: Record<string, number> = { self: perEvent(selfCpuSeconds() - selfBefore) };
  for (const [k, pid] of Object.entries(pids)) cpu[k] = perEvent(cpuSeconds(pid) - cpuBefore[k]!);
  return { eventsPerSec: Math.round(total / ((done - t0) / 1000)), lagMs: Math.round(done - published), cpu };
}

async function embedded(verdicts: number, events: number, kind: Kind): Promise<Figures> {
  const load = loadNow();
  const dir = mkdtempSync(join(tmpdir(), 'agate-bench-'));
  const store = EmbeddedStore.open(join(dir, 'store'));
  const bus = new LocalBus({ dir: join(dir, 'bus'), fsync: true, logger: silentLogger });
  const ledger = new LedgerService({ bus, store, codec: new EventCodec(), logger: silentLogger, chainId: 'embedded', signer: loadOrCreateSigner(join(dir, 'checkpoint.key'), 'agate.bench/ledger') });
  await ledger.start();
  const pol = new PolicyService({ bus, policy: new CompiledPolicy(parseConfig(`identity: { dev_issuer: { enabled: true } }\npolicy: ${POLICY_YAML}\n`, 'bench.yaml').policy), logger: silentLogger, staleAfterMs: staleAfterMs(kind) });
  await pol.start();
  const lat = await verdictLatency(bus, verdicts);
  const count = async () => Number(((await store.query<{ c: string }>('SELECT count() AS c FROM agate.ledger')) as [{ c: string }])[0].c);
  const tp = await throughput(bus, count, events, {}, kind);
  await pol.stop();
  await ledger.stop();
  await bus.close();
  await store.close();
  rmSync(dir, { recursive: true, force: true });
  return { mode: 'embedded (one process, local log, fsync)', p50: lat.p50, p99: lat.p99, eventsPerSec: tp.eventsPerSec, lagMs: tp.lagMs, cpu: { publishers: tp.cpu.self! }, load: `${load} / ${loadNow()}` };
}

/** Events the ledger processes stored so far (their agate_consumer_events_total{group="ledger"}), each. */
async function ledgerCounts(opsPorts: readonly number[]): Promise<number[]> {
  return Promise.all(opsPorts.map(async (port) => {
    const text = await (await fetch(`http://127.0.0.1:${port}/metrics`)).text();
    const m = /^agate_consumer_events_total\{group="ledger"\} (\S+)$/m.exec(text);
    return m === null ? 0 : Number(m[1]);
  }));
}

interface Setup {
  ledgers: number;
  store: 'double' | 'embedded';
  kind: Kind;
}

async function distributed(broker: KafkaBroker, setup: Setup, verdicts: number, events: number): Promise<Figures> {
  const load = loadNow();
  const dir = mkdtempSync(join(tmpdir(), 'agate-bench-'));
  const topic = `bench.${randomBytes(4).toString('hex')}`;
  const signingKey = join(dir, 'checkpoint.key');
  createSecretFile(signingKey, generateSignerKey('agate.local/ledger') + '\n'); // on Kafka the ledgers share one, made beforehand
  const double = setup.store === 'double' ? await startListeningChild('the store double', fileURLToPath(new URL('./store-double-child.js', import.meta.url)), []) : undefined;
  const nodeArgs = (process.env.AGATE_BENCH_NODE_ARGS ?? '').split(' ').filter(Boolean);
  const procs: RoleProcess[] = [];
  let proxy: KafkaBus | undefined;
  try {
    const start = async (role: 'ledger' | 'policy', instance: string): Promise<{ process: RoleProcess; ops: number }> => {
      const ops = await findFreePort();
      const config = join(dir, `${instance}.yaml`);
      writeFileSync(config, `instance_id: ${instance}
data_dir: ${JSON.stringify(join(dir, instance))}
identity: { issuers: [{ issuer: https://issuer.invalid, audience: agate }] }
bus: { kind: kafka, brokers: [${JSON.stringify(broker.bootstrap)}], partitions: ${PARTITIONS}, replication_factor: 1, events_topic: ${topic}.events, verdicts_topic: ${topic}.verdicts }
store: ${double === undefined ? '{ kind: embedded }' : `{ kind: clickhouse, url: "http://127.0.0.1:${double.port}" }`}
ledger: { signing_key: ${JSON.stringify(signingKey)} }
policy: ${POLICY_YAML}
${setup.kind === 'statements' ? `proxy: { verdict_timeout_ms: ${staleAfterMs(setup.kind)} }\n` : ''}ops: { listen: "127.0.0.1:${ops}" }
`);
      const p = await startRole(role, config, 120_000, nodeArgs);
      procs.push(p);
      return { process: p, ops };
    };
    const ledgers = [await start('ledger', 'ledger-1')]; // first: it makes the schema and the topics
    const rest = await Promise.all([...Array.from({ length: setup.ledgers - 1 }, (_, i) => start('ledger', `ledger-${i + 2}`)), start('policy', 'policy')]);
    ledgers.push(...rest.slice(0, -1));
    const policy = rest[rest.length - 1]!;
    proxy = await KafkaBus.connect({
      brokers: [broker.bootstrap], instanceId: 'proxy', groupPrefix: consumerGroupPrefix(`${topic}.events`), eventsTopic: `${topic}.events`, verdictsTopic: `${topic}.verdicts`,
      partitions: PARTITIONS, replicationFactor: 1, wire: new SingleObjectWire(new EventCodec()), logger: silentLogger, awaitsVerdicts: true,
    });
    const pids: Record<string, number> = { broker: broker.pid!, policy: policy.process.pid, ...Object.fromEntries(ledgers.map((l, i) => [`ledger${i}`, l.process.pid])) };
    if (double !== undefined) pids.store = double.child.pid!;
    const lat = await verdictLatency(proxy, verdicts, pids);
    const ops = ledgers.map((l) => l.ops);
    const countsBefore = await ledgerCounts(ops);
    const tp = await throughput(proxy, async () => (await ledgerCounts(ops)).reduce((a, b) => a + b, 0), events, pids, setup.kind);
    const countsAfter = await ledgerCounts(ops);
    const ledgerCpu = ledgers.reduce((s, _, i) => s + tp.cpu[`ledger${i}`]!, 0);
    const mode = `Kafka, ${setup.ledgers} ledger process${setup.ledgers === 1 ? '' : 'es'}${setup.store === 'embedded' ? ' (engine inside)' : ''}`;
    const vc = lat.verdictCpu;
    const verdictCpu = { proxy: vc.proxy!, broker: vc.broker!, policy: vc.policy!, ledgers: ledgers.reduce((sum, _, i) => sum + vc[`ledger${i}`]!, 0), store: vc.store };
    return {
      mode, p50: lat.p50, p99: lat.p99, verdictCpu, eventsPerSec: tp.eventsPerSec, lagMs: tp.lagMs,
      cpu: { publishers: tp.cpu.self!, broker: tp.cpu.broker, ledgers: ledgerCpu, store: tp.cpu.store, policy: tp.cpu.policy },
      perLedger: countsAfter.map((c, i) => c - countsBefore[i]!), load: `${load} / ${loadNow()}`,
    };
  } finally {
    await proxy?.close();
    for (const p of procs) await p.stop();
    if (double !== undefined) {
      const gone = new Promise((r) => double.child.once('exit', r));
      double.child.kill('SIGTERM');
      await gone;
    }
    rmSync(dir, { recursive: true, force: true });
  }
}

export async function run(argv: string[]): Promise<void> {
  const { values } = parseArgs({
    args: argv,
    options: {
      verdicts: { type: 'string', default: '2000' }, events: { type: 'string', default: '200000' },
      ledgers: { type: 'string', default: '1,2' }, store: { type: 'string', default: 'double' }, 'no-embedded': { type: 'boolean', default: false },
      kind: { type: 'string', default: 'responses' },
    },
  });
  const verdicts = Number(values.verdicts);
  const events = Number(values.events);
  const store = values.store === 'embedded' ? 'embedded' : 'double';
  if (values.kind !== 'responses' && values.kind !== 'statements') throw new Error(`--kind is responses or statements, not ${values.kind}`);
  const kind: Kind = values.kind;
  const setups: Setup[] = [];
  for (const ledgers of values.ledgers.split(',').map(Number)) setups.push({ ledgers, store, kind });
  if (store === 'embedded' && setups.some((s) => s.ledgers > 1)) throw new Error('--store embedded holds the engine inside one ledger process: use --ledgers 1');
  await loadParsers();
  console.log(`pipeline benchmark: ${verdicts} sequential verdict round trips, then ${events} ${kind === 'responses' ? 'Responses' : 'events of statements (Command, Response; the policy adds the Verdict)'} from 8 publishers into the ledger's store (${availableParallelism()} cores, load average ${loadNow()})\n`);
  const rows: Figures[] = [];
  if (!values['no-embedded']) rows.push(await embedded(verdicts, events, kind));
  const broker = await startKafka();
  try {
    for (const s of setups) rows.push(await distributed(broker, s, verdicts, events));
  } finally {
    await broker.destroy();
  }
  const pad = (s: string, n: number) => s.padEnd(n);
  const us = (v: number | undefined) => (v === undefined ? '-' : v.toFixed(1));
  console.log(`${pad('mode', 52)}${pad('verdict p50', 13)}${pad('verdict p99', 13)}${pad('events/s', 10)}${pad('drain', 10)}${pad('CPU µs/event: publishers broker ledgers store policy', 54)}load before / after`);
  for (const r of rows) {
    const cpu = [r.cpu.publishers, r.cpu.broker, r.cpu.ledgers, r.cpu.store, r.cpu.policy].map(us).join(' / ');
    console.log(`${pad(r.mode, 52)}${pad(r.p50.toFixed(2) + ' ms', 13)}${pad(r.p99.toFixed(2) + ' ms', 13)}${pad(String(r.eventsPerSec), 10)}${pad(`${r.lagMs} ms`, 10)}${pad(cpu, 54)}${r.load}`);
    if (r.verdictCpu !== undefined) {
      const v = r.verdictCpu;
      console.log(`${' '.repeat(4)}CPU µs per verdict: proxy ${us(v.proxy)} / broker ${us(v.broker)} / policy ${us(v.policy)} / ledgers ${us(v.ledgers)} / store ${us(v.store)}`);
    }
    if (r.perLedger !== undefined && r.perLedger.length > 1) console.log(`${' '.repeat(4)}events per ledger process: ${r.perLedger.join(', ')}`);
  }
  console.log('\ntargets (Kafka): verdict p50 <= 5 ms, p99 <= 20 ms; >= 50,000 events/s sustained into the store');
}


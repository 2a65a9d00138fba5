import type { AddressInfo } from 'node:net';
import { join } from 'node:path';
import { rootCertificates } from 'node:tls';
import type { Bus } from '../../core/src/bus/bus.js';
import type { KafkaBus } from '../../core/src/bus/kafka-bus.js';
import { LocalBus, type TrailingGroup } from '../../core/src/bus/local-bus.js';
import { RegistryWire } from '../../core/src/bus/registry-wire.js';
import { SingleObjectWire } from '../../core/src/bus/single-object-wire.js';
import { readSecret, type AgateConfig } from '../../core/src/config.js';
import { ConfigError, describeError } from '../../core/src/errors.js';
import { splitHostPort } from '../../core/src/host-port.js';
import { devTrustedIssuer } from '../../core/src/identity/dev-issuer.js';
import { remoteIssuer, TokenVerifier } from '../../core/src/identity/oidc.js';
import type { OnStarted, Stoppable } from '../../core/src/lifecycle.js';
import { loginGuard, loginThrottle } from '../../core/src/logins/from-config.js';
import type { LoginThrottle } from '../../core/src/logins/throttle.js';
import type { Logger } from '../../core/src/log.js';
import { InstrumentedBus } from '../../core/src/ops/instrumented-bus.js';
import { observeEngineMemory } from '../../core/src/ops/metrics.js';
import { problemProbe, READY, Readiness } from '../../core/src/ops/readiness.js';
import { ClickHouseStore } from '../../core/src/store/clickhouse.js';
import type { Store } from '../../core/src/store/store.js';
import { readClientTls, tlsConnectionOptions } from '../../core/src/tls-files.js';
import { EventCodec } from '../../schemas/src/codec.js';
import { nowMicros } from '../../schemas/src/events.js';
import { OpenWorkTracker } from '../../services/ingress-proxy/src/cut-work.js';
import { kubeProxyFromConfig, kubeProxySlices } from '../../services/ingress-proxy/src/k8s/from-config.js';
import type { KubeProxyServer } from '../../services/ingress-proxy/src/k8s/server.js';
import { LiveSessions } from '../../services/ingress-proxy/src/live-sessions.js';
import { MaskSets } from '../../services/ingress-proxy/src/masking/mask-sets.js';
import { pgProxyFromConfig } from '../../services/ingress-proxy/src/pg/from-config.js';
import type { PgProxyServer } from '../../services/ingress-proxy/src/pg/server.js';
import type { ProxyShared } from '../../services/ingress-proxy/src/proxy-shared.js';
import { sshProxyFromConfig } from '../../services/ingress-proxy/src/ssh/from-config.js';
import type { SshProxyServer } from '../../services/ingress-proxy/src/ssh/server.js';
import { readTerminationRequests } from '../../services/ingress-proxy/src/termination-requests.js';
import { ledgerFromConfig } from '../../services/ledger/src/from-config.js';
import { LEDGER_GROUP, LEDGER_LINGER_MS, type LedgerService } from '../../services/ledger/src/ledger.js';
import { loadParsers } from '../../services/policy/src/engine.js';
import { policyFromConfig } from '../../services/policy/src/from-config.js';
import { queryFromConfig } from '../../services/query/src/from-config.js';
import { refillSessionTables } from '../../services/query/src/session-refill.js';
import { Lazy } from './lazy.js';

import { CommandSpans } from '../../services/ingress-proxy/src/command-spans.js';
import { tracingFromConfig } from '../../core/src/tracing/tracing.js';
import { warnWhileWaiting } from '../../core/src/waiting.js';

/*
 * Builds each service from the one config format. `agate start` runs all four in one process;
 * `agate proxy|policy|ledger|query` run one each, and need a shared bus (Kafka) and store.
 */

export type Role = 'proxy' | 'policy' | 'ledger' | 'query';

export interface Running {
  postgres?: AddressInfo;
  /** Present when `proxy.ssh` is configured. */
  ssh?: AddressInfo;
  /** One listener per Kubernetes target, by target name. */
  kubernetes?: Record<string, AddressInfo>;
  api?: AddressInfo;
  ledger?: LedgerService;
  /**
   * The first half of a graceful stop (SIGTERM): the proxies stop accepting and close each
   * session once no statement is in flight, the busy ones at the latest after `timeoutMs`.
   * Policy, ledger and the bus keep running meanwhile, so in-flight statements get verdicts and
   * are recorded; `stop()` follows.
   */
  drain(timeoutMs: number): Promise<void>;
  /** Graceful stop, in reverse start order: clients are told, sessions end recorded, the bus drains. */
  stop(): Promise<StopReport>;
}

/** What a stop left undone. */
export interface StopReport {
  /**
   * On the embedded bus: the ledger stopped before storing every event of the log (a batch the
   * store refused at the end, an event published after the ledger stopped). The events wait in
   * the log and are stored at the next start; until then the store trails the log.
   */
  storeTrails?: TrailingGroup;
}

/** A listener that can stop accepting and wait for its sessions to go idle. */
interface Drainable {
  drain(timeoutMs: number): Promise<void>;
}

export async function buildVerifier(config: AgateConfig): Promise<TokenVerifier> {
  const issuers = config.identity.issuers.map(remoteIssuer);
  if (config.identity.dev_issuer.enabled) issuers.push(await devTrustedIssuer(config.data_dir, config.identity.dev_issuer.audience));
  return new TokenVerifier(issuers, { sessionGraceS: config.identity.session_grace_s });
}

/**
 * The ledger inserts into ClickHouse, which wants few large batches, so on either bus it reads
 * after a linger when events trickle in; the events are durable in the bus meanwhile, only the
 * store lags. Embedded it lingers LEDGER_LINGER_MS (1 s, measured there: each insert costs the
 * engine 20-25 ms of CPU whatever its size). On Kafka it lingers 500 ms: a ledger and store woken
 * for every Command and Verdict took CPU from the verdict path, and sequential verdicts cost the
 * machine ~30 % less CPU with the linger (`npm run bench -- pipeline`).
 */
const KAFKA_LINGER_MS = { ledger: 500 } as const;

export async function openBus(config: AgateConfig, codec: EventCodec, roles: readonly Role[], logger: Logger, readiness: Readiness): Promise<LocalBus | KafkaBus> {
  const bus = config.bus;
  if (bus.kind === 'local') {
    if (roles.length < 4) throw new ConfigError(`${config.source}: bus.kind: local works only for \`agate start\` (one process); separate services need bus.kind: kafka`);
    return new LocalBus({ dir: join(config.data_dir, 'bus'), fsync: bus.fsync, segmentBytes: bus.segment_bytes, retentionMs: bus.retention_ms, logger: logger.child({ component: 'bus' }), lingerMs: { ledger: LEDGER_LINGER_MS }, codec });
  }
  const reg = bus.schema_registry;
  const wire = reg === undefined ? new SingleObjectWire(codec) : new RegistryWire(reg.url, bus.events_topic, codec, {
    ...(reg.username === undefined || reg.password === undefined ? {} : { basic: { username: reg.username, password: readSecret(reg.password, 'bus.schema_registry.password') } }),
    ...(reg.token === undefined ? {} : { token: readSecret(reg.token, 'bus.schema_registry.token') }),
    ...(reg.tls === undefined ? {} : { tls: tlsConnectionOptions(readClientTls(reg.tls, 'bus.schema_registry.tls')) }),
  });
  // Loaded only with bus.kind: kafka: the Kafka client adds ~35 MiB of resident memory to a
  // process that imports it, and `agate start` on the embedded bus never uses it.
  const { KafkaBus, consumerGroupPrefix } = await import('../../core/src/bus/kafka-bus.js');
  return KafkaBus.connect({
    ...(bus.tls === undefined ? {} : { tls: tlsConnectionOptions(readClientTls(bus.tls, 'bus.tls')) }),
    ...(bus.sasl === undefined ? {} : { sasl: { mechanism: bus.sasl.mechanism, username: bus.sasl.username, password: readSecret(bus.sasl.password, 'bus.sasl.password') } }),
    brokers: bus.brokers, instanceId: config.instance_id, groupPrefix: consumerGroupPrefix(bus.events_topic, bus.group_prefix),
    eventsTopic: bus.events_topic, verdictsTopic: bus.verdicts_topic,
    partitions: bus.partitions, replicationFactor: bus.replication_factor, minInsyncReplicas: bus.min_insync_replicas, retentionMs: bus.retention_ms, wire, logger: logger.child({ component: 'bus' }),
    awaitsVerdicts: roles.includes('proxy'), readiness, lingerMs: KAFKA_LINGER_MS,
  });
}

export async function openStore(config: AgateConfig): Promise<Store> {
  const store = config.store;
  if (store.kind === 'embedded') {
    // Loaded only by the roles that use it: the engine's library adds ~200 MiB of resident
    // memory to any process that imports it, and `agate proxy` alone never does.
    const { EmbeddedStore } = await import('../../core/src/store/embedded.js');
    const embedded = EmbeddedStore.open(store.path ?? join(config.data_dir, 'store'));
    observeEngineMemory(() => embedded.engineMemory());
    return embedded;
  }
  const tls = store.tls === undefined ? undefined : readClientTls(store.tls, 'store.tls');
  const ch = new ClickHouseStore({
    url: store.url, username: store.username, password: store.password === undefined ? '' : readSecret(store.password, 'store.password'),
    // The client wants the CA as bytes; without one configured, the system's CAs.
    ...(tls === undefined ? {} : { tls: { ca: tls.ca ?? Buffer.from(rootCertificates.join('\n')), cert: tls.cert, key: tls.key } }),
  });
  await ch.ping();
  return ch;
}

/**
 * Runs the given roles in this process. Each service is built by its own `fromConfig` from its
 * slice of the config; what they share (bus, store, token verifier, the proxies' mask sets) is
 * opened once, on first use, and closed at stop. Components report into `readiness`: the
 * process's own (run-service.ts serves it), or a fresh one.
 */
export async function startServices(config: AgateConfig, roles: readonly Role[], logger: Logger, readiness: Readiness = new Readiness()): Promise<Running> {
  await loadParsers();
  const codec = new EventCodec();
  const started: Stoppable[] = [];
  const onStarted: OnStarted = (part) => void started.push(part);
  const drainable: Drainable[] = [];
  // Listeners and dependencies report into the process's readiness; each is withdrawn at stop.
  const reported: string[] = [];
  const report = (component: string) => {
    reported.push(component);
    readiness.set(component, READY);
  };
  // Components' own accounts of themselves (a stopped consumer, a ledger refusing to append),
  // asked at every /readyz (and, when `live`, /healthz) of the ops listener and the query API.
  const reportProblems = (component: string, problem: () => string | undefined, live = false) => {
    reported.push(component);
    readiness.probe(component, problemProbe(problem), { live });
  };
  // The process's one throttle: every listener counts a source address's failures together.
  const throttle = loginThrottle(config.logins);
  const waiting = <T>(what: string, op: Promise<T>) => warnWhileWaiting(logger, what, op);
  const verifier = new Lazy(() => buildVerifier(config));
  const store = new Lazy(async () => {
    const opened = await openStore(config);
    reported.push('store');
    readiness.probe('store', async () => {
      await opened.query('SELECT 1');
      return READY;
    });
    return opened;
  });
  // Off (undefined) without telemetry.otlp.endpoint: then no span is made anywhere.
  const tracing = tracingFromConfig(config.telemetry, config.instance_id);
  const bus = new Lazy(async () => {
    const opened = await openBus(config, codec, roles, logger, readiness);
    const inner: Bus = opened;
    const kafka = opened instanceof LocalBus ? undefined : opened;
    // Everything the services publish and consume feeds metrics and readiness on the way.
    const instrumented = new InstrumentedBus(inner, readiness, kafka === undefined ? undefined : () => kafka.ping());
    // A consumer that stopped does not come back by itself: not live, so an orchestrator restarts it.
    reportProblems('bus.consumers', () => inner.problem?.(), true);
    // A write the bus refused (a full disk): not ready while it lasts, and /readyz says why.
    reportProblems('bus.append', () => instrumented.writeProblem());
    // The proxies of the previous run are gone: what they left open (a crash, a kill) is
    // closed in the record before any listener opens.
    if (opened instanceof LocalBus && roles.includes('proxy')) onStarted((await OpenWorkTracker.recover(opened, instrumented, logger.child({ component: 'recovery' }), nowMicros)).tracker);
    // Proxies' leases, on Kafka: the ledger closes the sessions of proxies that died.
    // With trace export on, each command a proxy of this process asks a verdict for gets a span.
    const traced = tracing !== undefined && roles.includes('proxy') ? new CommandSpans(instrumented, tracing) : instrumented;
    return { bus: traced, leases: kafka, local: opened instanceof LocalBus ? opened : undefined };
  });
  const out: Running = {
    drain: async (timeoutMs) => {
      for (const c of reported.filter((c) => c.startsWith('listener.'))) readiness.set(c, { ready: false, reason: 'draining' });
      await Promise.all(drainable.map((d) => d.drain(timeoutMs)));
    },
    stop: async () => {
      for (const c of reported) readiness.remove(c);
      for (const s of started.reverse()) await s.stop();
      const opened = await bus.ifOpened();
      await opened?.bus.close();
      await (await store.ifOpened())?.close();
      // The spans of the last commands go out before the process ends; a collector away only delays it.
      await tracing?.shutdown().catch((err: unknown) => logger.warn('cannot export the last spans', { error: describeError(err) }));
      const local = opened?.local;
      const storeTrails = roles.includes('ledger') ? local?.trailing.find((t) => t.group === LEDGER_GROUP) : undefined;
      return storeTrails === undefined ? {} : { storeTrails };
    },
  };
  try {
    // A query service alone needs the bus only to publish approvers' answers (Kafka).
    const queryBus = roles.some((r) => r !== 'query') || config.bus.kind === 'kafka';
    // The order of opening is the order of failing: the token issuers, the store, then the bus.
    if (roles.includes('proxy') || roles.includes('query')) await waiting('the token issuers (OIDC discovery and keys)', verifier.get());
    // The policy service reads open approvals back from the ledger after a restart; alone in its
    // process it opens only a ClickHouse server (the embedded engine belongs to one process).
    const policyReadsStore = roles.includes('policy') && config.store.kind === 'clickhouse';
    if (roles.includes('ledger') || roles.includes('query') || policyReadsStore) await waiting(`the store (${config.store.kind})`, store.get());
    if (queryBus) await waiting(`the bus (${config.bus.kind})`, bus.get());
    // The proxies are built (every target credential, certificate and kubeconfig read) before
    // any service starts or any listener opens: a missing secret fails start with nothing open.
    const liveSessions = new LiveSessions();
    const proxies = roles.includes('proxy') ? await proxiesFromConfig(config, proxyShared(config, logger, (await bus.get()).bus, await verifier.get(), throttle)) : undefined;
    if (roles.includes('ledger')) {
      const { bus: b, leases } = await bus.get();
      const s = await store.get();
      const ledger = await waiting('the ledger service', ledgerFromConfig(config, { bus: b, store: s, codec, logger, leases, onStarted, refillDerived: (chain, from, to) => refillSessionTables(s, chain, from, to), tracing }));
      out.ledger = ledger;
      reportProblems('ledger', () => ledger.problem());
    }
    if (roles.includes('policy')) {
      // One process on the local bus: the proxies waiting on holds from before this start are gone.
      const holdsDieWithProcess = config.bus.kind === 'local' && roles.includes('proxy');
      await waiting('the policy service', policyFromConfig(config, { bus: (await bus.get()).bus, store: policyReadsStore ? await store.get() : undefined, logger, holdsDieWithProcess, onStarted, tracing }));
    }
    if (roles.includes('query')) {
      out.api = await waiting('the query service', queryFromConfig(config, {
        store: await store.get(), codec, verifier: await verifier.get(), bus: queryBus ? (await bus.get()).bus : undefined, logger, readiness,
        throttle, liveSessions: proxies === undefined ? undefined : liveSessions, onStarted,
      }));
      report('listener.query');
    }
    if (proxies !== undefined) {
      const listen = async (name: string, proxy: ProxyListener, at: string) => {
        const { host, port } = splitHostPort(at);
        const address = await proxy.listen(host, port);
        onStarted({ stop: () => proxy.shutdown() });
        drainable.push(proxy);
        report(`listener.${name}`);
        return address;
      };
      out.postgres = await listen('postgres', proxies.postgres, config.proxy.postgres.listen);
      liveSessions.add(proxies.postgres);
      if (proxies.ssh !== undefined) {
        out.ssh = await listen('ssh', proxies.ssh.server, proxies.ssh.listen);
        liveSessions.add(proxies.ssh.server);
      }
      if (config.bus.kind === 'kafka') {
        // A query service in another process asks for terminations over the bus.
        const terminations = await waiting('the proxy\'s reader of termination requests', readTerminationRequests((await bus.get()).bus, liveSessions, logger.child({ component: 'proxy' })));
        onStarted({ stop: () => terminations.close() });
      }
      for (const k of proxies.kubernetes) (out.kubernetes ??= {})[k.name] = await listen(`kubernetes.${k.name}`, k.server, k.listen);
    }
    return out;
  } catch (err) {
    await out.stop().catch(() => undefined);
    throw err;
  }
}

/** A proxy's socket adapter, as startServices runs it. */
interface ProxyListener extends Drainable {
  listen(host: string, port: number): Promise<AddressInfo>;
  shutdown(): Promise<void>;
}

interface Proxies {
  postgres: PgProxyServer;
  /** Only with `proxy.ssh` configured. */
  ssh: { server: SshProxyServer; listen: string } | undefined;
  kubernetes: { name: string; server: KubeProxyServer; listen: string }[];
}

/** What the proxies of this process share: one bus, one verifier, one compiled set of masks, one login throttle. */
function proxyShared(config: AgateConfig, logger: Logger, bus: Bus, verifier: TokenVerifier, throttle: LoginThrottle): ProxyShared {
  return {
    bus, verifier, logger, proxyId: config.instance_id, verdictTimeoutMs: config.proxy.verdict_timeout_ms,
    masks: MaskSets.compile(config.masking, config.source), loginGuard: () => loginGuard(config.logins, throttle),
  };
}

/** Every proxy of the config, built and not yet listening. */
async function proxiesFromConfig(config: AgateConfig, shared: ProxyShared): Promise<Proxies> {
  const ssh = config.proxy.ssh;
  const kubernetes: Proxies['kubernetes'] = [];
  for (const slice of kubeProxySlices(config)) kubernetes.push({ name: slice.target.name, server: await kubeProxyFromConfig(slice, shared), listen: slice.target.listen });
  return {
    postgres: pgProxyFromConfig(config, shared),
    ssh: ssh === undefined ? undefined : { server: sshProxyFromConfig({ ...config, proxy: { ssh } }, shared), listen: ssh.listen },
    kubernetes,
  };
}

export const ALL_ROLES: readonly Role[] = ['proxy', 'policy', 'ledger', 'query'];

/** All four services in one process, with both listeners up. */
export interface RunningAgate extends Running {
  postgres: AddressInfo;
  api: AddressInfo;
  ledger: LedgerService;
}

export async function startEmbedded(config: AgateConfig, logger: Logger, readiness?: Readiness): Promise<RunningAgate> {
  const running = await startServices(config, ALL_ROLES, logger, readiness);
  const { postgres, api, ledger } = running;
  if (postgres !== undefined && api !== undefined && ledger !== undefined) return { ...running, postgres, api, ledger };
  // Unreachable: all four roles always start both listeners and the ledger.
  await running.stop();
  throw new Error('agate start: a service did not start');
}

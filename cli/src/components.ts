import { readClientTls, readServerTls, tlsConnectionOptions } from '../../core/src/tls-files.js';
import { rootCertificates } from 'node:tls';
import { join } from 'node:path';
import type { AddressInfo } from 'node:net';
import type { Bus } from '../../core/src/bus/bus.js';
import { KafkaBus, consumerGroupPrefix } from '../../core/src/bus/kafka-bus.js';
import { LOCAL_STREAM, LocalBus } from '../../core/src/bus/local-bus.js';
import { RegistryWire } from '../../core/src/bus/registry-wire.js';
import { SingleObjectWire } from '../../core/src/bus/single-object-wire.js';
import { existsSync, readFileSync } from 'node:fs';
import { readSecret, type AgateConfig, type PostgresTargetConfig, type SshTargetConfig } from '../../core/src/config.js';
import { ConfigError, describeError } from '../../core/src/errors.js';
import { anyGlob } from '../../core/src/glob.js';
import { devTrustedIssuer } from '../../core/src/identity/dev-issuer.js';
import { remoteIssuer, TokenVerifier } from '../../core/src/identity/oidc.js';
import type { Logger } from '../../core/src/log.js';
import type { ProxyLeases } from '../../core/src/bus/leases.js';
import { InstrumentedBus } from '../../core/src/ops/instrumented-bus.js';
import { problemProbe, READY, readiness } from '../../core/src/ops/readiness.js';
import { ClickHouseStore } from '../../core/src/store/clickhouse.js';
import type { Store } from '../../core/src/store/store.js';
import { EventCodec } from '../../schemas/src/codec.js';
import { nowMicros, type Identity } from '../../schemas/src/events.js';
import { pgProxyConfigDeps, targetMaskSet } from '../../services/ingress-proxy/src/pg/config.js';
import { PgProxyServer } from '../../services/ingress-proxy/src/pg/server.js';
import { Masker } from '../../services/ingress-proxy/src/pg/masking/masker.js';
import { loadOrCreateHostKey, parsePinnedHostKey } from '../../services/ingress-proxy/src/ssh/host-key.js';
import { AuthorizedKeys } from '../../services/ingress-proxy/src/ssh/authorized-keys.js';
import { SshProxyServer } from '../../services/ingress-proxy/src/ssh/server.js';
import { kubeProxyTarget, kubernetesTargets } from '../../services/ingress-proxy/src/k8s/config.js';
import { KubeProxyServer } from '../../services/ingress-proxy/src/k8s/server.js';
import type { SshUpstreamTarget } from '../../services/ingress-proxy/src/ssh/upstream.js';
import type { UpstreamTarget } from '../../services/ingress-proxy/src/pg/upstream.js';
import { directorySink, webhookSink, type CheckpointSink } from '../../services/ledger/src/checkpoint-sink.js';
import { loadOrCreateSigner } from '../../services/ledger/src/keys.js';
import { LedgerService } from '../../services/ledger/src/ledger.js';
import { LeaseSweeper } from '../../services/ledger/src/lease-sweeper.js';
import { parseVerifierKey, verifierKey, type NoteSigner } from '../../services/ledger/src/note.js';
import type { CheckpointSources } from '../../services/ledger/src/known-checkpoints.js';
import { CompiledPolicy, loadParsers } from '../../services/policy/src/engine.js';
import { PolicyService } from '../../services/policy/src/service.js';
import { OpenWorkTracker } from '../../services/ingress-proxy/src/cut-work.js';
import { StoreApprovalHistory } from '../../services/policy/src/approval-history.js';
import { ApprovalWebhooks } from '../../services/policy/src/webhooks/notifier.js';
import { PolicyReloader } from '../../services/policy/src/reload.js';
import { PolicyInForce } from '../../services/policy/src/in-force.js';
import { LiveSessions } from '../../services/ingress-proxy/src/live-sessions.js';
import { readTerminationRequests } from '../../services/ingress-proxy/src/termination-requests.js';
import { SessionEnds } from '../../services/query/src/session-ends.js';
import { QueryApi } from '../../services/query/src/http-api.js';
import { loginGuard, loginThrottle } from '../../core/src/logins/from-config.js';
import { apiRefusalRecorder } from '../../services/query/src/auth-record.js';
import { roleResolver } from '../../services/query/src/roles.js';
import { migrateQuery } from '../../services/query/src/schema.js';
import { refillSessionTables } from '../../services/query/src/session-refill.js';
import { sandboxedAnalystSql, unconfinedAnalystSql, type AnalystSql } from '../../services/query/src/sql-endpoint.js';
import { AnalystSandbox } from '../../services/query/src/sql/sandbox.js';
import { CommandSpans } from '../../services/ingress-proxy/src/command-spans.js';
import { tracingFromConfig } from '../../core/src/tracing/tracing.js';

/*
 * Builds each service from the one config format. `agate start` runs all four in one process;
 * `agate proxy|policy|ledger|query` run one each, and need a shared bus (Kafka) and store.
 */

export type Role = 'proxy' | 'policy' | 'ledger' | 'query';

export interface Stoppable {
  stop(): Promise<void>;
}

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
  stop(): Promise<void>;
}

/** A listener that can stop accepting and wait for its sessions to go idle. */
interface Drainable {
  drain(timeoutMs: number): Promise<void>;
}

/**
 * The checkpoint signing key named by the config, created on first use unless `create` is false
 * (a ledger on the Kafka bus: its instances must share one key, made once, see loadOrCreateSigner).
 */
export function ledgerSigner(config: AgateConfig, create = true): NoteSigner {
  return loadOrCreateSigner(config.ledger.signing_key!, config.ledger.origin, create);
}

/**
 * Where verification finds signed checkpoints by itself: the configured checkpoint directory,
 * trusted under the ledger's own key (when this host has it; a query service elsewhere trusts
 * none and checks the chain alone).
 */
export function checkpointSources(config: AgateConfig): CheckpointSources {
  const key = config.ledger.signing_key!;
  return {
    verifiers: existsSync(key) ? [parseVerifierKey(verifierKey(ledgerSigner(config)))] : [],
    dirs: config.ledger.checkpoint.dir === undefined ? [] : [config.ledger.checkpoint.dir],
  };
}

export async function buildVerifier(config: AgateConfig): Promise<TokenVerifier> {
  const issuers = config.identity.issuers.map(remoteIssuer);
  if (config.identity.dev_issuer.enabled) issuers.push(await devTrustedIssuer(config.data_dir, config.identity.dev_issuer.audience));
  return new TokenVerifier(issuers);
}

export function splitHostPort(listen: string): { host: string; port: number } {
  const i = listen.lastIndexOf(':');
  return { host: listen.slice(0, i), port: Number(listen.slice(i + 1)) };
}

export async function openBus(config: AgateConfig, codec: EventCodec, roles: readonly Role[], logger: Logger): Promise<Bus> {
  const bus = config.bus;
  if (bus.kind === 'local') {
    if (roles.length < 4) throw new ConfigError(`${config.source}: bus.kind: local works only for \`agate start\` (one process); separate services need bus.kind: kafka`);
    // The ledger inserts into ClickHouse, which wants few large batches: it lingers 500 ms after a
    // small one. Measured under pgbench (BENCHMARKS.md): the engine's insert and merge threads took
    // 164-347 µs of CPU per statement at 100 ms and 71 µs at 500 ms, on the cores the proxy and the
    // target share. The events are durable in the bus meanwhile; only the store lags.
    return new LocalBus({ dir: join(config.data_dir, 'bus'), fsync: bus.fsync, segmentBytes: bus.segment_bytes, retentionMs: bus.retention_ms, logger: logger.child({ component: 'bus' }), lingerMs: { ledger: 500 }, codec });
  }
  const reg = bus.schema_registry;
  const wire = reg === undefined ? new SingleObjectWire(codec) : new RegistryWire(reg.url, bus.events_topic, codec, {
    ...(reg.username === undefined ? {} : { basic: { username: reg.username, password: readSecret(reg.password!, 'bus.schema_registry.password') } }),
    ...(reg.token === undefined ? {} : { token: readSecret(reg.token, 'bus.schema_registry.token') }),
    ...(reg.tls === undefined ? {} : { tls: tlsConnectionOptions(readClientTls(reg.tls, 'bus.schema_registry.tls')) }),
  });
  return KafkaBus.connect({
    ...(bus.tls === undefined ? {} : { tls: tlsConnectionOptions(readClientTls(bus.tls, 'bus.tls')) }),
    ...(bus.sasl === undefined ? {} : { sasl: { mechanism: bus.sasl.mechanism, username: bus.sasl.username, password: readSecret(bus.sasl.password, 'bus.sasl.password') } }),
    brokers: bus.brokers, instanceId: config.instance_id, groupPrefix: consumerGroupPrefix(bus.events_topic, bus.group_prefix),
    eventsTopic: bus.events_topic, verdictsTopic: bus.verdicts_topic,
    partitions: bus.partitions, replicationFactor: bus.replication_factor, minInsyncReplicas: bus.min_insync_replicas, retentionMs: bus.retention_ms, wire, logger: logger.child({ component: 'bus' }),
    awaitsVerdicts: roles.includes('proxy'),
  });
}

export async function openStore(config: AgateConfig): Promise<Store> {
  const store = config.store;
  if (store.kind === 'embedded') {
    // Loaded only by the roles that use it: the engine's library adds ~200 MiB of resident
    // memory to any process that imports it, and `agate proxy` alone never does.
    const { EmbeddedStore } = await import('../../core/src/store/embedded.js');
    return EmbeddedStore.open(store.path ?? join(config.data_dir, 'store'));
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

/** Checks every target credential resolves now, so a missing secret fails at start, not at first use. */
function targetResolver(config: AgateConfig): (name: string) => UpstreamTarget | undefined {
  const targets = new Map(config.targets.filter((t): t is PostgresTargetConfig => t.protocol === 'postgres').map((t) => [t.name, t]));
  for (const t of targets.values()) readSecret(t.upstream.password, `targets.${t.name}.upstream.password`);
  return (name) => {
    const t = targets.get(name);
    if (t === undefined) return undefined;
    const { host, port, database, user, password, tls } = t.upstream;
    return { host, port, database, user, password: readSecret(password, `targets.${t.name}.upstream.password`), maskClient: targetMaskSet(config, t.mask_client), tls };
  };
}

/** SSH targets by name, with each credential read once at start (a missing key file fails start). */
function sshTargetResolver(config: AgateConfig): (name: string) => SshUpstreamTarget | undefined {
  const targets = new Map<string, SshUpstreamTarget>();
  for (const t of config.targets.filter((t): t is SshTargetConfig => t.protocol === 'ssh')) {
    const key = `targets.${t.name}.upstream`;
    const { host, port, user, private_key_file, password, host_key } = t.upstream;
    const target: SshUpstreamTarget = { name: t.name, host, port, user, hostKey: parsePinnedHostKey(host_key) };
    if (password !== undefined) target.password = readSecret(password, `${key}.password`);
    if (private_key_file !== undefined) {
      try {
        target.privateKey = readFileSync(private_key_file);
      } catch (cause) {
        throw new ConfigError(`${config.source}: ${key}.private_key_file: cannot read ${private_key_file}`, { cause });
      }
    }
    targets.set(t.name, target);
  }
  return (name) => targets.get(name);
}

/**
 * Where analyst SQL runs (SECURITY.md "Analyst SQL"). On the embedded engine, in a sandbox per
 * request; if this host cannot build one, Agate still starts but analyst SQL is refused with the
 * reason, never run unconfined unless the operator wrote `query.sql.sandbox: off`.
 */
function analystSql(config: AgateConfig, store: Store, logger: Logger): { run: AnalystSql; close: () => void } {
  const limits = config.query.sql;
  if (config.store.kind === 'clickhouse') return { run: unconfinedAnalystSql(store, limits), close: () => undefined };
  if (limits.sandbox === 'off') {
    logger.warn('query.sql.sandbox is off: analyst SQL runs inside Agate\'s process, and only the allow-list stands between an analyst and Agate\'s keys, environment and files (SECURITY.md "Analyst SQL")');
    return { run: unconfinedAnalystSql(store, limits), close: () => undefined };
  }
  let sandbox: AnalystSandbox;
  try {
    sandbox = AnalystSandbox.create(config.store.path ?? join(config.data_dir, 'store'), store);
  } catch (err) {
    logger.error('analyst SQL is refused on this host: its sandbox cannot be set up', { error: (err as Error).message });
    return { run: () => Promise.reject(err), close: () => undefined };
  }
  return { run: sandboxedAnalystSql(sandbox, limits), close: () => sandbox.close() };
}

/** Runs the given roles in this process. */
export async function startServices(config: AgateConfig, roles: readonly Role[], logger: Logger): Promise<Running> {
  await loadParsers();
  const codec = new EventCodec();
  const resolveTarget = roles.includes('proxy') ? targetResolver(config) : undefined;
  const resolveSshTarget = roles.includes('proxy') && config.proxy.ssh !== undefined ? sshTargetResolver(config) : undefined;
  const verifier = roles.includes('proxy') || roles.includes('query') ? await buildVerifier(config) : undefined;
  // The policy service reads open approvals back from the ledger after a restart; alone in its
  // process it opens only a ClickHouse server (the embedded engine belongs to one process).
  const policyReadsStore = roles.includes('policy') && config.store.kind === 'clickhouse';
  const store = roles.includes('ledger') || roles.includes('query') || policyReadsStore ? await openStore(config) : undefined;
  let bus: Bus | undefined;
  // Off (undefined) without telemetry.otlp.endpoint: then no span is made anywhere.
  const tracing = tracingFromConfig(config.telemetry, config.instance_id);
  /** Proxies' leases, on Kafka: the ledger closes the sessions of proxies that died. */
  let leases: ProxyLeases | undefined;
  const started: Stoppable[] = [];
  const drainable: Drainable[] = [];
  // Listeners and dependencies report into the process's readiness; each is withdrawn at stop.
  const reported: string[] = [];
  const report = (component: string) => {
    reported.push(component);
    readiness.set(component, READY);
  };
  if (store !== undefined) {
    reported.push('store');
    readiness.probe('store', async () => {
      await store.query('SELECT 1');
      return READY;
    });
  }
  const throttle = loginThrottle(config.logins);
  // Components' own accounts of themselves (a stopped consumer, a ledger refusing to append),
  // asked at every /readyz (and, when `live`, /healthz) of the ops listener and the query API.
  const reportProblems = (component: string, problem: () => string | undefined, live = false) => {
    reported.push(component);
    readiness.probe(component, problemProbe(problem), { live });
  };
  const out: Running = {
    drain: async (timeoutMs) => {
      for (const c of reported.filter((c) => c.startsWith('listener.'))) readiness.set(c, { ready: false, reason: 'draining' });
      await Promise.all(drainable.map((d) => d.drain(timeoutMs)));
    },
    stop: async () => {
      for (const c of reported) readiness.remove(c);
      for (const s of started.reverse()) await s.stop();
      await bus?.close();
      await store?.close();
      // The spans of the last commands go out before the process ends; a collector away only delays it.
      await tracing?.shutdown().catch((err: unknown) => logger.warn('cannot export the last spans', { error: describeError(err) }));
    },
  };
  try {
    // A query service alone needs the bus only to publish approvers' answers (Kafka).
    if (roles.some((r) => r !== 'query') || config.bus.kind === 'kafka') {
      const inner = await openBus(config, codec, roles, logger);
      if (inner instanceof KafkaBus) leases = inner;
      // Everything the services publish and consume feeds metrics and readiness on the way.
      const instrumented = new InstrumentedBus(inner, readiness, inner instanceof KafkaBus ? () => inner.ping() : undefined);
      // With trace export on, each command a proxy of this process asks a verdict for gets a span.
      bus = tracing !== undefined && roles.includes('proxy') ? new CommandSpans(instrumented, tracing) : instrumented;
      // A consumer that stopped does not come back by itself: not live, so an orchestrator restarts it.
      reportProblems('bus.consumers', () => inner.problem?.(), true);
      // A write the bus refused (a full disk): not ready while it lasts, and /readyz says why.
      reportProblems('bus.append', () => instrumented.writeProblem());
      // The proxies of the previous run are gone: what they left open (a crash, a kill) is
      // closed in the record before any listener opens.
      if (inner instanceof LocalBus && roles.includes('proxy')) started.push((await OpenWorkTracker.recover(inner, bus, logger.child({ component: 'recovery' }), nowMicros)).tracker);
    }
    if (roles.includes('ledger')) {
      const ledgerLogger = logger.child({ component: 'ledger' });
      const { checkpoint } = config.ledger;
      const sinks: CheckpointSink[] = [];
      if (checkpoint.dir !== undefined) sinks.push(directorySink(checkpoint.dir));
      if (checkpoint.webhook !== undefined) sinks.push(webhookSink(checkpoint.webhook, ledgerLogger));
      const ledger = new LedgerService({
        bus: bus!, store: store!, codec, logger: ledgerLogger, signer: ledgerSigner(config, config.bus.kind !== 'kafka'),
        // The embedded log is one stream; on Kafka every partition is a chain of its own.
        chainId: config.bus.kind === 'local' ? LOCAL_STREAM.stream : `${config.bus.events_topic}-0`,
        checkpoints: { everyEvents: checkpoint.every_events, everyMs: checkpoint.every_ms, sinks },
        dedupWindow: config.ledger.dedup_window, retentionDays: config.ledger.retention_days,
        // Whichever process made them, the session tables are filled by the ledger's inserts.
        refillDerived: (chain, from, to) => refillSessionTables(store!, chain, from, to),
        tracing,
      });
      await ledger.start();
      started.push(ledger);
      if (leases !== undefined && config.bus.kind === 'kafka') {
        // The ledger closes the sessions of proxies that died (lease-sweeper.ts says why the ledger).
        const lease = config.bus.proxy_lease_ms;
        const sweeper = new LeaseSweeper({ leases, bus: bus!, store: store!, logger: ledgerLogger.child({ component: 'leases' }), expiryMs: lease, everyMs: Math.min(5_000, Math.max(500, lease / 2)) });
        sweeper.start();
        started.push(sweeper);
      }
      out.ledger = ledger;
      reportProblems('ledger', () => ledger.problem());
    }
    if (roles.includes('policy')) {
      const policyLogger = logger.child({ component: 'policy' });
      const compiled = new CompiledPolicy(config.policy, config.masking.audit);
      const history = store === undefined ? undefined : new StoreApprovalHistory(store);
      // One process on the local bus: the proxies waiting on holds from before this start are gone.
      const holdsDieWithProcess = config.bus.kind === 'local' && roles.includes('proxy');
      const policy = new PolicyService({ bus: bus!, policy: compiled, logger: policyLogger, staleAfterMs: config.proxy.verdict_timeout_ms, history, holdsDieWithProcess, tracing });
      await policy.start();
      started.push(policy);
      const webhooks = new ApprovalWebhooks({ bus: bus!, webhooks: config.approvals.webhooks, logger: policyLogger.child({ component: 'approval-webhooks' }), source: config.source });
      await webhooks.start();
      started.push(webhooks);
      // Edits to the policy in the config file apply without a restart; a bad edit is refused.
      if (config.policy.reload_ms > 0) {
        const reloader = new PolicyReloader({ path: config.source, apply: (p) => policy.setPolicy(p), logger: policyLogger, intervalMs: config.policy.reload_ms });
        reloader.start(compiled);
        started.push({ stop: async () => reloader.stop() });
      }
    }
    // The proxies of this process register here; the query API terminates their sessions.
    const liveSessions = new LiveSessions();
    if (roles.includes('query')) {
      const required = Object.entries(config.query.require_claims).map(([name, globs]) => ({ name, test: anyGlob(globs) }));
      const claim = (id: Identity, name: string) => (name === 'sub' ? id.subject : name === 'iss' ? id.issuer : id.claims[name]);
      const authorize = (id: Identity) => required.every((r) => { const v = claim(id, r.name); return v !== undefined && r.test(v); });
      await migrateQuery(store!);
      // Distributed: the proxies are other processes; a terminate goes to them over the bus.
      const sessionEnds = config.bus.kind === 'kafka' && bus !== undefined ? new SessionEnds(bus, config.instance_id) : undefined;
      if (sessionEnds !== undefined) {
        await sessionEnds.start();
        started.push({ stop: () => sessionEnds.close() });
      }
      const sql = analystSql(config, store!, logger.child({ component: 'query' }));
      started.push({ stop: async () => sql.close() });
      const api = new QueryApi({ store: store!, codec, verifier: verifier!, authorize, roles: roleResolver(config.query.roles), analystSql: sql.run, logger: logger.child({ component: 'query' }), bus, tls: readServerTls(config.query.tls, 'query.tls'), logins: loginGuard(config.logins, throttle), readiness, ledgerVerify: checkpointSources(config), console: config.console,
        policy: new PolicyInForce(config.source, { policy: config.policy, masking: config.masking }),
        liveSessions: roles.includes('proxy') ? liveSessions : undefined, sessionEnds,
        recordRefusal: apiRefusalRecorder(bus, config.instance_id, logger.child({ component: 'query' })),
      });
      const q = splitHostPort(config.query.listen);
      out.api = await api.listen(q.host, q.port);
      started.push({ stop: () => api.close() });
      report('listener.query');
    }
    if (roles.includes('proxy')) {
      const proxy = new PgProxyServer({
        bus: bus!, verifier: verifier!, resolveTarget: resolveTarget!, proxyId: config.instance_id, verdictTimeoutMs: config.proxy.verdict_timeout_ms,
        maxMessageSize: config.proxy.postgres.max_message_bytes, maxConnections: config.proxy.postgres.max_connections, logger, ...pgProxyConfigDeps(config),
        logins: loginGuard(config.logins, throttle),
      });
      const p = splitHostPort(config.proxy.postgres.listen);
      out.postgres = await proxy.listen(p.host, p.port);
      liveSessions.add(proxy);
      started.push({ stop: () => proxy.shutdown() });
      drainable.push(proxy);
      report('listener.postgres');
      const sshConfig = config.proxy.ssh;
      if (sshConfig !== undefined) {
        const ssh = new SshProxyServer({
          bus: bus!, verifier: verifier!, resolveTarget: resolveSshTarget!, proxyId: config.instance_id, verdictTimeoutMs: config.proxy.verdict_timeout_ms,
          connectTimeoutMs: 10_000, logger, audit: new Masker(config.masking.audit, config.masking.sets[config.masking.audit]!),
          hostKey: loadOrCreateHostKey(sshConfig.host_key_file), maxConnections: sshConfig.max_connections, authorizedKeys: new AuthorizedKeys(sshConfig.authorized_keys),
          logins: loginGuard(config.logins, throttle),
        });
        const s = splitHostPort(sshConfig.listen);
        out.ssh = await ssh.listen(s.host, s.port);
        liveSessions.add(ssh);
        started.push({ stop: () => ssh.shutdown() });
        drainable.push(ssh);
        report('listener.ssh');
      }
      if (config.bus.kind === 'kafka') {
        // A query service in another process asks for terminations over the bus.
        const terminations = await readTerminationRequests(bus!, liveSessions, config.instance_id, logger.child({ component: 'proxy' }));
        started.push({ stop: () => terminations.close() });
      }
      for (const t of kubernetesTargets(config)) {
        const kube = new KubeProxyServer({
          bus: bus!, verifier: verifier!, proxyId: config.instance_id, verdictTimeoutMs: config.proxy.verdict_timeout_ms, logger,
          target: await kubeProxyTarget(config, t), logins: loginGuard(config.logins, throttle),
        });
        started.push({ stop: () => kube.shutdown() });
        drainable.push(kube);
        const k = splitHostPort(t.listen);
        (out.kubernetes ??= {})[t.name] = await kube.listen(k.host, k.port);
        report(`listener.kubernetes.${t.name}`);
      }
    }
    return out;
  } catch (err) {
    await out.stop().catch(() => undefined);
    throw err;
  }
}

export const ALL_ROLES: readonly Role[] = ['proxy', 'policy', 'ledger', 'query'];

/** All four services in one process, with both listeners up. */
export interface RunningAgate extends Running {
  postgres: AddressInfo;
  api: AddressInfo;
  ledger: LedgerService;
}

export async function startEmbedded(config: AgateConfig, logger: Logger): Promise<RunningAgate> {
  return (await startServices(config, ALL_ROLES, logger)) as RunningAgate;
}

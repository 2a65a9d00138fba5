import { join } from 'node:path';
import type { AddressInfo } from 'node:net';
import { LocalBus } from '../../core/src/bus/local-bus.js';
import { readSecret, type AgateConfig } from '../../core/src/config.js';
import { anyGlob } from '../../core/src/glob.js';
import { devTrustedIssuer } from '../../core/src/identity/dev-issuer.js';
import { remoteIssuer, TokenVerifier } from '../../core/src/identity/oidc.js';
import type { Logger } from '../../core/src/log.js';
import { initSqlParser } from '../../core/src/sql/analyze.js';
import { EmbeddedStore } from '../../core/src/store/embedded.js';
import { EventCodec } from '../../schemas/src/codec.js';
import type { Identity } from '../../schemas/src/events.js';
import { PgProxyServer } from '../../services/ingress-proxy/src/pg/server.js';
import type { UpstreamTarget } from '../../services/ingress-proxy/src/pg/upstream.js';
import { LedgerService } from '../../services/ledger/src/ledger.js';
import { CompiledPolicy } from '../../services/policy/src/engine.js';
import { PolicyService } from '../../services/policy/src/service.js';
import { QueryApi } from '../../services/query/src/http-api.js';
import { roleResolver } from '../../services/query/src/roles.js';
import { migrateQuery } from '../../services/query/src/schema.js';

export interface RunningAgate {
  postgres: AddressInfo;
  api: AddressInfo;
  ledger: LedgerService;
  /** Graceful stop: disconnect clients, record their session ends, drain the bus, close the store. */
  stop(): Promise<void>;
}

export const EMBEDDED_CHAIN = 'embedded';

export async function buildVerifier(config: AgateConfig): Promise<TokenVerifier> {
  const issuers = config.identity.issuers.map(remoteIssuer);
  if (config.identity.dev_issuer.enabled) issuers.push(await devTrustedIssuer(config.data_dir, config.identity.dev_issuer.audience));
  return new TokenVerifier(issuers);
}

export function splitHostPort(listen: string): { host: string; port: number } {
  const i = listen.lastIndexOf(':');
  return { host: listen.slice(0, i), port: Number(listen.slice(i + 1)) };
}

/** Checks every target credential resolves now, so a missing secret fails at start, not at first use. */
function targetResolver(config: AgateConfig): (name: string) => UpstreamTarget | undefined {
  const targets = new Map(config.targets.map((t) => [t.name, t]));
  for (const t of targets.values()) readSecret(t.upstream.password, `targets.${t.name}.upstream.password`);
  return (name) => {
    const t = targets.get(name);
    if (t === undefined) return undefined;
    const { host, port, database, user, password } = t.upstream;
    return { host, port, database, user, password: readSecret(password, `targets.${t.name}.upstream.password`) };
  };
}

/** All four services in one process: the local bus, the embedded ClickHouse engine. */
export async function startEmbedded(config: AgateConfig, logger: Logger): Promise<RunningAgate> {
  await initSqlParser();
  const resolveTarget = targetResolver(config);
  const codec = new EventCodec();
  const verifier = await buildVerifier(config);
  const store = EmbeddedStore.open(config.store.path ?? join(config.data_dir, 'store'));
  const bus = new LocalBus({ dir: join(config.data_dir, 'bus'), fsync: config.bus.fsync, logger: logger.child({ component: 'bus' }) });
  const started: { stop(): Promise<void> }[] = [];
  try {
    const ledger = new LedgerService({ bus, store, codec, chainId: EMBEDDED_CHAIN, logger: logger.child({ component: 'ledger' }) });
    await ledger.start();
    started.push(ledger);
    const policy = new PolicyService({ bus, policy: new CompiledPolicy(config.policy), logger: logger.child({ component: 'policy' }), staleAfterMs: config.proxy.verdict_timeout_ms });
    await policy.start();
    started.push(policy);

    const required = Object.entries(config.query.require_claims).map(([name, globs]) => ({ name, test: anyGlob(globs) }));
    const authorize = (id: Identity) => required.every((r) => (r.name === 'sub' ? id.subject : id.claims[r.name]) !== undefined && r.test(r.name === 'sub' ? id.subject : id.claims[r.name]!));
    await migrateQuery(store);
    const api = new QueryApi({ store, codec, verifier, authorize, roles: roleResolver(config.query.roles), sqlLimits: config.query.sql, logger: logger.child({ component: 'query' }) });
    const q = splitHostPort(config.query.listen);
    const apiAddress = await api.listen(q.host, q.port);
    started.push({ stop: () => api.close() });

    const proxy = new PgProxyServer({
      bus, verifier, resolveTarget, proxyId: config.instance_id, verdictTimeoutMs: config.proxy.verdict_timeout_ms,
      maxMessageSize: config.proxy.postgres.max_message_bytes, maxConnections: config.proxy.postgres.max_connections, logger,
    });
    const p = splitHostPort(config.proxy.postgres.listen);
    const pgAddress = await proxy.listen(p.host, p.port);
    started.push({ stop: () => proxy.shutdown() });

    return {
      postgres: pgAddress,
      api: apiAddress,
      ledger,
      stop: async () => {
        for (const s of started.reverse()) await s.stop();
        await bus.close();
        await store.close();
      },
    };
  } catch (err) {
    for (const s of started.reverse()) await s.stop().catch(() => undefined);
    await bus.close();
    await store.close();
    throw err;
  }
}

import type { AddressInfo } from 'node:net';
import { join } from 'node:path';
import type { Bus } from '../../../core/src/bus/bus.js';
import type { AgateConfig } from '../../../core/src/config.js';
import type { TokenVerifier } from '../../../core/src/identity/oidc.js';
import { splitHostPort } from '../../../core/src/host-port.js';
import type { OnStarted } from '../../../core/src/lifecycle.js';
import { loginGuard } from '../../../core/src/logins/from-config.js';
import type { LoginThrottle } from '../../../core/src/logins/throttle.js';
import type { Logger } from '../../../core/src/log.js';
import type { Readiness } from '../../../core/src/ops/readiness.js';
import type { Store } from '../../../core/src/store/store.js';
import { readServerTls } from '../../../core/src/tls-files.js';
import type { EventCodec } from '../../../schemas/src/codec.js';
import type { LiveSessions } from '../../ingress-proxy/src/live-sessions.js';
import { checkpointSources } from '../../ledger/src/from-config.js';
import { PolicyInForce } from '../../policy/src/in-force.js';
import { apiRefusalRecorder } from './auth-record.js';
import { QueryApi } from './http-api.js';
import { claimsAuthorizer } from './require-claims.js';
import { roleResolver } from './roles.js';
import { migrateQuery } from './schema.js';
import { SessionEnds } from './session-ends.js';
import { sandboxedAnalystSql, unconfinedAnalystSql, type AnalystSql } from './sql-endpoint.js';
import { AnalystSandbox } from './sql/sandbox.js';

/** What the query service reads from the config. */
type QuerySlice = Pick<AgateConfig, 'source' | 'instance_id' | 'data_dir' | 'query' | 'logins' | 'console' | 'policy' | 'masking' | 'ledger' | 'store' | 'bus'>;

interface QueryShared {
  store: Store;
  codec: EventCodec;
  verifier: TokenVerifier;
  /** Where approvers' answers are published; a query service alone on the local bus has none. */
  bus: Bus | undefined;
  logger: Logger;
  /** This process's readiness, served at /healthz and /readyz. */
  readiness: Readiness;
  /** The process's one failed-login throttle. */
  throttle: LoginThrottle;
  /** The proxies of this process, whose sessions the API terminates; none when they run elsewhere. */
  liveSessions: LiveSessions | undefined;
  onStarted: OnStarted;
}

/** Starts the query service's API of this config and returns where it listens. */
export async function queryFromConfig(config: QuerySlice, shared: QueryShared): Promise<AddressInfo> {
  const { store, codec, verifier, bus, readiness } = shared;
  const logger = shared.logger.child({ component: 'query' });
  await migrateQuery(store);
  // Distributed: the proxies are other processes; a terminate goes to them over the bus.
  const sessionEnds = config.bus.kind === 'kafka' && bus !== undefined ? new SessionEnds(bus) : undefined;
  if (sessionEnds !== undefined) {
    await sessionEnds.start();
    shared.onStarted({ stop: () => sessionEnds.close() });
  }
  const sql = analystSql(config, store, logger);
  shared.onStarted({ stop: async () => sql.close() });
  const api = new QueryApi({
    store, codec, verifier, bus, readiness, logger, authorize: claimsAuthorizer(config.query.require_claims), roles: roleResolver(config.query.roles), analystSql: sql.run,
    tls: readServerTls(config.query.tls, 'query.tls'), logins: loginGuard(config.logins, shared.throttle), ledgerVerify: checkpointSources(config), console: config.console,
    policy: new PolicyInForce(config.source, { policy: config.policy, masking: config.masking }),
    liveSessions: shared.liveSessions, sessionEnds, recordRefusal: apiRefusalRecorder(bus, config.instance_id, logger),
  });
  const { host, port } = splitHostPort(config.query.listen);
  const address = await api.listen(host, port);
  shared.onStarted({ stop: () => api.close() });
  return address;
}

/**
 * Where analyst SQL runs (SECURITY.md "Analyst SQL"). On the embedded engine, in a sandbox per
 * request; if this host cannot build one, Agate still starts but analyst SQL is refused with the
 * reason, never run unconfined unless the operator wrote `query.sql.sandbox: off`.
 */
function analystSql(config: QuerySlice, store: Store, logger: Logger): { run: AnalystSql; close: () => void } {
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

import { readFileSync } from 'node:fs';
import { createSecureContext, type SecureContext } from 'node:tls';
import { readSecret, type AgateConfig, type PostgresTargetConfig } from '../../../../core/src/config.js';
import { ConfigError, type AgateError } from '../../../../core/src/errors.js';
import type { MaskSets } from '../masking/mask-sets.js';
import type { Masker } from '../masking/masker.js';
import { MaskReadings } from './masking/mask-readings.js';
import type { ProxyShared } from '../proxy-shared.js';
import type { RecordingOptions } from './result-recorder.js';
import { PgProxyServer } from './server.js';
import type { UpstreamTarget } from './upstream.js';

/** What the PostgreSQL proxy reads from the config. */
type PgProxySlice = Pick<AgateConfig, 'source' | 'targets'> & { proxy: Pick<AgateConfig['proxy'], 'postgres'> };

/**
 * The PostgreSQL proxy of this config, not yet listening. Every target credential and the TLS
 * certificate are read here, so a missing secret or file fails start before any listener opens.
 */
export function pgProxyFromConfig(config: PgProxySlice, shared: ProxyShared): PgProxyServer {
  const { bus, verifier, proxyId, verdictTimeoutMs, logger, masks } = shared;
  const { max_message_bytes, max_connections } = config.proxy.postgres;
  return new PgProxyServer({
    bus, verifier, proxyId, verdictTimeoutMs, logger, maxMessageSize: max_message_bytes, maxConnections: max_connections,
    ...pgProxyConfigDeps(config, masks), resolveTarget: pgTargetResolver(config, masks), logins: shared.loginGuard(),
  });
}

/** The parts of the PostgreSQL proxy's dependencies that come straight from configuration. */
interface PgProxyConfigDeps {
  recording: RecordingOptions;
  maskers: ReadonlyMap<string, Masker>;
  tls?: SecureContext;
}

/** Loads the TLS certificate once, at start (a bad file fails start), beside the mask sets compiled for every protocol. */
export function pgProxyConfigDeps(config: PgProxySlice, masks: MaskSets): PgProxyConfigDeps {
  const { record_rows, record_value_chars, tls } = config.proxy.postgres;
  const deps: PgProxyConfigDeps = { recording: { sampleRows: record_rows, valueChars: record_value_chars, audit: masks.audit, readings: new MaskReadings() }, maskers: masks.byName };
  if (tls !== undefined) {
    try {
      deps.tls = createSecureContext({ cert: readFileSync(tls.cert), key: readFileSync(tls.key) });
    } catch (cause) {
      throw new ConfigError(`${config.source}: proxy.postgres.tls: cannot load the certificate or key: ${(cause as AgateError).message}`, { cause });
    }
  }
  return deps;
}

/** Checks every target credential resolves now, so a missing secret fails at start, not at first use. */
function pgTargetResolver(config: PgProxySlice, masks: MaskSets): (name: string) => UpstreamTarget | undefined {
  const targets = new Map(config.targets.filter((t): t is PostgresTargetConfig => t.protocol === 'postgres').map((t) => [t.name, t]));
  for (const t of targets.values()) readSecret(t.upstream.password, `targets.${t.name}.upstream.password`);
  return (name) => {
    const t = targets.get(name);
    if (t === undefined) return undefined;
    const { host, port, database, user, password, tls } = t.upstream;
    return { host, port, database, user, password: readSecret(password, `targets.${t.name}.upstream.password`), maskClient: masks.clientSet(t.mask_client), tls };
  };
}

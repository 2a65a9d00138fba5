import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { startEmbedded, type RunningAgate } from '../../cli/src/components.js';
import { parseConfig } from '../../core/src/config.js';
import { silentLogger } from '../../core/src/log.js';
import { startOidcIssuer, type OidcIssuer } from './oidc-issuer.js';
import { findFreePort, startPostgres, type PostgresServer } from './postgres.js';

/** An in-process Agate (embedded engine) proxying a real PostgreSQL, with a real OIDC issuer and the query API. */
export interface EmbeddedAgate {
  pg: PostgresServer;
  issuer: OidcIssuer;
  agate: RunningAgate;
  dir: string;
  /** The query API's base URL. */
  base: string;
  /** Stops Agate, the issuer and PostgreSQL and removes the data directory (whatever of them started). */
  stop(): Promise<void>;
}

interface EmbeddedAgateOptions {
  /** Prefix of the temporary data directory. */
  prefix: string;
  /** The `policy:` section, YAML. */
  policyYaml: string;
  /** Keys under `query:` besides `listen`, as YAML lines indented by two spaces. */
  queryYaml: string;
}

/** Starts PostgreSQL, an issuer and Agate with target `appdb` (the harness's scram role upstream). */
export async function startEmbeddedAgate(options: EmbeddedAgateOptions): Promise<EmbeddedAgate> {
  const parts: Partial<EmbeddedAgate> = {};
  const stop = async () => {
    await parts.agate?.stop();
    await parts.issuer?.close();
    await parts.pg?.stop();
    if (parts.dir) rmSync(parts.dir, { recursive: true, force: true });
  };
  try {
    parts.pg = await startPostgres();
    parts.issuer = await startOidcIssuer();
    parts.dir = mkdtempSync(join(tmpdir(), options.prefix));
    const { pg, issuer, dir } = parts;
    const [pgPort, apiPort] = [await findFreePort(), await findFreePort()];
    const config = parseConfig(
      `
data_dir: ${dir}
identity:
  issuers: [{ issuer: "${issuer.issuer}", audience: agate, jwks_uri: "${issuer.jwksUri}" }]
bus: { fsync: false }
proxy: { postgres: { listen: 127.0.0.1:${pgPort} } }
targets:
  - name: appdb
    protocol: postgres
    upstream: { host: 127.0.0.1, port: ${pg.port}, database: appdb, user: ${pg.users.scram.user}, password: { value: "${pg.users.scram.password}" } }
${options.policyYaml.trim()}
query:
  listen: 127.0.0.1:${apiPort}
${options.queryYaml.replace(/\n+$/, '')}
`,
      join(dir, 'agate.yaml'),
    );
    parts.agate = await startEmbedded(config, silentLogger);
    return { pg, issuer, dir, agate: parts.agate, base: `http://127.0.0.1:${parts.agate.api.port}`, stop };
  } catch (err) {
    await stop();
    throw err;
  }
}

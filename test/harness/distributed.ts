/**
 * A distributed Agate over the real backbone, as the scale-out benchmark and its correctness test
 * run it: one PostgreSQL, an OIDC issuer, a Kafka broker, the schema registry, the store behind
 * the ClickHouse HTTP test double, and each service in its own `agate <role>` process, each with
 * its own ops listener (so every process's /metrics and /readyz can be read). Ledgers share one
 * checkpoint key, as the Kafka bus requires; policies and ledgers each form one consumer group.
 */
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { ClickHouseStore } from '../../core/src/store/clickhouse.js';
import { createSecretFile } from '../../core/src/secret-file.js';
import { generateSignerKey } from '../../services/ledger/src/note.js';
import { runCli, type CliResult } from '../e2e/agate-process.js';
import { startRole, type Role, type RoleProcess } from '../e2e/role-process.js';
import { startClickHouseHttpDouble, type ClickHouseHttpDouble } from './clickhouse-http-double.js';
import { startKafka, type KafkaBroker } from './kafka.js';
import { startOidcIssuer, type OidcIssuer } from './oidc-issuer.js';
import { findFreePort, startPostgres, type PostgresServer } from './postgres.js';
import { startSchemaRegistry, type SchemaRegistryServer } from './schema-registry.js';

interface DistributedOptions {
  /** Partitions of the events topic: one hash chain each. */
  partitions: number;
  policies: number;
  ledgers: number;
  verdictTimeoutMs: number;
  /**
   * Events through the schema registry (Confluent wire format), as a production deployment runs;
   * without it, Avro single-object encoding (one JVM fewer to start on a loaded machine).
   */
  registry: boolean;
  /** Names of proxy processes started with the services (more with `addProxy`). */
  proxies?: string[];
  /** The `policy:` section's body (YAML, indented by two), e.g. `  default: allow`. */
  policyYaml: string;
}

/** One `agate <role>` process with its ops port and config file. */
interface Member {
  role: Role;
  instance: string;
  config: string;
  ops: number;
  process: RoleProcess;
}

/** A proxy process and the port psql connects to. */
export interface ProxyMember extends Member {
  port: number;
}

export interface Distributed {
  pg: PostgresServer;
  issuer: OidcIssuer;
  broker: KafkaBroker;
  registry: SchemaRegistryServer | undefined;
  double: ClickHouseHttpDouble;
  /** A client of the shared store, for the test's own reading. */
  store: ClickHouseStore;
  dir: string;
  /** The query API's base URL. */
  api: string;
  /** Policy, ledger and query processes, in start order. */
  services: Member[];
  /** The proxies named in the options, in that order. */
  proxies: ProxyMember[];
  /** Starts one more `agate proxy` process (instance `name`). */
  addProxy(name: string): Promise<ProxyMember>;
  /** `agate verify` against the query API, as `token`'s holder. */
  verify(token: string): Promise<CliResult>;
  /** Stops every process started here (proxies included), then the backbone, and removes the files. */
  stop(): Promise<void>;
}

export async function startDistributed(options: DistributedOptions): Promise<Distributed> {
  const started = await Promise.allSettled([
    startPostgres(), startOidcIssuer(), startKafka(), options.registry ? startSchemaRegistry() : undefined, startClickHouseHttpDouble(),
  ] as const);
  const failed = started.find((r) => r.status === 'rejected');
  if (failed !== undefined) {
    // Whatever did start is stopped, so a failed start leaves no server behind.
    const up = <T>(r: PromiseSettledResult<T>) => (r.status === 'fulfilled' ? r.value : undefined);
    const [p, i, k, r, d] = started;
    await Promise.all([up(p)?.stop(), up(i)?.close(), up(k)?.destroy(), up(r)?.close(), up(d)?.close()]);
    throw failed.reason;
  }
  const [pg, issuer, broker, registry, double] = started.map((r) => (r as PromiseFulfilledResult<unknown>).value) as [
    PostgresServer, OidcIssuer, KafkaBroker, SchemaRegistryServer | undefined, ClickHouseHttpDouble,
  ];
  const dir = mkdtempSync(join(tmpdir(), 'agate-distributed-'));
  const apiPort = await findFreePort();
  const signingKey = join(dir, 'checkpoint.key');
  // Made once, as `agate ledger-key` does: on Kafka a ledger generates none, and all share it.
  createSecretFile(signingKey, generateSignerKey('agate.local/ledger') + '\n');
  const q = JSON.stringify;
  const configFor = (instance: string, pgPort: number, opsPort: number) => `instance_id: ${instance}
data_dir: ${q(join(dir, instance))}
identity: { issuers: [{ issuer: ${q(issuer.issuer)}, audience: agate }] }
bus:
  kind: kafka
  brokers: [${q(broker.bootstrap)}]
  partitions: ${options.partitions}
  replication_factor: 1
${registry === undefined ? '' : `  schema_registry: { url: ${q(registry.url)} }\n`}store: { kind: clickhouse, url: ${q(double.url)} }
ledger: { signing_key: ${q(signingKey)} }
proxy:
  postgres: { listen: "127.0.0.1:${pgPort}", max_connections: 1000 }
  verdict_timeout_ms: ${options.verdictTimeoutMs}
targets:
  - name: appdb
    protocol: postgres
    upstream: { host: 127.0.0.1, port: ${pg.port}, database: appdb, user: ${q(pg.users.scram.user)}, password: { value: ${q(pg.users.scram.password)} } }
policy:
${options.policyYaml}
query: { listen: "127.0.0.1:${apiPort}" }
ops: { listen: "127.0.0.1:${opsPort}" }
`;
  const members: Member[] = [];
  const start = async (role: Role, instance: string, pgPort = 0): Promise<Member & { port: number }> => {
    const ops = await findFreePort();
    const config = join(dir, `${instance}.yaml`);
    writeFileSync(config, configFor(instance, pgPort === 0 ? await findFreePort() : pgPort, ops));
    const member = { role, instance, config, ops, port: pgPort, process: await startRole(role, config) };
    members.push(member);
    return member;
  };
  const store = new ClickHouseStore({ url: double.url, username: 'default', password: '' });
  const stop = async () => {
    await Promise.all(members.map((m) => m.process.stop().catch(() => undefined)));
    await store.close();
    await Promise.all([pg.stop(), issuer.close(), broker.destroy(), registry?.close(), double.close()]);
    rmSync(dir, { recursive: true, force: true });
  };
  try {
    const services: Member[] = [await start('ledger', 'ledger-1')]; // first: it makes the schema
    const rest: [Role, string][] = [
      ...Array.from({ length: options.ledgers - 1 }, (_, i): [Role, string] => ['ledger', `ledger-${i + 2}`]),
      ...Array.from({ length: options.policies }, (_, i): [Role, string] => ['policy', `policy-${i + 1}`]),
      ['query', 'query'],
    ];
    // Proxies start with the other services: they wait for verdicts only once a client connects.
    // Every start settles before a failure is thrown: one still starting when stop() ran was left running.
    const starting = await Promise.allSettled([
      ...rest.map(([role, instance]) => start(role, instance)),
      ...(options.proxies ?? []).map(async (name) => start('proxy', name, await findFreePort())),
    ]);
    const refused = starting.find((r) => r.status === 'rejected');
    if (refused !== undefined) throw refused.reason;
    const up = starting.map((r) => (r as PromiseFulfilledResult<ProxyMember>).value);
    const others = up.slice(0, rest.length);
    const proxies = up.slice(rest.length);
    services.push(...others);
    return {
      pg, issuer, broker, registry, double, store, dir, api: `http://127.0.0.1:${apiPort}`, services, proxies,
      addProxy: async (name) => start('proxy', name, await findFreePort()),
      verify: (token) => runCli(['verify', '--config', services[0]!.config, '--token', token, '--url', `http://127.0.0.1:${apiPort}`]),
      stop,
    };
  } catch (err) {
    await stop();
    throw err;
  }
}

/** The proxies' verdict latency histograms (`agate_verdict_latency_seconds`), summed: total seconds and count. */
export async function verdictLatencySums(opsPorts: readonly number[]): Promise<{ sum: number; count: number }> {
  let sum = 0;
  let count = 0;
  for (const port of opsPorts) {
    const text = await (await fetch(`http://127.0.0.1:${port}/metrics`)).text();
    for (const line of text.split('\n')) {
      const m = /^agate_verdict_latency_seconds_(sum|count)\{[^}]*\} ([0-9.e+-]+)$/.exec(line);
      if (m === null) continue;
      if (m[1] === 'sum') sum += Number(m[2]);
      else count += Number(m[2]);
    }
  }
  return { sum, count };
}

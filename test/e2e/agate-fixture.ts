// A real Agate for end-to-end tests: a throwaway PostgreSQL 15, a real OIDC issuer over HTTP,
// and `agate start` as a child process (agate-process.ts) with its own data directory. Tests
// talk to it with real clients (psql, pgbench, node-postgres, psycopg) and read what it recorded.
import { readFileSync } from 'node:fs';
import { rm } from 'node:fs/promises';
import { join } from 'node:path';
import pg from 'pg';
import { cleanEnv, sshTargetYaml, startAgateProcess } from './agate-process.js';
import { EventCodec } from '../../schemas/src/codec.js';
import { busLogBytes, logEvents } from './bus-log.js';
import type { AgateEvent } from '../../schemas/src/events.js';
import { startOidcIssuer, type OidcIssuer } from '../harness/oidc-issuer.js';
import { startPostgres, type PgUserKey, type PostgresServer } from '../harness/postgres.js';
import { eventsSeen, until } from '../harness/until.js';
import { connectAgent } from '../harness/agent-client.js';
import type { SshServer } from '../harness/sshd.js';

export interface AgateFixture {
  pg: PostgresServer;
  oidc: OidcIssuer;
  dir: string;
  /** The agate process id (to watch its memory). */
  pid: number;
  host: string;
  port: number;
  /** The query API's base URL (`http://127.0.0.1:PORT`). */
  apiUrl: string;
  /** The SSH proxy's address, when `ssh` was given. */
  ssh?: { host: string; port: number };
  /** A fresh token shaped like a GitHub Actions id-token, with `extra` claims added. */
  token(extra?: Record<string, unknown>): Promise<string>;
  /** A connected node-postgres client through Agate to target `appdb`. */
  client(extra?: Record<string, unknown>): Promise<pg.Client>;
  /** Environment for libpq tools (psql, pgbench, psycopg) pointed at Agate. */
  libpqEnv(): Promise<NodeJS.ProcessEnv>;
  /** Every event in the bus log so far, decoded. */
  events(): AgateEvent[];
  /** Raw bytes of the bus log. */
  busLog(): Buffer;
  /** Everything Agate wrote to stdout and stderr. */
  logs(): string;
  stop(): Promise<void>;
  cleanup(): Promise<void>;
}

interface FixtureOptions {
  /** YAML appended to the generated config (masking:, extra target keys are set via `target`). */
  extraYaml?: string;
  /** Extra keys for the `appdb` target, as YAML lines indented under it. */
  targetYaml?: string;
  /** The policy section; default: allow, with DROP/TRUNCATE denied. */
  policyYaml?: string;
  /** Extra keys under proxy.postgres. */
  proxyYaml?: string;
  /** Extra keys inside the `appdb` target's upstream mapping, as YAML flow (e.g. `tls: { mode: require }`). */
  upstreamYaml?: string;
  /** Which harness role Agate logs in upstream as (scram-sha-256, md5 or cleartext password). */
  upstreamRole?: PgUserKey;
  /** Runs the SSH proxy too, with these targets (YAML list items) after `appdb`. */
  ssh?: { targetsYaml: string };
  /** Extra keys under query, as YAML lines (e.g. `tls: { cert: …, key: … }`). */
  queryYaml?: string;
  /** Node.js flags for the agate process (e.g. --cpu-prof when profiling a benchmark). */
  nodeArgs?: string[];
  /** Environment variables for the agate process (e.g. the C allocator's tunables a benchmark compares). */
  env?: Record<string, string>;
  /** Another build's `bin/agate.js` to start instead of this one (a benchmark's baseline). */
  bin?: string;
  /** PostgreSQL with pgaudit logging every statement it executes (see harness/postgres.ts). */
  pgaudit?: boolean;
}

const DEFAULT_POLICY = `policy:
  default: allow
  rules:
    - id: no-destructive-ddl
      action: deny
      message: DROP and TRUNCATE need a human
      match: { sql: { statements: [DropStmt, TruncateStmt] } }
`;

export async function startAgate(options: FixtureOptions = {}): Promise<AgateFixture> {
  const pgServer = await startPostgres({ pgaudit: options.pgaudit });
  const oidc = await startOidcIssuer();
  try {
    const cred = pgServer.users[options.upstreamRole ?? 'scram'];
    const proc = await startAgateProcess({
      nodeArgs: options.nodeArgs,
      env: options.env,
      bin: options.bin,
      files: { 'appdb.password': cred.password },
      configYaml: (places) => `data_dir: ./data
log_level: info
identity:
  issuers:
    - { issuer: "${oidc.issuer}", audience: agate, jwks_uri: "${oidc.jwksUri}" }
proxy:
  postgres:
    listen: ${places.pgListen}
${(options.proxyYaml ?? '').replace(/^/gm, '    ')}
${options.ssh ? '  ssh: { listen: 127.0.0.1:0, host_key_file: ./ssh_host_key }' : ''}
  verdict_timeout_ms: 10000
targets:
  - name: appdb
    protocol: postgres
    upstream: { host: 127.0.0.1, port: ${pgServer.port}, database: appdb, user: ${cred.user}, password: { file: ./appdb.password }${options.upstreamYaml ? `, ${options.upstreamYaml}` : ''} }
${(options.targetYaml ?? '').replace(/^/gm, '    ')}
${options.ssh?.targetsYaml ?? ''}
${options.policyYaml ?? DEFAULT_POLICY}
query:
  listen: ${places.apiListen}
${(options.queryYaml ?? '').replace(/^/gm, '  ')}
${options.extraYaml ?? ''}
`,
    });
    const address = { host: '127.0.0.1', port: proc.pgPort };
    const sshAddress = /^([\d.]+):(\d+)$/.exec(String(proc.started.ssh ?? ''));
    const token = (extra: Record<string, unknown> = {}) => oidc.mint(oidc.githubActionsClaims(extra));
    const codec = new EventCodec();
    const busLog = () => busLogBytes(join(proc.dataDir, 'bus'));
    let stopping: Promise<void> | undefined;
    const stop = async () => {
      try {
        await proc.stop(15_000);
      } finally {
        await oidc.close();
        await pgServer.stop();
      }
    };
    return {
      pg: pgServer,
      oidc,
      dir: proc.dir,
      pid: proc.pid,
      apiUrl: proc.apiUrl,
      ...address,
      ...(sshAddress ? { ssh: { host: sshAddress[1]!, port: Number(sshAddress[2]) } } : {}),
      token,
      client: async (extra = {}) => connectAgent({ host: address.host, port: address.port, token: await token(extra) }),
      async libpqEnv() {
        return cleanEnv({ PGHOST: address.host, PGPORT: String(address.port), PGDATABASE: 'appdb', PGUSER: 'agent', PGPASSWORD: await token(), PGSSLMODE: 'disable', PGCONNECT_TIMEOUT: '10' });
      },
      events: () => logEvents(busLog(), codec),
      busLog,
      logs: () => proc.stdout() + proc.stderr(),
      /** Stops Agate, the issuer and PostgreSQL; the data directory stays until `cleanup`. */
      stop: () => (stopping ??= stop()),
      async cleanup() {
        await (stopping ??= stop());
        await rm(proc.dir, { recursive: true, force: true });
      },
    };
  } catch (err) {
    await oidc.close();
    await pgServer.stop();
    throw err;
  }
}

/**
 * startAgate with the SSH proxy in front of `sshd` (target `box`) under a default-allow policy
 * whose `rules` are YAML list items indented four spaces; fails, with Agate's log, when it reports
 * no SSH address.
 */
export async function startAgateWithSsh(sshd: SshServer, rules: string): Promise<AgateFixture & { ssh: { host: string; port: number } }> {
  const agate = await startAgate({ ssh: { targetsYaml: sshTargetYaml(sshd) }, policyYaml: `policy:\n  default: allow\n  rules:\n${rules}` });
  if (agate.ssh === undefined) {
    const logs = agate.logs();
    await agate.cleanup();
    throw new Error(`agate did not report an ssh address:\n${logs}`);
  }
  return agate as AgateFixture & { ssh: { host: string; port: number } };
}

/** Waits until `predicate` holds over the recorded events (the bus is asynchronous); a timeout names the last ones seen. */
export async function waitForEvents(agate: AgateFixture, predicate: (events: AgateEvent[]) => boolean, timeoutMs = 30_000): Promise<AgateEvent[]> {
  return until(() => `the expected events (${eventsSeen(agate.events())})`, () => {
    const events = agate.events();
    return predicate(events) ? events : undefined;
  }, { timeoutMs, everyMs: 50 });
}

/** Waits until every recorded Command has its Response (the record of what was sent is complete). */
export async function untilAnswered(agate: AgateFixture): Promise<AgateEvent[]> {
  return waitForEvents(agate, (events) => {
    const answered = new Set(events.flatMap((e) => (e.type === 'Response' ? [e.command_id] : [])));
    return events.every((e) => e.type !== 'Command' || answered.has(e.event_id));
  });
}

/**
 * Waits until the bus log and PostgreSQL's server log both stop growing (each is written
 * asynchronously), polling every 200 ms for at most 20 s; reading the pgaudit log before then
 * would miss its last statements.
 */
export async function untilQuiet(agate: AgateFixture): Promise<void> {
  let last = '';
  for (let i = 0; i < 100; i++) {
    await new Promise((r) => setTimeout(r, 200));
    const now = `${agate.events().length}:${readFileSync(agate.pg.logFile).length}`;
    if (now === last) break;
    last = now;
  }
}

// A real Agate for end-to-end tests: a throwaway PostgreSQL 15, a real OIDC issuer over HTTP,
// and `node bin/agate.js start` as a child process with its own data directory. Tests talk to
// it with real clients (psql, pgbench, node-postgres, psycopg) and read what it recorded.
import { spawn, type ChildProcess } from 'node:child_process';
import { existsSync, readFileSync } from 'node:fs';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import pg from 'pg';
import { packageRoot } from '../../core/src/package-root.js';
import { EventCodec } from '../../schemas/src/codec.js';
import type { AgateEvent } from '../../schemas/src/events.js';
import { startOidcIssuer, type OidcIssuer } from '../harness/oidc-issuer.js';
import { startPostgres, type PgUserKey, type PostgresServer } from '../harness/postgres.js';

export interface AgateFixture {
  pg: PostgresServer;
  oidc: OidcIssuer;
  dir: string;
  /** The agate process id (to watch its memory). */
  pid: number;
  host: string;
  port: number;
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

export interface FixtureOptions {
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
  /** Node.js flags for the agate process (e.g. --cpu-prof when profiling a benchmark). */
  nodeArgs?: string[];
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
  const pgServer = await startPostgres();
  const oidc = await startOidcIssuer();
  const dir = await mkdtemp(join(tmpdir(), 'agate-e2e-'));
  let child: ChildProcess | undefined;
  try {
    const cred = pgServer.users[options.upstreamRole ?? 'scram'];
    await writeFile(join(dir, 'appdb.password'), cred.password, { mode: 0o600 });
    const config = `data_dir: ./data
log_level: info
identity:
  issuers:
    - { issuer: "${oidc.issuer}", audience: agate, jwks_uri: "${oidc.jwksUri}" }
proxy:
  postgres:
    listen: 127.0.0.1:0
${(options.proxyYaml ?? '').replace(/^/gm, '    ')}
${options.ssh ? '  ssh: { listen: 127.0.0.1:0, host_key_file: ./ssh_host_key }' : ''}
  verdict_timeout_ms: 5000
targets:
  - name: appdb
    protocol: postgres
    upstream: { host: 127.0.0.1, port: ${pgServer.port}, database: appdb, user: ${cred.user}, password: { file: ./appdb.password }${options.upstreamYaml ? `, ${options.upstreamYaml}` : ''} }
${(options.targetYaml ?? '').replace(/^/gm, '    ')}
${options.ssh?.targetsYaml ?? ''}
${options.policyYaml ?? DEFAULT_POLICY}
query:
  listen: 127.0.0.1:0
${options.extraYaml ?? ''}
`;
    await writeFile(join(dir, 'agate.yaml'), config);
    let output = '';
    const proc = spawn(process.execPath, [...(options.nodeArgs ?? []), join(packageRoot(), 'bin/agate.js'), 'start', '--config', join(dir, 'agate.yaml')], { stdio: ['ignore', 'pipe', 'pipe'] });
    child = proc;
    const address = await new Promise<{ host: string; port: number }>((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error(`agate did not start:\n${output}`)), 30_000);
      const onData = (d: Buffer) => {
        output += d.toString();
        const m = /"postgres":"([\d.]+):(\d+)"/.exec(output);
        if (m) {
          clearTimeout(timer);
          resolve({ host: m[1]!, port: Number(m[2]) });
        }
      };
      proc.stdout!.on('data', onData);
      proc.stderr!.on('data', onData);
      proc.once('exit', (code) => {
        clearTimeout(timer);
        reject(new Error(`agate exited with ${code}:\n${output}`));
      });
    });
    const sshAddress = /"ssh":"([\d.]+):(\d+)"/.exec(output);
    const token = (extra: Record<string, unknown> = {}) => oidc.mint(oidc.githubActionsClaims(extra));
    const codec = new EventCodec();
    const busLogPath = join(dir, 'data', 'bus', 'events.log');
    const busLog = () => (existsSync(busLogPath) ? readFileSync(busLogPath) : Buffer.alloc(0));
    let stopping: Promise<void> | undefined;
    const stop = async () => {
      if (proc.exitCode === null) {
        const exited = new Promise((r) => proc.once('exit', r));
        proc.kill('SIGTERM');
        const timer = setTimeout(() => proc.kill('SIGKILL'), 15_000);
        await exited;
        clearTimeout(timer);
      }
      await oidc.close();
      await pgServer.stop();
    };
    return {
      pg: pgServer,
      oidc,
      dir,
      pid: proc.pid!,
      ...address,
      ...(sshAddress ? { ssh: { host: sshAddress[1]!, port: Number(sshAddress[2]) } } : {}),
      token,
      async client(extra = {}) {
        const c = new pg.Client({ host: address.host, port: address.port, database: 'appdb', user: 'agent', password: await token(extra) });
        c.on('error', () => {});
        await c.connect();
        return c;
      },
      async libpqEnv() {
        const env: NodeJS.ProcessEnv = {};
        for (const [k, v] of Object.entries(process.env)) if (!k.startsWith('PG')) env[k] = v;
        return { ...env, PGHOST: address.host, PGPORT: String(address.port), PGDATABASE: 'appdb', PGUSER: 'agent', PGPASSWORD: await token(), PGSSLMODE: 'disable', PGCONNECT_TIMEOUT: '10' };
      },
      events() {
        const bytes = busLog();
        const out: AgateEvent[] = [];
        for (let pos = 0; pos + 4 <= bytes.length; ) {
          const len = bytes.readUInt32BE(pos);
          // Length 0: the zeros the log writes ahead of its records (core/src/bus/local-log.ts).
          if (len === 0 || pos + 4 + len > bytes.length) break;
          out.push(codec.decode(bytes.subarray(pos + 4, pos + 4 + len)));
          pos += 4 + len;
        }
        return out;
      },
      busLog,
      logs: () => output,
      /** Stops Agate, the issuer and PostgreSQL; the data directory stays until `cleanup`. */
      stop: () => (stopping ??= stop()),
      async cleanup() {
        await (stopping ??= stop());
        await rm(dir, { recursive: true, force: true });
      },
    };
  } catch (err) {
    child?.kill('SIGKILL');
    await oidc.close();
    await pgServer.stop();
    await rm(dir, { recursive: true, force: true });
    throw err;
  }
}

/** Waits until `predicate` holds over the recorded events (the bus is asynchronous). */
export async function waitForEvents(agate: AgateFixture, predicate: (events: AgateEvent[]) => boolean, timeoutMs = 10_000): Promise<AgateEvent[]> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const events = agate.events();
    if (predicate(events)) return events;
    if (Date.now() > deadline) throw new Error(`expected events did not appear within ${timeoutMs} ms (${events.length} events)`);
    await new Promise((r) => setTimeout(r, 50));
  }
}

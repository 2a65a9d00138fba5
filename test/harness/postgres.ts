// Throwaway PostgreSQL 15 servers for integration tests.
//
// Each startPostgres() call runs initdb into a fresh temp dir and starts a
// real postmaster on a free 127.0.0.1 port, with one login role per password
// auth method Agate has to proxy (SCRAM, MD5, cleartext). The binaries come
// from test/harness/install-postgres.sh.
import { spawnSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { existsSync, rmSync } from 'node:fs';
import { appendFile, chown, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { delimiter, join } from 'node:path';
import { describeFailure, run, type RunResult } from './proc.js';

export const DEFAULT_PG_BIN = '/usr/lib/postgresql/15/bin';

export type PgUserKey = 'scram' | 'md5' | 'plain' | 'trust';

interface PgCredentials {
  user: string;
  password: string;
}

interface StartPostgresOptions {
  /** Directory holding initdb/pg_ctl/postgres/psql. Default: $AGATE_PG_BIN or DEFAULT_PG_BIN. */
  binDir?: string;
  /** Deadline for initdb + startup + role setup. Default 120 000 ms (a loaded CI machine). */
  readyTimeoutMs?: number;
  /** Parent of the per-server temp dir. Default: os.tmpdir(). */
  baseDir?: string;
  /**
   * Loads pgaudit (shared_preload_libraries) with `pgaudit.log = 'all'`, so the server log holds an
   * `AUDIT:` line for every statement it executes, nested ones included: an oracle independent
   * of Agate. Log lines are prefixed `app=<application_name> user=<role> pid=<pid>`.
   */
  pgaudit?: boolean;
}

export interface PostgresServer {
  host: '127.0.0.1';
  port: number;
  /** Root of everything this server owns (data dir, socket, log); removed by stop(). */
  rootDir: string;
  dataDir: string;
  socketDir: string;
  logFile: string;
  superuser: 'postgres';
  users: Record<PgUserKey, PgCredentials>;
  database: 'appdb';
  /**
   * Runs SQL through the real psql client (-X -A -t -q, ON_ERROR_STOP) and
   * returns its stdout without the final newline: one line per row, columns
   * separated by '|'. Without asUser it connects as the superuser over the
   * unix socket; with asUser (a key of `users` or its role name) it connects
   * over TCP with that role's password, so the role's pg_hba method is used.
   */
  psql(sql: string, asUser?: PgUserKey | string, database?: string): Promise<string>;
  /** Fast shutdown, then removes rootDir. Safe to call more than once. */
  stop(): Promise<void>;
}

const ROLES: Record<PgUserKey, string> = { scram: 'agate_scram', md5: 'agate_md5', plain: 'agate_plain', trust: 'agate_trust' };
const HOST = '127.0.0.1';
const PORT_ATTEMPTS = 3;

/** Asks the kernel for a currently unused loopback port. */
export function findFreePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const srv = createServer();
    srv.unref();
    srv.on('error', reject);
    srv.listen(0, HOST, () => {
      const addr = srv.address();
      const port = typeof addr === 'object' && addr ? addr.port : 0;
      srv.close(() => (port ? resolve(port) : reject(new Error('could not determine a free port'))));
    });
  });
}

export async function startPostgres(opts: StartPostgresOptions = {}): Promise<PostgresServer> {
  const bin = opts.binDir ?? process.env.AGATE_PG_BIN ?? DEFAULT_PG_BIN;
  const deadline = Date.now() + (opts.readyTimeoutMs ?? 120_000);
  for (const tool of ['initdb', 'pg_ctl', 'postgres', 'psql']) {
    if (!existsSync(join(bin, tool))) {
      throw new Error(`PostgreSQL binary ${join(bin, tool)} not found; run test/harness/install-postgres.sh first`);
    }
  }
  const pgaudit = join(bin, '..', 'lib', 'pgaudit.so');
  if (opts.pgaudit === true && !existsSync(pgaudit)) throw new Error(`${pgaudit} not found; run test/harness/install-postgres.sh first (it installs postgresql-15-pgaudit)`);
  const asPg = await postgresOsUser();

  const rootDir = await mkdtemp(join(opts.baseDir ?? tmpdir(), 'agate-pg-'));
  // The socket path must fit in sun_path (108 bytes incl. ".s.PGSQL.NNNNN").
  if (rootDir.length > 85) {
    await rm(rootDir, { recursive: true, force: true });
    throw new Error(`temp dir path too long for a unix socket: ${rootDir}; set TMPDIR or baseDir to a shorter path`);
  }
  const dataDir = join(rootDir, 'data');
  const logFile = join(rootDir, 'server.log');
  const ctx: Ctx = { bin, rootDir, dataDir, logFile, asPg, pgaudit: opts.pgaudit === true };
  try {
    if (asPg.ids) await chown(rootDir, asPg.ids.uid, asPg.ids.gid);
    await checkOk(ctx, 'initdb', ['-D', dataDir, '-U', 'postgres', '--auth=trust', '--encoding=UTF8', '--locale=C', '--no-sync'], deadline);
    await configure(ctx);
    const port = await startPostmaster(ctx, deadline);
    const users = makeUsers();
    const server = makeServer(ctx, port, users);
    await psqlRun(ctx, port, setupSql(users), undefined, 'postgres', deadline);
    return server;
  } catch (err) {
    await destroy(ctx);
    throw err;
  }
}

interface OsUser {
  /** Set when we are root and must chown to / run as the postgres OS user. */
  ids?: { uid: number; gid: number };
  wrap(cmd: string, args: string[]): [string, string[]];
}

interface Ctx {
  bin: string;
  rootDir: string;
  dataDir: string;
  logFile: string;
  asPg: OsUser;
  pgaudit: boolean;
}

// postgres refuses to run as root, so as root every server-side command runs
// as the `postgres` OS user (created if missing). Otherwise we run directly.
async function postgresOsUser(): Promise<OsUser> {
  if (process.getuid?.() !== 0) return { wrap: (cmd, args) => [cmd, args] };
  let ids = await lookupIds();
  if (!ids) {
    const groupExists = (await run('getent', ['group', 'postgres'])).code === 0;
    const args = ['--system', groupExists ? '--gid=postgres' : '--user-group', '--no-create-home', '--shell=/usr/sbin/nologin', 'postgres'];
    const r = await run('useradd', args);
    ids = await lookupIds(); // re-check: a parallel start may have created it
    if (!ids) throw new Error(`cannot create the postgres OS user: ${describeFailure('useradd', args, r)}`);
  }
  if (onPath('runuser')) return { ids, wrap: (cmd, args) => ['runuser', ['-u', 'postgres', '--', cmd, ...args]] };
  // su needs a shell command line; the nologin shell is bypassed with -s.
  return { ids, wrap: (cmd, args) => ['su', ['-s', '/bin/sh', 'postgres', '-c', [cmd, ...args].map(shellQuote).join(' ')]] };
}

async function lookupIds(): Promise<{ uid: number; gid: number } | undefined> {
  const [u, g] = await Promise.all([run('id', ['-u', 'postgres']), run('id', ['-g', 'postgres'])]);
  if (u.code !== 0 || g.code !== 0) return undefined;
  return { uid: Number(u.stdout.trim()), gid: Number(g.stdout.trim()) };
}

function onPath(name: string): boolean {
  return (process.env.PATH ?? '/usr/sbin:/usr/bin:/sbin:/bin').split(delimiter).some((d) => existsSync(join(d, name)));
}

function shellQuote(s: string): string {
  return `'${s.replace(/'/g, `'\\''`)}'`;
}

// Inherited PG* variables (PGHOST, PGPORT, PGDATA, PGPASSWORD...) would
// silently redirect our client tools, so children never see them.
function cleanEnv(extra: Record<string, string> = {}): NodeJS.ProcessEnv {
  const env: NodeJS.ProcessEnv = {};
  for (const [k, v] of Object.entries(process.env)) if (!k.startsWith('PG')) env[k] = v;
  return { ...env, ...extra };
}

async function runAsPg(ctx: Ctx, tool: string, args: string[], deadline: number, input?: string, env?: Record<string, string>): Promise<RunResult> {
  const [cmd, argv] = ctx.asPg.wrap(join(ctx.bin, tool), args);
  // cwd must be readable by the postgres user, or initdb/postgres complain.
  return run(cmd, argv, { cwd: ctx.rootDir, env: cleanEnv(env), input, timeoutMs: Math.max(1000, deadline - Date.now()) });
}

async function checkOk(ctx: Ctx, tool: string, args: string[], deadline: number): Promise<void> {
  const r = await runAsPg(ctx, tool, args, deadline);
  if (r.code !== 0) throw new Error(`PostgreSQL setup failed: ${describeFailure(tool, args, r)}`);
}

async function configure(ctx: Ctx): Promise<void> {
  // Appended settings override initdb's defaults (last one wins). The port is
  // passed on the pg_ctl command line instead so a retry can change it.
  const conf = [
    '',
    '# --- agate test harness ---',
    `listen_addresses = '${HOST}'`,
    `unix_socket_directories = '${ctx.rootDir}'`,
    `password_encryption = 'scram-sha-256'`,
    // Durability is pointless for a throwaway cluster and costs seconds.
    'fsync = off',
    'synchronous_commit = off',
    'full_page_writes = off',
    ...(ctx.pgaudit
      ? [
          "shared_preload_libraries = 'pgaudit'",
          "pgaudit.log = 'all'",
          'pgaudit.log_parameter = on',
          "log_line_prefix = 'app=%a user=%u pid=%p '",
        ]
      : []),
    '',
  ].join('\n');
  await appendFile(join(ctx.dataDir, 'postgresql.conf'), conf);
  // First match wins; anything unmatched (other roles over TCP, TCP superuser)
  // is rejected. Overwriting keeps the file owned by the postgres user.
  const hba = [
    '# TYPE  DATABASE  USER          ADDRESS       METHOD',
    'local   all       postgres                    trust',
    `host    all       ${ROLES.scram}   ${HOST}/32  scram-sha-256`,
    `host    all       ${ROLES.md5}     ${HOST}/32  md5`,
    `host    all       ${ROLES.plain}   ${HOST}/32  password`,
    // Logs in without any password exchange (the server answers AuthenticationOk at once).
    `host    all       ${ROLES.trust}   ${HOST}/32  trust`,
    '',
  ].join('\n');
  await writeFile(join(ctx.dataDir, 'pg_hba.conf'), hba);
}

// Starts the postmaster, retrying on a new port if another process grabbed
// the one findFreePort() returned before postgres could bind it.
async function startPostmaster(ctx: Ctx, deadline: number): Promise<number> {
  for (let attempt = 1; ; attempt++) {
    const port = await findFreePort();
    const secs = Math.max(1, Math.ceil((deadline - Date.now()) / 1000));
    const args = ['start', '-D', ctx.dataDir, '-l', ctx.logFile, '-w', '-t', String(secs), '-o', `-p ${port}`];
    const r = await runAsPg(ctx, 'pg_ctl', args, deadline + 5000);
    if (r.code === 0) return port;
    const log = await logTail(ctx.logFile);
    await runAsPg(ctx, 'pg_ctl', ['stop', '-D', ctx.dataDir, '-m', 'immediate'], Date.now() + 10_000);
    if (attempt < PORT_ATTEMPTS && /could not bind|already in use/i.test(log) && Date.now() < deadline) continue;
    throw new Error(
      `PostgreSQL did not become ready on ${HOST}:${port}: ${describeFailure('pg_ctl', args, r)}\n--- tail of ${ctx.logFile} ---\n${log}`,
    );
  }
}

async function logTail(file: string, lines = 30): Promise<string> {
  try {
    return (await readFile(file, 'utf8')).trimEnd().split('\n').slice(-lines).join('\n');
  } catch {
    return '(no server log)';
  }
}

function makeUsers(): Record<PgUserKey, PgCredentials> {
  // base64url output contains no quotes, so it is safe inside SQL literals.
  const pw = () => randomBytes(18).toString('base64url');
  return {
    scram: { user: ROLES.scram, password: pw() },
    md5: { user: ROLES.md5, password: pw() },
    plain: { user: ROLES.plain, password: pw() },
    trust: { user: ROLES.trust, password: pw() },
  };
}

function setupSql(u: Record<PgUserKey, PgCredentials>): string {
  return `
CREATE ROLE ${u.scram.user} LOGIN PASSWORD '${u.scram.password}';
-- Store an md5 verifier: with a SCRAM verifier the server would silently
-- upgrade the 'md5' pg_hba method to SCRAM and md5 would never be exercised.
SET password_encryption = 'md5';
CREATE ROLE ${u.md5.user} LOGIN PASSWORD '${u.md5.password}';
RESET password_encryption;
CREATE ROLE ${u.plain.user} LOGIN PASSWORD '${u.plain.password}';
CREATE ROLE ${u.trust.user} LOGIN;
CREATE DATABASE appdb OWNER ${u.scram.user};
\\connect appdb
-- Create the table as its owner so agate_scram has full rights on it.
SET ROLE ${u.scram.user};
CREATE TABLE public.items (id int PRIMARY KEY, name text);
INSERT INTO public.items VALUES (1, 'alpha'), (2, 'beta'), (3, 'gamma');
GRANT SELECT, INSERT, UPDATE, DELETE ON public.items TO ${u.md5.user}, ${u.plain.user}, ${u.trust.user};
RESET ROLE;
`;
}

async function psqlRun(ctx: Ctx, port: number, sql: string, as: PgCredentials | undefined, database: string, deadline: number): Promise<string> {
  const args = ['-X', '-A', '-t', '-q', '-v', 'ON_ERROR_STOP=1', '-p', String(port), '-d', database, '-f', '-'];
  const env: Record<string, string> = { PGCONNECT_TIMEOUT: '10' };
  if (as) {
    args.push('-h', HOST, '-U', as.user);
    env.PGPASSWORD = as.password;
  } else {
    args.push('-h', ctx.rootDir, '-U', 'postgres');
  }
  const r = await runAsPg(ctx, 'psql', args, deadline, sql, env);
  if (r.code !== 0) throw new Error(`psql as ${as?.user ?? 'postgres'} failed: ${describeFailure('psql', args, r)}`);
  return r.stdout.replace(/\n$/, '');
}

function makeServer(ctx: Ctx, port: number, users: Record<PgUserKey, PgCredentials>): PostgresServer {
  live.add(ctx);
  registerExitHook();
  let stopping: Promise<void> | undefined;
  return {
    host: HOST,
    port,
    rootDir: ctx.rootDir,
    dataDir: ctx.dataDir,
    socketDir: ctx.rootDir,
    logFile: ctx.logFile,
    superuser: 'postgres',
    users,
    database: 'appdb',
    psql(sql, asUser, database = 'appdb') {
      let as: PgCredentials | undefined;
      if (asUser !== undefined && asUser !== 'postgres') {
        as = Object.values(users).find((c) => c.user === asUser) ?? users[asUser as PgUserKey];
        if (!as) return Promise.reject(new Error(`unknown user ${asUser}; expected one of ${Object.keys(users).join(', ')}`));
      }
      return psqlRun(ctx, port, sql, as, database, Date.now() + 60_000);
    },
    stop() {
      stopping ??= destroy(ctx);
      return stopping;
    },
  };
}

async function destroy(ctx: Ctx): Promise<void> {
  live.delete(ctx);
  if (existsSync(join(ctx.dataDir, 'postmaster.pid'))) {
    const r = await runAsPg(ctx, 'pg_ctl', ['stop', '-D', ctx.dataDir, '-m', 'fast', '-w', '-t', '30'], Date.now() + 35_000);
    if (r.code !== 0) await runAsPg(ctx, 'pg_ctl', ['stop', '-D', ctx.dataDir, '-m', 'immediate', '-w'], Date.now() + 15_000);
  }
  await rm(ctx.rootDir, { recursive: true, force: true });
}

// Servers still running when the test process exits (a test forgot stop(),
// or threw first) would outlive it; 'exit' handlers must be synchronous.
const live = new Set<Ctx>();
let hooked = false;
function registerExitHook(): void {
  if (hooked) return;
  hooked = true;
  process.on('exit', () => {
    for (const ctx of live) {
      const [cmd, args] = ctx.asPg.wrap(join(ctx.bin, 'pg_ctl'), ['stop', '-D', ctx.dataDir, '-m', 'immediate', '-w']);
      spawnSync(cmd, args, { cwd: ctx.rootDir, env: cleanEnv(), stdio: 'ignore', timeout: 15_000 });
      rmSync(ctx.rootDir, { recursive: true, force: true });
    }
  });
}

/**
 * Runs `sql` with the real psql (-X -A -t, stopping at the first error) against whatever libpq
 * environment `env` names (an Agate listener, say); returns what it printed, trimmed.
 */
export async function psqlWith(env: NodeJS.ProcessEnv, sql: string): Promise<string> {
  const r = await run(join(process.env.AGATE_PG_BIN ?? DEFAULT_PG_BIN, 'psql'), ['-X', '-A', '-t', '-v', 'ON_ERROR_STOP=1', '-c', sql], { env, timeoutMs: 60_000 });
  if (r.code !== 0) throw new Error(`psql exited ${r.timedOut ? 'after its timeout' : r.code}: ${r.stderr}`);
  return r.stdout.trim();
}

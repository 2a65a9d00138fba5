// Runs the real `agate` CLI as a child process for end-to-end tests: `agate start` in the
// background (the product as an operator runs it) and one-shot commands (`agate verify`, ...)
// against the same config file.
import { spawn, type ChildProcess } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import type { OidcIssuer } from '../harness/oidc-issuer.js';
import { DEFAULT_PG_BIN, findFreePort, type PostgresServer } from '../harness/postgres.js';
import { run } from '../harness/proc.js';
import type { SshServer } from '../harness/sshd.js';

/** The directory holding Agate's package.json (this file runs from test/e2e or dist/test/e2e). */
export const REPO_ROOT: string = (() => {
  let dir = dirname(fileURLToPath(import.meta.url));
  for (;;) {
    const pkg = join(dir, 'package.json');
    if (existsSync(pkg) && (JSON.parse(readFileSync(pkg, 'utf8')) as { name?: string }).name === 'agate') return dir;
    const parent = dirname(dir);
    if (parent === dir) throw new Error(`cannot find the agate repository root above ${fileURLToPath(import.meta.url)}`);
    dir = parent;
  }
})();

export const AGATE_BIN = join(REPO_ROOT, 'bin', 'agate.js');
const STARTED_MSG = 'agate started';

/** Where a config must put things; handed to the config builder. */
export interface AgatePlaces {
  /** Fresh temp dir owned by this agate process; the config file lives here. */
  dir: string;
  /** `<dir>/data`, to be used as `data_dir`. */
  dataDir: string;
  pgPort: number;
  apiPort: number;
  /** `127.0.0.1:<pgPort>` for proxy.postgres.listen. */
  pgListen: string;
  /** `127.0.0.1:<apiPort>` for query.listen. */
  apiListen: string;
}

export interface CliResult {
  code: number | null;
  stdout: string;
  stderr: string;
}

export interface AgateProcess {
  pgPort: number;
  apiUrl: string;
  configPath: string;
  dataDir: string;
  dir: string;
  pid: number;
  /** Everything the process wrote to stderr so far (JSON log lines). */
  stderr(): string;
  /** Everything the process wrote to stdout so far. */
  stdout(): string;
  /** The "agate started" log line: the addresses it bound (postgres, ssh, query_api, ...). */
  started: Record<string, unknown>;
  /** Parsed JSON log lines so far. */
  logs(): Record<string, unknown>[];
  /** True while the child has not exited. */
  readonly running: boolean;
  /** SIGTERM, then waits for the exit (SIGKILL after `timeoutMs`). Safe to call twice. */
  stop(timeoutMs?: number): Promise<{ code: number | null; signal: NodeJS.Signals | null }>;
  /** Runs `node bin/agate.js ...args` from the repository root. */
  cli(args: string[], opts?: { env?: Record<string, string>; timeoutMs?: number }): Promise<CliResult>;
  /** stop() and remove the temp dir. */
  dispose(): Promise<void>;
}

interface StartAgateOptions {
  /** The config text, built from the places (ports, data dir) this helper picked. */
  configYaml: string | ((places: AgatePlaces) => string);
  /** Deadline for the "agate started" log line (an exit before it fails at once). Default 120 000 ms. */
  readyTimeoutMs?: number;
  env?: Record<string, string>;
  /** Files written (mode 0600) into the temp dir before the start, by name: e.g. a password file the config names. */
  files?: Record<string, string>;
  /** Node.js flags for the agate process (e.g. --cpu-prof when profiling a benchmark). */
  nodeArgs?: string[];
  /** Another build's `bin/agate.js` to start instead of this one (a benchmark's baseline). */
  bin?: string;
}

/** Inherited PG* variables would redirect client tools; no child sees them. */
export function cleanEnv(extra: Record<string, string> = {}): NodeJS.ProcessEnv {
  const env: NodeJS.ProcessEnv = {};
  for (const [k, v] of Object.entries(process.env)) if (!k.startsWith('PG') && !k.startsWith('AGATE_')) env[k] = v;
  return { ...env, ...extra };
}

/** Runs the CLI once (not `start`). Never throws on a non-zero exit. */
export async function runCli(args: string[], opts: { env?: Record<string, string>; timeoutMs?: number } = {}): Promise<CliResult> {
  const r = await run(process.execPath, [AGATE_BIN, ...args], { cwd: REPO_ROOT, env: cleanEnv(opts.env), timeoutMs: opts.timeoutMs ?? 60_000 });
  if (r.timedOut) throw new Error(`agate ${args.join(' ')} timed out\n--- stderr ---\n${r.stderr}\n--- stdout ---\n${r.stdout}`);
  return { code: r.code, stdout: r.stdout, stderr: r.stderr };
}

const live = new Set<ChildProcess>();
process.on('exit', () => {
  // Last resort for a test process that dies without running its `after` hooks.
  for (const c of live) c.kill('SIGKILL');
});

/**
 * Spawns `node bin/agate.js start --config <file>` and resolves once its log says it started.
 * A start that fails (bad config, port taken, crash, no log line within the deadline) throws
 * with the captured stderr; a port that was grabbed meanwhile is retried with new ports.
 */
export async function startAgateProcess(opts: StartAgateOptions): Promise<AgateProcess> {
  const dir = mkdtempSync(join(tmpdir(), 'agate-e2e-'));
  try {
    for (let attempt = 1; ; attempt++) {
      try {
        return await startOnce(dir, opts);
      } catch (err) {
        const portTaken = /EADDRINUSE|address already in use/i.test((err as Error).message);
        if (!portTaken || attempt >= 3) throw err;
        rmSync(join(dir, 'data'), { recursive: true, force: true });
      }
    }
  } catch (err) {
    rmSync(dir, { recursive: true, force: true });
    throw err;
  }
}

async function startOnce(dir: string, opts: StartAgateOptions): Promise<AgateProcess> {
  const [pgPort, apiPort] = await twoFreePorts();
  const places: AgatePlaces = {
    dir, dataDir: join(dir, 'data'), pgPort, apiPort, pgListen: `127.0.0.1:${pgPort}`, apiListen: `127.0.0.1:${apiPort}`,
  };
  const configPath = join(dir, 'agate.yaml');
  writeFileSync(configPath, typeof opts.configYaml === 'string' ? opts.configYaml : opts.configYaml(places));
  for (const [name, content] of Object.entries(opts.files ?? {})) writeFileSync(join(dir, name), content, { mode: 0o600 });

  const child = spawn(process.execPath, [...(opts.nodeArgs ?? []), opts.bin ?? AGATE_BIN, 'start', '--config', configPath], {
    cwd: REPO_ROOT, env: cleanEnv(opts.env), stdio: ['ignore', 'pipe', 'pipe'],
  });
  live.add(child);
  let stderr = '';
  let stdout = '';
  const logs: Record<string, unknown>[] = [];
  let partial = '';
  let exit: { code: number | null; signal: NodeJS.Signals | null } | undefined;
  const exited = new Promise<{ code: number | null; signal: NodeJS.Signals | null }>((resolve) => {
    child.on('exit', (code, signal) => {
      exit = { code, signal };
      live.delete(child);
      resolve(exit);
    });
    child.on('error', (err) => {
      // Could not be spawned (or signalled): report it like an exit, with the reason on stderr.
      stderr += `\n[spawn error] ${err.message}\n`;
      if (child.pid === undefined) {
        exit = { code: null, signal: null };
        live.delete(child);
        resolve(exit);
      }
    });
  });
  let onStarted!: () => void;
  const started = new Promise<void>((r) => (onStarted = r));
  child.stdout.setEncoding('utf8').on('data', (d: string) => (stdout += d));
  child.stderr.setEncoding('utf8').on('data', (d: string) => {
    stderr += d;
    partial += d;
    const lines = partial.split('\n');
    partial = lines.pop() ?? '';
    for (const line of lines) {
      let entry: Record<string, unknown>;
      try {
        entry = JSON.parse(line) as Record<string, unknown>;
      } catch {
        continue; // not a log line (e.g. a Node warning)
      }
      logs.push(entry);
      if (entry.msg === STARTED_MSG) onStarted();
    }
  });

  const timeoutMs = opts.readyTimeoutMs ?? 120_000;
  let timer: NodeJS.Timeout | undefined;
  const outcome = await Promise.race([
    started.then(() => 'started' as const),
    exited.then(() => 'exited' as const),
    new Promise<'timeout'>((r) => (timer = setTimeout(() => r('timeout'), timeoutMs))),
  ]);
  clearTimeout(timer);
  if (outcome !== 'started') {
    if (exit === undefined) {
      child.kill('SIGKILL');
      await exited;
    }
    const how = outcome === 'timeout' ? `did not log "${STARTED_MSG}" within ${timeoutMs} ms` : `exited with code ${exit?.code} signal ${exit?.signal} before starting`;
    throw new Error(`agate start --config ${configPath} ${how}\n--- stderr ---\n${stderr}\n--- stdout ---\n${stdout}`);
  }

  // What Agate reports it bound is the truth (a literal config text may name other ports).
  const startedLine = logs.find((l) => l.msg === STARTED_MSG)!;
  const bound = (field: string) => /^(?:https?:\/\/)?[^/]+:(\d+)$/.exec(String(startedLine[field]))?.[1];
  const boundPg = bound('postgres');
  const boundApi = bound('query_api');
  if (boundPg === undefined || boundApi === undefined || typeof startedLine.data_dir !== 'string') {
    child.kill('SIGKILL');
    await exited;
    throw new Error(`agate logged "${STARTED_MSG}" without the expected postgres/query_api/data_dir fields: ${JSON.stringify(startedLine)}`);
  }
  const dataDir = startedLine.data_dir;

  let stopping: Promise<{ code: number | null; signal: NodeJS.Signals | null }> | undefined;
  const stop = (stopTimeoutMs = 20_000) => {
    stopping ??= (async () => {
      if (exit !== undefined) return exit;
      child.kill('SIGTERM');
      let t: NodeJS.Timeout | undefined;
      const r = await Promise.race([exited, new Promise<undefined>((res) => (t = setTimeout(() => res(undefined), stopTimeoutMs)))]);
      clearTimeout(t);
      if (r !== undefined) return r;
      child.kill('SIGKILL');
      await exited;
      throw new Error(`agate (pid ${child.pid}) did not exit within ${stopTimeoutMs} ms of SIGTERM; killed\n--- stderr ---\n${stderr}`);
    })();
    return stopping;
  };

  return {
    pgPort: Number(boundPg),
    apiUrl: `${String(startedLine.query_api).startsWith('https:') ? 'https' : 'http'}://127.0.0.1:${boundApi}`,
    configPath,
    dataDir,
    dir,
    pid: child.pid!,
    stderr: () => stderr,
    stdout: () => stdout,
    started: startedLine,
    logs: () => [...logs],
    get running() {
      return exit === undefined;
    },
    stop,
    cli: (args, o) => runCli(args, o),
    async dispose() {
      try {
        await stop();
      } finally {
        rmSync(dir, { recursive: true, force: true });
      }
    },
  };
}

async function twoFreePorts(): Promise<[number, number]> {
  const a = await findFreePort();
  let b = await findFreePort();
  while (b === a) b = await findFreePort();
  return [a, b];
}

interface ConfigFor {
  pg: PostgresServer;
  issuer: OidcIssuer;
  /** Audience Agate expects from the issuer. Default 'agate'. */
  audience?: string;
  verdictTimeoutMs?: number;
  /** Pass the upstream password through this environment variable instead of `value`. */
  passwordEnv?: string;
  logLevel?: 'debug' | 'info' | 'warn' | 'error';
  /** The `policy:` section (top-level YAML, ending in a newline) in place of the default one. */
  policy?: string;
}

const DEFAULT_POLICY = `policy:
  default: allow
  rules:
    - id: no-drop
      action: deny
      message: DROP needs a human
      match:
        sql: { statements: [DropStmt, TruncateStmt] }
`;

/**
 * A config for `agate start` in front of a harness PostgreSQL, trusting one test issuer:
 * target `appdb` (the SCRAM user), policy `c.policy` or else default allow with rule `no-drop`
 * denying DROP/TRUNCATE, the dev issuer off, everything stored under the temp dir.
 */
export function agateConfig(c: ConfigFor): (p: AgatePlaces) => string {
  const q = (s: string) => JSON.stringify(s); // a JSON string is a YAML scalar
  const password = c.passwordEnv === undefined ? `{ value: ${q(c.pg.users.scram.password)} }` : `{ env: ${q(c.passwordEnv)} }`;
  return (p) => `# written by test/e2e/agate-process.ts
instance_id: e2e-agate
data_dir: ${q(p.dataDir)}
log_level: ${c.logLevel ?? 'info'}
identity:
  issuers:
    - issuer: ${q(c.issuer.issuer)}
      audience: ${q(c.audience ?? 'agate')}
  dev_issuer:
    enabled: false
bus:
  fsync: true
proxy:
  postgres:
    listen: ${q(p.pgListen)}
  verdict_timeout_ms: ${c.verdictTimeoutMs ?? 10_000}
targets:
  - name: appdb
    protocol: postgres
    upstream:
      host: ${q(c.pg.host)}
      port: ${c.pg.port}
      database: ${q(c.pg.database)}
      user: ${q(c.pg.users.scram.user)}
      password: ${password}
${c.policy ?? DEFAULT_POLICY}query:
  listen: ${q(p.apiListen)}
`;
}

/** A `targets:` list item: SSH target `name` in front of a harness sshd, its host key pinned, signing in with its client key. */
export function sshTargetYaml(sshd: SshServer, name = 'box'): string {
  const q = (v: string) => JSON.stringify(v);
  return `  - name: ${name}
    protocol: ssh
    upstream: { host: 127.0.0.1, port: ${sshd.port}, user: ${q(sshd.user)}, private_key_file: ${q(sshd.clientKeyFile)}, host_key: ${q(sshd.hostPublicKey)} }
`;
}

interface ConsoleFor {
  /** The sshd behind target `box` (the console replays its shells). */
  sshd: SshServer;
  /** The console's OIDC provider (an issuer URL) and its client secret for client `agate-console`. */
  oidcIssuer: string;
  clientSecret: string;
  /** `console.roles` as a YAML flow map. */
  roles: string;
  /** More `console:` keys (indented two spaces, ending in a newline), e.g. `saml:`. */
  more?: (p: AgatePlaces) => string;
}

/**
 * `config` (an `agateConfig`) with the SSH proxy on, target `box` in front of `c.sshd`, and the
 * console signing in by OIDC code flow back to this Agate's `/ui/callback`.
 */
export function withSshAndConsole(config: (p: AgatePlaces) => string, c: ConsoleFor): (p: AgatePlaces) => string {
  const q = (v: string) => JSON.stringify(v);
  return (p) => config(p)
    .replace(/^proxy:\n/m, 'proxy:\n  ssh: { listen: 127.0.0.1:0, host_key_file: ./ssh_host_key }\n')
    .replace(/^targets:\n/m, `targets:\n${sshTargetYaml(c.sshd)}`) + `console:
  oidc:
    issuer: ${q(c.oidcIssuer)}
    client_id: agate-console
    client_secret: { value: ${q(c.clientSecret)} }
    redirect_url: "http://127.0.0.1:${p.apiPort}/ui/callback"
${c.more?.(p) ?? ''}  roles: ${c.roles}
`;
}

/** A psql running in the background (see `agentPsql`). */
export interface AgentPsql {
  /** Its output so far, and when (ms) its stderr first said the statement is held (0 until then). */
  out: { stdout: string; stderr: string; noticeAt: number };
  /** Its exit code, once it ends (a held statement: once the hold is answered). */
  exited: Promise<number | null>;
  kill(): void;
}

/** The real psql as an agent, through `agate` to target `appdb`, running one statement with its token as the password. */
export function agentPsql(agate: Pick<AgateProcess, 'pgPort'>, token: string, sql: string): AgentPsql {
  const env = cleanEnv({ PGHOST: '127.0.0.1', PGPORT: String(agate.pgPort), PGDATABASE: 'appdb', PGUSER: 'agent', PGSSLMODE: 'disable', PGPASSWORD: token });
  const child = spawn(join(process.env.AGATE_PG_BIN ?? DEFAULT_PG_BIN, 'psql'), ['-X', '-v', 'ON_ERROR_STOP=1', '-c', sql], { env, stdio: ['ignore', 'pipe', 'pipe'] });
  const out = { stdout: '', stderr: '', noticeAt: 0 };
  child.stdout.on('data', (b: Buffer) => (out.stdout += b.toString()));
  child.stderr.on('data', (b: Buffer) => {
    out.stderr += b.toString();
    if (out.noticeAt === 0 && /holding this statement/.test(out.stderr)) out.noticeAt = Date.now();
  });
  const exited = new Promise<number | null>((resolve) => child.on('close', resolve));
  return { out, exited, kill: () => child.kill('SIGKILL') };
}

// Agate's SSH proxy in process in front of a real OpenSSH server (the harness's sshd), for the
// end-to-end SSH suites: a real OIDC issuer, the policy service deciding on a LocalBus, and the
// events of chosen types gathered from that bus as they are recorded.
import * as assert from 'uvu/assert';
import { chownSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import ssh2 from 'ssh2';
import { parseConfig } from '../../core/src/config.js';
import { LocalBus } from '../../core/src/bus/local-bus.js';
import type { Subscription } from '../../core/src/bus/bus.js';
import { remoteIssuer, TokenVerifier } from '../../core/src/identity/oidc.js';
import { loginGuard, loginThrottle } from '../../core/src/logins/from-config.js';
import { createLogger, silentLogger } from '../../core/src/log.js';
import type { AgateEvent, Command, EventType, Response, Verdict } from '../../schemas/src/events.js';
import { MaskSets } from '../../services/ingress-proxy/src/masking/mask-sets.js';
import { generateHostKey, parsePinnedHostKey } from '../../services/ingress-proxy/src/ssh/host-key.js';
import { SshProxyServer, type SshProxyOptions } from '../../services/ingress-proxy/src/ssh/server.js';
import type { SshUpstreamTarget } from '../../services/ingress-proxy/src/ssh/upstream.js';
import { CompiledPolicy, loadParsers } from '../../services/policy/src/engine.js';
import { PolicyService } from '../../services/policy/src/service.js';
import { startOidcIssuer, type OidcIssuer } from '../harness/oidc-issuer.js';
import { run } from '../harness/proc.js';
import { startSshd, type SshServer } from '../harness/sshd.js';

export interface SshEnv {
  sshd: SshServer;
  issuer: OidcIssuer;
  /** A scratch directory (the bus lives in `bus/`); removed by `stopSshProxy`. */
  dir: string;
  bus: LocalBus;
  policy: PolicyService;
  proxy: SshProxyServer;
  /** What `proxy` was made with, for a test that starts a second proxy with other limits. */
  proxyOptions: SshProxyOptions;
  port: number;
  subscription: Subscription;
  /** Every event of the subscribed types, in the order recorded. */
  events: AgateEvent[];
}

interface SshProxyFixtureOptions {
  /** The config holding the policy (and masking) the proxy runs under. */
  configYaml: string;
  /** The suite's name: the config's file name, the bus group, the proxy id and the scratch directory's prefix. */
  name: string;
  /** The event types gathered into `events`. */
  types: EventType[];
  verdictTimeoutMs: number;
  /** Token algorithms the issuer is trusted for (default ES256: OpenSSH cuts passwords over 1023 characters). */
  algorithms?: Array<'RS256' | 'ES256'>;
  /** The targets by name (default: `box`, the harness's sshd with its own host key pinned). */
  targets?: (sshd: SshServer) => Map<string, SshUpstreamTarget>;
  /** More proxy options, made once the scratch directory exists. */
  proxy?: (dir: string) => Promise<Partial<SshProxyOptions>>;
  /** The suite's own setup once the proxy listens (directories, files on the target). */
  prepare?: (env: SshEnv) => Promise<void>;
}

/**
 * The config of an SSH test: the dev issuer on, policy default allow with rule `no-rm` denying
 * `rm` ("deleting files needs a human"), then `rules` (more list items, indented four spaces).
 */
export function sshPolicy(rules: string): string {
  return `identity: { dev_issuer: { enabled: true } }
policy:
  default: allow
  rules:
    - id: no-rm
      action: deny
      message: deleting files needs a human
      match: { protocols: [ssh], shell: { commands: [rm] } }
${rules}`;
}

/** The harness's sshd as a target named `name`, pinned to `hostKey` (default: the server's own). */
export function sshdTarget(sshd: SshServer, name: string, hostKey = sshd.hostPublicKey): SshUpstreamTarget {
  return { name, host: sshd.host, port: sshd.port, user: sshd.user, privateKey: readFileSync(sshd.clientKeyFile), hostKey: parsePinnedHostKey(hostKey) };
}

/**
 * Starts sshd, the issuer, the policy service and the proxy, filling `into` as it goes so that
 * `stopSshProxy(into)` stops whatever started even when a later step failed. Logs the failure:
 * uvu does not report an error thrown by a before hook (every test then fails without a word).
 */
export async function startSshProxy(into: Partial<SshEnv>, options: SshProxyFixtureOptions): Promise<SshEnv> {
  try {
    const env = await start(into, options);
    await options.prepare?.(env);
    return env;
  } catch (err) {
    console.error(`e2e/${options.name} setup failed:`, err);
    throw err;
  }
}

async function start(into: Partial<SshEnv>, options: SshProxyFixtureOptions): Promise<SshEnv> {
  into.events = [];
  into.dir = mkdtempSync(join(tmpdir(), `agate-${options.name}-`));
  const [sshdResult, issuerResult] = await Promise.allSettled([startSshd(), startOidcIssuer({ audience: 'agate' })]);
  if (sshdResult.status === 'fulfilled') into.sshd = sshdResult.value;
  if (issuerResult.status === 'fulfilled') into.issuer = issuerResult.value;
  for (const r of [sshdResult, issuerResult]) if (r.status === 'rejected') throw r.reason;
  const sshd = into.sshd!;
  into.bus = new LocalBus({ dir: join(into.dir, 'bus'), fsync: false, logger: silentLogger });
  const config = parseConfig(options.configYaml, `${options.name}.yaml`);
  await loadParsers();
  into.policy = new PolicyService({ bus: into.bus, policy: new CompiledPolicy(config.policy), logger: silentLogger, staleAfterMs: 5000 });
  await into.policy.start();
  into.subscription = await into.bus.subscribe({ group: options.name, types: options.types, handler: async (batch) => void into.events!.push(...batch) });
  const targets = options.targets?.(sshd) ?? new Map([['box', sshdTarget(sshd, 'box')]]);
  const verifier = new TokenVerifier([
    remoteIssuer({ issuer: into.issuer!.issuer, audience: 'agate', algorithms: options.algorithms ?? ['ES256'], clock_tolerance_s: 30, max_token_lifetime_s: 3600, subject_claim: 'sub', jwks_max_age_s: 60 }),
  ]);
  into.proxyOptions = {
    bus: into.bus, verifier, resolveTarget: (n) => targets.get(n), proxyId: `e2e-${options.name}`, verdictTimeoutMs: options.verdictTimeoutMs, connectTimeoutMs: 15_000,
    logger: process.env.AGATE_TEST_LOG ? createLogger('debug') : silentLogger, audit: MaskSets.compile(config.masking, config.source).audit, hostKey: Buffer.from(generateHostKey()),
    maxConnections: 20, logins: loginGuard(config.logins, loginThrottle(config.logins)),
    ...(await options.proxy?.(into.dir)),
  };
  into.proxy = new SshProxyServer(into.proxyOptions);
  into.port = (await into.proxy.listen('127.0.0.1', 0)).port;
  return into as SshEnv;
}

/** Stops what `startSshProxy` started, then removes its scratch directory and `moreDirs`. */
export async function stopSshProxy(env: Partial<SshEnv>, moreDirs: Array<string | undefined> = []): Promise<void> {
  await env.proxy?.shutdown().catch(() => undefined);
  await env.subscription?.close().catch(() => undefined);
  await env.policy?.stop().catch(() => undefined);
  await env.bus?.close().catch(() => undefined);
  await env.issuer?.close().catch(() => undefined);
  await env.sshd?.stop().catch(() => undefined);
  for (const d of [env.dir, ...moreDirs]) if (d) rmSync(d, { recursive: true, force: true });
}

/** A new directory owned by the sshd user (what Agate logs in upstream as). */
export async function sshdUserDir(sshd: SshServer, prefix: string): Promise<string> {
  const dir = mkdtempSync(join(tmpdir(), prefix));
  const uid = Number((await run('id', ['-u', sshd.user])).stdout.trim());
  const gid = Number((await run('id', ['-g', sshd.user])).stdout.trim());
  chownSync(dir, uid, gid);
  return dir;
}

export { SSH_CLIENT_OPTIONS } from './openssh-client.js';

/**
 * The last Command `match` accepts, once its Response is recorded too, with its Verdict (if any);
 * fails after 30 s (a loaded 2-core machine).
 */
export async function recorded(env: SshEnv, match: (c: Command) => boolean): Promise<{ command: Command; verdict: Verdict | undefined; response: Response }> {
  const deadline = Date.now() + 30_000;
  for (;;) {
    const command = env.events.filter((e): e is Command => e.type === 'Command' && match(e)).at(-1);
    const response = command && env.events.find((e): e is Response => e.type === 'Response' && e.command_id === command.event_id);
    if (command !== undefined && response !== undefined) {
      return { command, response, verdict: env.events.find((e): e is Verdict => e.type === 'Verdict' && e.command_id === command.event_id) };
    }
    if (Date.now() > deadline) assert.unreachable(`the command was not recorded${command === undefined ? '' : ` (only "${command.text}" itself)`}`);
    await new Promise((r) => setTimeout(r, 25));
  }
}

/** ssh2 as a raw client through the proxy, for what OpenSSH would not send; `sub` is the token's subject. */
export async function rawClient(env: SshEnv, sub = 'repo:acme/app:ref:refs/heads/main'): Promise<ssh2.Client> {
  const conn = new ssh2.Client();
  const password = await env.issuer.mint({ sub, repository: 'acme/app' }, { alg: 'ES256' });
  await new Promise<void>((resolve, reject) => {
    conn.once('ready', () => resolve()).once('error', reject);
    // strictVendor off: ssh2 sends the OpenSSH extensions (unix-socket forwards) only to a server it knows as OpenSSH.
    conn.connect({ host: '127.0.0.1', port: env.port, username: 'box', password, readyTimeout: 30_000, strictVendor: false });
  });
  return conn;
}

interface RawResult {
  /** The exit status; null when there was none (or the channel did not open). */
  code: number | null;
  stdout: string;
  /** The channel's stderr, or why it did not open. */
  stderr: string;
}

/** An exec channel on `conn` with its stdin closed at once, read to its end. */
export function rawExec(conn: ssh2.Client, command: string, options: ssh2.ExecOptions = {}): Promise<RawResult> {
  return new Promise((resolve) => {
    conn.exec(command, options, (err, stream) => {
      if (err) return resolve({ code: null, stdout: '', stderr: err.message });
      collect(stream, resolve);
    });
  });
}

/** A subsystem channel on `conn` with its stdin closed at once, read to its end. */
export function rawSubsystem(conn: ssh2.Client, name: string): Promise<RawResult> {
  return new Promise((resolve) => {
    conn.subsys(name, (err, stream) => {
      if (err) return resolve({ code: null, stdout: '', stderr: err.message });
      collect(stream, resolve);
    });
  });
}

function collect(stream: ssh2.ClientChannel, resolve: (r: RawResult) => void): void {
  let stdout = '';
  let stderr = '';
  let code: number | null = null;
  stream.on('data', (d: Buffer) => (stdout += d.toString()));
  stream.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
  stream.on('exit', (c: number | null) => (code = c));
  stream.on('close', () => resolve({ code, stdout, stderr }));
  stream.end();
}

/** A shell channel on `conn` with a pty, typed into and read like a screen. */
interface RawShell {
  stream: ssh2.ClientChannel;
  type: (s: string) => void;
  resize: (rows: number, cols: number) => void;
  /** Waits until the output since the call matches `re`; fails after `timeoutMs` (30 s). */
  until: (re: RegExp, timeoutMs?: number) => Promise<void>;
  screen: () => string;
  close: () => void;
  /** Whether the channel closed within `timeoutMs`. */
  closed: (timeoutMs: number) => Promise<boolean>;
}

export async function rawShell(conn: ssh2.Client, pty: ssh2.PseudoTtyOptions = { term: 'xterm', cols: 80, rows: 24 }): Promise<RawShell> {
  const stream = await new Promise<ssh2.ClientChannel>((resolve, reject) => conn.shell(pty, (err, s) => (err ? reject(err) : resolve(s))));
  let screen = '';
  stream.on('data', (d: Buffer) => (screen += d.toString()));
  const closed = new Promise<boolean>((resolve) => stream.once('close', () => resolve(true)));
  return {
    stream,
    closed: (timeoutMs) => Promise.race([closed, new Promise<boolean>((resolve) => setTimeout(() => resolve(false), timeoutMs))]),
    type: (s) => void stream.write(s),
    resize: (rows, cols) => void stream.setWindow(rows, cols, 0, 0),
    screen: () => screen,
    close: () => void stream.close(),
    until: async (re, timeoutMs = 30_000) => {
      const from = screen.length;
      const deadline = Date.now() + timeoutMs;
      while (!re.test(screen.slice(from))) {
        if (Date.now() > deadline) assert.unreachable(`the screen never showed ${re}: ${JSON.stringify(screen.slice(-400))}`);
        await new Promise((r) => setTimeout(r, 50));
      }
    },
  };
}

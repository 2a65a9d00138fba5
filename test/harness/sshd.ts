// Throwaway OpenSSH servers for integration tests.
//
// startSshd() runs Debian's real sshd in the foreground (-D -e) on a free 127.0.0.1 port, with
// its own config, host key and authorized key in a temp dir. Only public-key login as the test
// user is allowed. The binaries come from test/harness/install-sshd.sh. With `oracle`, sshd
// also notes every request it is asked to run and the sftp server every file operation it does
// (see SshOracle): an account of the target's side that owes nothing to Agate.
import { spawn, type ChildProcess } from 'node:child_process';
import { existsSync } from 'node:fs';
import { chmod, mkdir, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { connect } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describeFailure, run } from './proc.js';
import { findFreePort } from './postgres.js';

const SSHD = '/usr/sbin/sshd';
const SSH_TEST_USER = 'agate_ssh';

export interface SshServer {
  host: '127.0.0.1';
  port: number;
  user: string;
  /** Private key (OpenSSH format) that logs in as `user`. */
  clientKeyFile: string;
  /** The server's host public key, `ssh-ed25519 AAAA…` (what a pinned `host_key` holds). */
  hostPublicKey: string;
  rootDir: string;
  /** Everything sshd wrote to stderr (with -e its log goes there). */
  log(): string;
  /** Where the requests sshd ran and the sftp servers' logs are written, when started with `oracle`. */
  oracleDir?: string;
  /** Stops sshd and removes rootDir. Safe to call more than once. */
  stop(): Promise<void>;
}

interface StartSshdOptions {
  /** Deadline for key generation and startup. Default 60 000 ms (a loaded CI machine). */
  readyTimeoutMs?: number;
  /**
   * Notes, before running it, every request sshd is asked to run (a ForceCommand wrapper: `exec-*`
   * holds an exec's exact command, `shell-*` marks a shell, `sftp-*` is a subsystem sftp
   * session's server log: sftp-server at level INFO names every open, remove, rename, setstat …).
   */
  oracle?: boolean;
}

/** The sftp server the oracle runs, logging to its stderr (`-e`), which the wrapper sends to a file. */
const SFTP_SERVER = '/usr/lib/openssh/sftp-server';

export async function startSshd(opts: StartSshdOptions = {}): Promise<SshServer> {
  if (!existsSync(SSHD)) throw new Error(`${SSHD} not found; run test/harness/install-sshd.sh first`);
  const deadline = Date.now() + (opts.readyTimeoutMs ?? 60_000);
  await ensureUser(SSH_TEST_USER);
  // Privilege separation needs this directory; Debian's init script would normally create it.
  await mkdir('/run/sshd', { recursive: true, mode: 0o755 });
  const rootDir = await mkdtemp(join(tmpdir(), 'agate-sshd-'));
  let child: ChildProcess | undefined;
  let output = '';
  const stop = async () => {
    if (child !== undefined && child.exitCode === null && child.signalCode === null) {
      const exited = new Promise((r) => child!.once('exit', r));
      child.kill('SIGTERM');
      await Promise.race([exited, new Promise((r) => setTimeout(r, 3000).unref())]);
      if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL');
    }
    await rm(rootDir, { recursive: true, force: true });
  };
  try {
    // sshd reads authorized_keys as the test user, who must be able to enter the directory.
    await chmod(rootDir, 0o755);
    const hostKey = join(rootDir, 'host_ed25519');
    const clientKeyFile = join(rootDir, 'client_ed25519');
    await keygen(hostKey, deadline);
    await keygen(clientKeyFile, deadline);
    await writeFile(join(rootDir, 'authorized_keys'), await readFile(`${clientKeyFile}.pub`), { mode: 0o644 });
    const port = await findFreePort();
    const configFile = join(rootDir, 'sshd_config');
    const oracleDir = opts.oracle ? await oracleWrapper(rootDir) : undefined;
    await writeFile(configFile, sshdConfig(rootDir, port, hostKey, oracleDir !== undefined));
    child = spawn(SSHD, ['-D', '-e', '-f', configFile], { stdio: ['ignore', 'ignore', 'pipe'] });
    child.stderr!.setEncoding('utf8').on('data', (d: string) => (output = (output + d).slice(-64_000)));
    await waitForBanner(port, child, () => output, deadline);
    const hostPublicKey = (await readFile(`${hostKey}.pub`, 'utf8')).trim().split(/\s+/).slice(0, 2).join(' ');
    return { host: '127.0.0.1', port, user: SSH_TEST_USER, clientKeyFile, hostPublicKey, rootDir, log: () => output, ...(oracleDir ? { oracleDir } : {}), stop };
  } catch (err) {
    await stop();
    throw err;
  }
}

/**
 * The ForceCommand that makes the oracle: sshd hands it the request in SSH_ORIGINAL_COMMAND (unset
 * for a shell; the subsystem's command line for a subsystem), it notes the request in a file of its
 * own and runs it as sshd would have (`sh -c COMMAND`, a login shell). The subsystem's command
 * line names a file in this server's own temporary directory, which no client is told.
 */
async function oracleWrapper(rootDir: string): Promise<string> {
  const dir = join(rootDir, 'oracle');
  await mkdir(dir);
  // Written by the test user's sessions; read by the test.
  await chmod(dir, 0o777);
  const wrapper = join(rootDir, 'oracle-exec');
  await writeFile(wrapper, [
    '#!/bin/sh',
    `d='${dir}'`,
    // A name no other session takes, though pids come round again.
    'n=$$.$(date +%s%N)',
    'if [ -z "${SSH_ORIGINAL_COMMAND+set}" ]; then',
    '  : > "$d/shell-$n"',
    '  exec /bin/sh -l',
    'fi',
    `if [ "$SSH_ORIGINAL_COMMAND" = '${join(rootDir, 'oracle-sftp')}' ]; then`,
    `  exec ${SFTP_SERVER} -e -l INFO 2> "$d/sftp-$n"`,
    'fi',
    'printf %s "$SSH_ORIGINAL_COMMAND" > "$d/exec-$n"',
    'exec /bin/sh -c "$SSH_ORIGINAL_COMMAND"',
    '',
  ].join('\n'), { mode: 0o755 });
  return dir;
}

function sshdConfig(rootDir: string, port: number, hostKey: string, oracle: boolean): string {
  return [
    `Port ${port}`,
    'ListenAddress 127.0.0.1',
    `HostKey ${hostKey}`,
    'PidFile none',
    `AuthorizedKeysFile ${join(rootDir, 'authorized_keys')}`,
    // The key file lives under /tmp (world-writable), which StrictModes would reject.
    'StrictModes no',
    'PubkeyAuthentication yes',
    'PasswordAuthentication no',
    'KbdInteractiveAuthentication no',
    'UsePAM no',
    `AllowUsers ${SSH_TEST_USER}`,
    // The oracle's subsystem command is only a name its wrapper knows (ForceCommand runs instead).
    oracle ? `Subsystem sftp ${join(rootDir, 'oracle-sftp')}` : 'Subsystem sftp internal-sftp',
    ...(oracle ? [`ForceCommand ${join(rootDir, 'oracle-exec')}`] : []),
    // Forwarding through Agate is decided by Agate's policy; the target allows it (-R on loopback only).
    'AllowTcpForwarding yes',
    'AllowAgentForwarding yes',
    'GatewayPorts no',
    'LogLevel VERBOSE',
    '',
  ].join('\n');
}

async function keygen(file: string, deadline: number): Promise<void> {
  const args = ['-q', '-t', 'ed25519', '-N', '', '-C', 'agate-test', '-f', file];
  const r = await run('ssh-keygen', args, { timeoutMs: Math.max(1000, deadline - Date.now()) });
  if (r.code !== 0) throw new Error(describeFailure('ssh-keygen', args, r));
}

/** Creates the login user when missing; its password field is `*` (no password, not locked). */
async function ensureUser(name: string): Promise<void> {
  if ((await run('id', ['-u', name])).code === 0) return;
  const args = ['--system', '--create-home', '--shell', '/bin/sh', name];
  const r = await run('useradd', args, { timeoutMs: 10_000 });
  // Another test process may have created it in the meantime.
  if (r.code !== 0 && (await run('id', ['-u', name])).code !== 0) throw new Error(describeFailure('useradd', args, r));
  // With UsePAM no, sshd refuses even key logins for a locked ("!") password field.
  await run('usermod', ['-p', '*', name], { timeoutMs: 10_000 });
}

/** Ready when the server sends its SSH identification string. */
async function waitForBanner(port: number, child: ChildProcess, log: () => string, deadline: number): Promise<void> {
  for (;;) {
    if (child.exitCode !== null) throw new Error(`sshd exited with ${child.exitCode}:\n${log()}`);
    if (await banner(port)) return;
    if (Date.now() > deadline) throw new Error(`sshd did not answer on port ${port} in time:\n${log()}`);
    await new Promise((r) => setTimeout(r, 50));
  }
}

function banner(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const s = connect(port, '127.0.0.1');
    const done = (ok: boolean) => {
      s.destroy();
      resolve(ok);
    };
    s.setTimeout(1000, () => done(false));
    s.once('error', () => done(false));
    s.once('data', (d: Buffer) => done(d.toString('latin1').startsWith('SSH-2.0-')));
  });
}

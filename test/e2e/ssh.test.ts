// The SSH proxy end to end, in process: the real OpenSSH client (through sshpass, the OIDC token
// as its password) talks to Agate's SSH proxy, which runs commands on a real OpenSSH server. The
// policy service decides on a LocalBus; every test reads what was recorded from that bus.
import { suite } from '../harness/suite.js';
import * as assert from 'uvu/assert';
import { createHash } from 'node:crypto';
import { chownSync, existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { connect, createServer, type Server } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import ssh2 from 'ssh2';
import { packageRoot } from '../../core/src/package-root.js';
import { PendingLogins } from '../../core/src/logins/pending.js';
import { LoginThrottle } from '../../core/src/logins/throttle.js';
import type { AgateEvent, AuthenticationFailed, Command, Response, SessionOpened, Verdict } from '../../schemas/src/events.js';
import { AuthorizedKeys, SSH_KEY_ISSUER } from '../../services/ingress-proxy/src/ssh/authorized-keys.js';
import { SshProxyServer } from '../../services/ingress-proxy/src/ssh/server.js';
import { findFreePort } from '../harness/postgres.js';
import { run, type RunResult } from '../harness/proc.js';
import { until } from '../harness/until.js';
import { sshPolicy, SSH_CLIENT_OPTIONS, sshdTarget, startSshProxy, stopSshProxy, type SshEnv } from './ssh-fixture.js';

const POLICY = sshPolicy(`    - id: no-shell-for-untrusted
      action: deny
      message: interactive shells need a trusted identity
      match: { protocols: [ssh], claims: { sub: 'repo:acme/untrusted*' }, ssh: { requests: [shell] } }
    - id: hold-reboot
      action: hold
      message: rebooting needs a human
      approval: { timeout_s: 1 }
      match: { protocols: [ssh], shell: { commands: [reboot] } }
    - id: typed-lines-best-effort
      action: allow
      match: { protocols: [ssh], claims: { sub: 'repo:acme/app*' }, ssh: { requests: [shell-line] } }
    - id: screen-lines-for-app
      action: allow
      match: { protocols: [ssh], claims: { sub: 'repo:acme/app*' }, ssh: { requests: [screen-line] } }
    - id: tunnel-for-tunnelers
      action: allow
      match: { protocols: [ssh], claims: { sub: 'repo:acme/tunnel*' }, ssh: { requests: [direct-tcpip] } }
    - id: remote-for-tunnelers
      action: allow
      match: { protocols: [ssh], claims: { sub: 'repo:acme/tunnel*' }, ssh: { requests: [tcpip-forward], paths: ['127.0.0.1:*'] } }
    - id: agent-for-tunnelers
      action: allow
      match: { protocols: [ssh], claims: { sub: 'repo:acme/tunnel*' }, ssh: { requests: [auth-agent] } }
    - id: locked-dir
      action: deny
      message: the locked directory is read-only
      match: { protocols: [ssh], ssh: { operations: [write, remove, rename, mkdir, rmdir, setstat], paths: ['/tmp/agate-locked-*'] } }
`);

const VERDICT_TIMEOUT_MS = 1500;

type Env = SshEnv;

const PTY_DRIVE = join(packageRoot(), 'test/harness/pty-drive.py');

/** The real ssh client through the proxy; the token travels in SSHPASS, never on a command line. */
async function ssh(env: Env, token: string, target: string, command: string | undefined, extra: string[] = []): Promise<RunResult> {
  const args = sshArgs(env, target, command, extra);
  const r = await run('sshpass', args, { env: { ...process.env, SSHPASS: token }, timeoutMs: process.env.AGATE_TEST_LOG ? 5000 : 20_000 });
  if (process.env.AGATE_TEST_LOG) console.error('ssh', target, command, '->', r);
  return r;
}

/** sshpass's arguments for the real ssh client through the proxy. */
function sshArgs(env: Env, target: string, command: string | undefined, extra: string[] = []): string[] {
  return [
    '-e', '/usr/bin/ssh', '-p', String(env.port), ...SSH_CLIENT_OPTIONS,
    ...(process.env.AGATE_TEST_LOG ? ['-v'] : []), ...extra, `${target}@127.0.0.1`, ...(command === undefined ? [] : [command]),
  ];
}

/**
 * OpenSSH reads a password into a 1024-byte buffer, so a token longer than 1023 characters is cut
 * (a full GitHub Actions id-token is longer). The tests mint a compact ES256 token.
 */
async function token(env: Env, sub = 'repo:acme/app:ref:refs/heads/main'): Promise<string> {
  const t = await env.issuer.mint({ sub, repository: 'acme/app' }, { alg: 'ES256' });
  assert.ok(t.length < 1024, `token of ${t.length} characters would be cut by the ssh client`);
  return t;
}

async function waitFor<T>(env: Env, find: (events: AgateEvent[]) => T | undefined): Promise<T> {
  return until(() => `the expected events; recorded: ${JSON.stringify(env.events.map((e) => e.type))}`, () => find(env.events), { timeoutMs: 30_000, everyMs: 25 });
}

/** The Command with this text, its verdict and its response, once all three are recorded. */
function trail(env: Env, text: string) {
  return waitFor(env, (events) => {
    const command = events.find((e): e is Command => e.type === 'Command' && e.text === text);
    if (command === undefined) return undefined;
    const verdict = events.find((e): e is Verdict => e.type === 'Verdict' && e.command_id === command.event_id);
    const response = events.find((e): e is Response => e.type === 'Response' && e.command_id === command.event_id);
    return response === undefined ? undefined : { command, verdict, response };
  });
}

const test = suite<Partial<Env>>('e2e/ssh proxy');
test.before(async (ctx) => {
  await startSshProxy(ctx, {
    configYaml: POLICY, name: 'ssh', verdictTimeoutMs: VERDICT_TIMEOUT_MS, algorithms: ['RS256', 'ES256'],
    types: ['SessionOpened', 'AuthenticationFailed', 'Command', 'Verdict', 'Response', 'SessionClosed'],
    // `imposter` pins a key the server does not have: every connection to it must be refused.
    targets: (sshd) => new Map([['box', sshdTarget(sshd, 'box')], ['imposter', sshdTarget(sshd, 'imposter', ssh2.utils.generateKeyPairSync('ed25519').public.split(' ').slice(0, 2).join(' '))]]),
    proxy: async (dir) => ({
      authorizedKeys: new AuthorizedKeys([{ key: readFileSync(await sshKeygen(dir, 'registered'), 'utf8').trim(), subject: 'ci-runner-7', claims: { environment: 'staging' } }]),
    }),
  });
});
test.after(async (ctx) => stopSshProxy(ctx));

test('an allowed command runs on the target; its text, exit status, bytes and digest are recorded', async (ctx) => {
  const env = ctx as Env;
  const r = await ssh(env, await token(env), 'box', 'echo ok; whoami');
  assert.is(r.code, 0, r.stderr);
  assert.is(r.stdout, `ok\n${env.sshd.user}\n`);
  const { command, verdict, response } = await trail(env, 'echo ok; whoami');
  assert.is(command.protocol, 'ssh');
  assert.is(command.target, 'box');
  assert.is(command.identity.subject, 'repo:acme/app:ref:refs/heads/main');
  assert.is(verdict?.decision, 'allow');
  assert.is(response.status, 'ok');
  assert.is(response.command_tag, 'exit-status 0');
  assert.is(response.bytes, Buffer.byteLength(r.stdout));
  assert.is(response.digest, 'sha256:' + createHash('sha256').update(r.stdout).digest('hex'));
  const opened = env.events.find((e): e is SessionOpened => e.type === 'SessionOpened' && e.session_id === command.session_id);
  assert.is(opened?.protocol, 'ssh');
  await waitFor(env, (events) => events.find((e) => e.type === 'SessionClosed' && e.session_id === command.session_id));
});

test('keyboard-interactive login: the token answers the prompt', async (ctx) => {
  const env = ctx as Env;
  // Only keyboard-interactive is offered; sshpass answers the "OIDC token (password):" prompt.
  const kbd = await run('sshpass', [
    '-e', '/usr/bin/ssh', '-o', 'PreferredAuthentications=keyboard-interactive', '-p', String(env.port), '-o', 'StrictHostKeyChecking=no',
    '-o', 'UserKnownHostsFile=/dev/null', '-o', 'LogLevel=ERROR', '-o', 'PubkeyAuthentication=no', 'box@127.0.0.1', 'echo via kbd',
  ], { env: { ...process.env, SSHPASS: await token(env) }, timeoutMs: 20_000 });
  assert.is(kbd.code, 0, kbd.stderr);
  assert.is(kbd.stdout, 'via kbd\n');
  const { response } = await trail(env, 'echo via kbd');
  assert.is(response.status, 'ok');
});

test('stderr and a non-zero exit status come back unchanged and are recorded', async (ctx) => {
  const env = ctx as Env;
  const r = await ssh(env, await token(env), 'box', 'echo oops >&2; exit 3');
  assert.is(r.code, 3);
  assert.is(r.stderr, 'oops\n');
  const { response } = await trail(env, 'echo oops >&2; exit 3');
  assert.is(response.status, 'error');
  assert.is(response.command_tag, 'exit-status 3');
  assert.is(response.bytes, 5);
});

test('a command the policy denies never runs: stderr names the rule, exit status 126, refusal recorded', async (ctx) => {
  const env = ctx as Env;
  const victimDir = mkdtempSync(join(tmpdir(), 'agate-ssh-victim-'));
  try {
    const victim = join(victimDir, 'keep-me');
    writeFileSync(victim, 'precious');
    // Owned by the login user, so only the policy stands between the command and the file.
    const ids = (await run('id', ['-u', env.sshd.user])).stdout.trim();
    const gid = (await run('id', ['-g', env.sshd.user])).stdout.trim();
    chownSync(victimDir, Number(ids), Number(gid));
    chownSync(victim, Number(ids), Number(gid));
    const text = `rm -rf ${victimDir}`;
    const r = await ssh(env, await token(env), 'box', text);
    assert.is(r.code, 126);
    assert.match(r.stderr, /Agate refused the command by rule "no-rm": deleting files needs a human/);
    assert.ok(existsSync(victim), 'the file must survive');
    const { verdict, response } = await trail(env, text);
    assert.is(verdict?.decision, 'deny');
    assert.is(verdict?.rule_id, 'no-rm');
    assert.is(response.status, 'refused');
    // The control: the same user may touch the file when the policy allows it.
    const ok = await ssh(env, await token(env), 'box', `cat ${victim}`);
    assert.is(ok.stdout, 'precious');
  } finally {
    rmSync(victimDir, { recursive: true, force: true });
  }
});

test('a held command: stderr names the approval while it waits; refused when nobody approves in time', async (ctx) => {
  const env = ctx as Env;
  const r = await ssh(env, await token(env), 'box', 'reboot');
  assert.is(r.code, 126);
  assert.match(r.stderr, /^Agate is holding this command for approval [0-9a-f-]+ \(rule hold-reboot\): rebooting needs a human\. It runs once approved \(agate approve [0-9a-f-]+\), or is refused in 1 s\.\n/);
  assert.match(r.stderr, /Agate refused the command by rule "hold-reboot"/);
  const { response } = await trail(env, 'reboot');
  assert.is(response.status, 'refused');
  assert.ok(env.events.some((e) => e.type === 'Verdict' && e.decision === 'hold' && e.rule_id === 'hold-reboot'));
});

test('a wrong token is refused at login and recorded as AuthenticationFailed', async (ctx) => {
  const env = ctx as Env;
  const r = await ssh(env, 'not-a-token', 'box', 'echo never');
  // 5 is sshpass's "invalid/incorrect password": the proxy refused the login (no session opened).
  assert.is(r.code, 5, `sshpass reports a refused password with 5; got ${r.code}: ${r.stderr}`);
  const failed = await waitFor(env, (events) => events.find((e): e is AuthenticationFailed => e.type === 'AuthenticationFailed' && e.target === 'box'));
  assert.is(failed.protocol, 'ssh');
  assert.is(failed.reason_code, 'AUTH_TOKEN_MALFORMED');
  assert.not.ok(env.events.some((e) => e.type === 'Command' && e.text === 'echo never'));
  // The plain ssh client (token from SSH_ASKPASS, no sshpass) says why it stopped.
  const askpass = join(env.dir, 'askpass.sh');
  writeFileSync(askpass, '#!/bin/sh\necho not-a-token-either\n', { mode: 0o700 });
  const plain = await run('/usr/bin/ssh', [
    '-p', String(env.port), '-o', 'StrictHostKeyChecking=no', '-o', 'UserKnownHostsFile=/dev/null', '-o', 'LogLevel=ERROR',
    '-o', 'PreferredAuthentications=password', '-o', 'PubkeyAuthentication=no', '-o', 'NumberOfPasswordPrompts=1', 'box@127.0.0.1', 'echo never',
  ], { env: { ...process.env, SSH_ASKPASS: askpass, SSH_ASKPASS_REQUIRE: 'force', DISPLAY: ':0' }, timeoutMs: 20_000 });
  assert.is(plain.code, 255);
  assert.match(plain.stderr, /box@127\.0\.0\.1: Permission denied \(password,keyboard-interactive,publickey\)/);
});

/** A new ed25519 key pair made by OpenSSH's ssh-keygen; returns the public key's path. */
async function sshKeygen(dir: string, name: string): Promise<string> {
  const file = join(dir, `key-${name}`);
  const r = await run('ssh-keygen', ['-q', '-t', 'ed25519', '-N', '', '-C', name, '-f', file]);
  if (r.code !== 0) throw new Error(`ssh-keygen failed: ${r.stderr}`);
  return `${file}.pub`;
}

/** The plain OpenSSH client logging in with a key file only (no token, no agent). */
function sshWithKey(env: Env, keyFile: string, command: string): Promise<RunResult> {
  return run('/usr/bin/ssh', [
    '-p', String(env.port), '-i', keyFile, '-o', 'IdentitiesOnly=yes', '-o', 'IdentityAgent=none', '-o', 'BatchMode=yes',
    '-o', 'PreferredAuthentications=publickey', '-o', 'StrictHostKeyChecking=no', '-o', 'UserKnownHostsFile=/dev/null', '-o', 'LogLevel=ERROR',
    'box@127.0.0.1', command,
  ], { timeoutMs: 20_000 });
}

test('a public key registered to an identity logs in as that identity; an unknown key is refused and recorded', async (ctx) => {
  const env = ctx as Env;
  const ok = await sshWithKey(env, join(env.dir, 'key-registered'), 'echo key-login-ok');
  assert.is(ok.code, 0, ok.stderr);
  assert.is(ok.stdout, 'key-login-ok\n');
  const command = await waitFor(env, (events) => events.find((e): e is Command => e.type === 'Command' && e.text === 'echo key-login-ok'));
  assert.is(command.identity.subject, 'ci-runner-7');
  assert.is(command.identity.issuer, SSH_KEY_ISSUER);
  assert.is(command.identity.claims.environment, 'staging');
  assert.match(command.identity.claims.key_fingerprint ?? '', /^SHA256:[A-Za-z0-9+/]{43}$/);

  const strangerPub = await sshKeygen(env.dir, 'stranger');
  const refused = await sshWithKey(env, strangerPub.replace(/\.pub$/, ''), 'echo never-with-key');
  assert.is(refused.code, 255);
  assert.match(refused.stderr, /Permission denied \(password,keyboard-interactive,publickey\)/);
  const failed = await waitFor(env, (events) => events.find((e): e is AuthenticationFailed => e.type === 'AuthenticationFailed' && e.reason_code === 'AUTH_KEY_UNKNOWN'));
  const expected = (await run('ssh-keygen', ['-l', '-f', strangerPub])).stdout.split(' ')[1]!;
  assert.ok(failed.message.includes(expected), `the refusal names the key's fingerprint ${expected}: ${failed.message}`);
  assert.not.ok(env.events.some((e) => e.type === 'Command' && e.text === 'echo never-with-key'));
});

test('a target presenting another host key is refused with a clear error, and the refusal is recorded', async (ctx) => {
  const env = ctx as Env;
  const r = await ssh(env, await token(env), 'imposter', 'echo hi');
  assert.is(r.code, 255);
  assert.match(r.stderr, /target "imposter" presented host key SHA256:\S+, which is not its pinned host_key/);
  assert.is(r.stdout, '');
  const { response } = await trail(env, 'echo hi');
  assert.is(response.status, 'error');
  assert.is(response.error_code, 'UPSTREAM_HOST_KEY_MISMATCH');
});

test('scp (over sftp) uploads and downloads through the proxy; the transfer is decided and recorded', async (ctx) => {
  const env = ctx as Env;
  const dir = mkdtempSync(join(tmpdir(), 'agate-ssh-scp-'));
  try {
    const ids = (await run('id', ['-u', env.sshd.user])).stdout.trim();
    const gid = (await run('id', ['-g', env.sshd.user])).stdout.trim();
    chownSync(dir, Number(ids), Number(gid));
    const local = join(env.dir, 'upload.txt');
    // About 1 MiB: several of scp's 255 KiB writes and reads, each streamed through the relay in pieces.
    const payload = 'a file that crossed Agate\n'.repeat(40_000);
    writeFileSync(local, payload);
    const common = [
      '-e', '/usr/bin/scp', '-P', String(env.port), '-o', 'StrictHostKeyChecking=no', '-o', 'UserKnownHostsFile=/dev/null', '-o', 'LogLevel=ERROR',
      '-o', 'PreferredAuthentications=password,keyboard-interactive', '-o', 'PubkeyAuthentication=no', '-o', 'NumberOfPasswordPrompts=1',
    ];
    const sshEnv = { ...process.env, SSHPASS: await token(env) };
    const up = await run('sshpass', [...common, local, `box@127.0.0.1:${dir}/copied.txt`], { env: sshEnv, timeoutMs: 20_000 });
    assert.is(up.code, 0, up.stderr);
    assert.is(readFileSync(join(dir, 'copied.txt'), 'utf8'), payload);
    const back = join(env.dir, 'back.txt');
    const down = await run('sshpass', [...common, `box@127.0.0.1:${dir}/copied.txt`, back], { env: sshEnv, timeoutMs: 20_000 });
    assert.is(down.code, 0, down.stderr);
    assert.is(readFileSync(back, 'utf8'), payload);
    const transfers = await waitFor(env, (events) => {
      const commands = events.filter((e): e is Command => e.type === 'Command' && e.text === '(subsystem sftp)');
      const responses = commands.map((c) => events.find((e): e is Response => e.type === 'Response' && e.command_id === c.event_id));
      return responses.length === 2 && responses.every((r) => r !== undefined) ? (responses as Response[]) : undefined;
    });
    for (const r of transfers) assert.is(r.status, 'ok');
    // The upload sent the payload up; the download brought it back down (plus sftp framing).
    assert.ok(/^sftp (\d+) bytes up/.test(transfers[0]!.command_tag ?? '') && Number(/(\d+) bytes up/.exec(transfers[0]!.command_tag!)![1]) > payload.length);
    assert.ok(transfers[1]!.bytes > payload.length);
    // Each file: its path, the bytes moved and the digest of its content.
    const sha = 'sha256:' + createHash('sha256').update(payload).digest('hex');
    const upload = await trail(env, `sftp write ${dir}/copied.txt`);
    assert.is(upload.command.attributes.path, `${dir}/copied.txt`);
    assert.is(upload.response.digest, sha);
    assert.is(upload.response.bytes, payload.length);
    const download = await trail(env, `sftp read ${dir}/copied.txt`);
    assert.is(download.response.digest, sha);
    assert.is(download.response.bytes, payload.length);
    // Legacy scp (-O) runs `scp -t` / `scp -f` as a command; its files are read from the stream.
    const legacyUp = await run('sshpass', [...common, '-O', local, `box@127.0.0.1:${dir}/legacy.txt`], { env: sshEnv, timeoutMs: 20_000 });
    assert.is(legacyUp.code, 0, legacyUp.stderr);
    assert.is(readFileSync(join(dir, 'legacy.txt'), 'utf8'), payload);
    const legacyDown = await run('sshpass', [...common, '-O', `box@127.0.0.1:${dir}/legacy.txt`, join(env.dir, 'legacy-back.txt')], { env: sshEnv, timeoutMs: 20_000 });
    assert.is(legacyDown.code, 0, legacyDown.stderr);
    const sink = await waitFor(env, (events) => {
      const c = events.find((e): e is Command => e.type === 'Command' && /^scp .*-t .*legacy\.txt$/.test(e.text));
      return c && events.find((e): e is Response => e.type === 'Response' && e.command_id === c.event_id);
    });
    assert.equal(sink.columns, ['path', 'size', 'digest']);
    // The name as the source sent it; where it landed is the command line's path.
    assert.equal(sink.sample, [['upload.txt', String(payload.length), sha]]);
    const source = await waitFor(env, (events) => {
      const c = events.find((e): e is Command => e.type === 'Command' && /^scp .*-f .*legacy\.txt$/.test(e.text));
      return c && events.find((e): e is Response => e.type === 'Response' && e.command_id === c.event_id);
    });
    assert.equal(source.sample, [['legacy.txt', String(payload.length), sha]]);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

/** The real sftp client in batch mode through the proxy. */
async function sftpBatch(env: Env, batch: string): Promise<RunResult> {
  const file = join(env.dir, `batch-${Math.random().toString(36).slice(2)}`);
  writeFileSync(file, batch);
  return run('sshpass', [
    // BatchMode=no before -b: ssh takes an option's first value, and -b would forbid the password.
    '-e', '/usr/bin/sftp', '-o', 'BatchMode=no', '-b', file, '-P', String(env.port), '-o', 'StrictHostKeyChecking=no', '-o', 'UserKnownHostsFile=/dev/null', '-o', 'LogLevel=ERROR',
    '-o', 'PreferredAuthentications=password,keyboard-interactive', '-o', 'PubkeyAuthentication=no', '-o', 'NumberOfPasswordPrompts=1', 'box@127.0.0.1',
  ], { env: { ...process.env, SSHPASS: await token(env) }, timeoutMs: 30_000 });
}

/** A directory the sshd user owns. */
async function userDir(env: Env, prefix: string): Promise<string> {
  const dir = mkdtempSync(join(tmpdir(), prefix));
  const uid = Number((await run('id', ['-u', env.sshd.user])).stdout.trim());
  const gid = Number((await run('id', ['-g', env.sshd.user])).stdout.trim());
  chownSync(dir, uid, gid);
  return dir;
}

test('sftp: each operation is decided and recorded with its path, bytes and digest; policy refuses writes under a locked path', async (ctx) => {
  const env = ctx as Env;
  const open = await userDir(env, 'agate-sftp-');
  const locked = await userDir(env, 'agate-locked-');
  try {
    writeFileSync(join(locked, 'keep.txt'), 'keep me');
    const payload = Buffer.alloc(300_000);
    for (let i = 0; i < payload.length; i += 1) payload[i] = (i * 7919) % 251;
    const sha = 'sha256:' + createHash('sha256').update(payload).digest('hex');
    const local = join(env.dir, 'sftp-up.bin');
    writeFileSync(local, payload);
    const back = join(env.dir, 'sftp-back.bin');
    const ok = await sftpBatch(env, [`put ${local} ${open}/up.bin`, `get ${open}/up.bin ${back}`, `mkdir ${open}/sub`, `rename ${open}/up.bin ${open}/sub/moved.bin`, `chmod 600 ${open}/sub/moved.bin`, `rm ${open}/sub/moved.bin`, `rmdir ${open}/sub`, ''].join('\n'));
    assert.is(ok.code, 0, ok.stderr);
    assert.equal(readFileSync(back), payload);
    assert.not.ok(existsSync(join(open, 'sub')));
    const put = await trail(env, `sftp write ${open}/up.bin`);
    assert.is(put.verdict?.decision, 'allow');
    assert.is(put.response.status, 'ok');
    assert.is(put.response.digest, sha);
    assert.equal(put.response.sample, [['0', String(payload.length)]]);
    const get = await trail(env, `sftp read ${open}/up.bin`);
    assert.is(get.response.digest, sha);
    assert.is(get.response.bytes, payload.length);
    const rename = await trail(env, `sftp rename ${open}/up.bin ${open}/sub/moved.bin`);
    assert.is(rename.command.attributes.target_path, `${open}/sub/moved.bin`);
    assert.is(rename.response.status, 'ok');
    for (const text of [`sftp mkdir ${open}/sub`, `sftp setstat ${open}/sub/moved.bin`, `sftp remove ${open}/sub/moved.bin`, `sftp rmdir ${open}/sub`]) {
      assert.is((await trail(env, text)).response.status, 'ok', text);
    }

    // Refused: the client gets "Permission denied" and the target never sees the request.
    const put2 = await sftpBatch(env, `put ${local} ${locked}/evil.bin\n`);
    assert.is.not(put2.code, 0);
    assert.match(put2.stderr, /Permission denied/);
    assert.not.ok(existsSync(join(locked, 'evil.bin')));
    const refused = await trail(env, `sftp write ${locked}/evil.bin`);
    assert.is(refused.verdict?.rule_id, 'locked-dir');
    assert.is(refused.response.status, 'refused');
    assert.match(refused.response.error_message ?? '', /the locked directory is read-only/);
    const rm = await sftpBatch(env, `rm ${locked}/keep.txt\n`);
    assert.is.not(rm.code, 0);
    assert.ok(existsSync(join(locked, 'keep.txt')));
    assert.is((await trail(env, `sftp remove ${locked}/keep.txt`)).response.status, 'refused');
    // Reading under the locked path stays allowed.
    const read = await sftpBatch(env, `get ${locked}/keep.txt ${join(env.dir, 'kept.txt')}\n`);
    assert.is(read.code, 0, read.stderr);
    assert.is(readFileSync(join(env.dir, 'kept.txt'), 'utf8'), 'keep me');
  } finally {
    rmSync(open, { recursive: true, force: true });
    rmSync(locked, { recursive: true, force: true });
  }
});

test('git push and git clone over ssh go through the proxy; the refs a push updates and a clone wants are recorded', async (ctx) => {
  const env = ctx as Env;
  const remote = await userDir(env, 'agate-git-');
  const work = mkdtempSync(join(tmpdir(), 'agate-git-work-'));
  try {
    const bare = join(remote, 'repo.git');
    const init = await run('su', ['-s', '/bin/sh', env.sshd.user, '-c', `git init -q --bare -b main ${bare}`]);
    assert.is(init.code, 0, init.stderr);
    const sshCommand = ['sshpass', '-e', 'ssh', '-p', String(env.port), '-o', 'StrictHostKeyChecking=no', '-o', 'UserKnownHostsFile=/dev/null', '-o', 'LogLevel=ERROR',
      '-o', 'PreferredAuthentications=password,keyboard-interactive', '-o', 'PubkeyAuthentication=no'].join(' ');
    const gitEnv = { ...process.env, SSHPASS: await token(env), GIT_SSH_COMMAND: sshCommand, GIT_AUTHOR_NAME: 'Agent', GIT_AUTHOR_EMAIL: 'agent@example.invalid', GIT_COMMITTER_NAME: 'Agent', GIT_COMMITTER_EMAIL: 'agent@example.invalid' };
    const git = (cwd: string, ...args: string[]) => run('git', ['-C', cwd, ...args], { env: gitEnv, timeoutMs: 30_000 });
    const src = join(work, 'src');
    for (const args of [['init', '-q', '-b', 'main', src]]) assert.is((await run('git', args)).code, 0);
    writeFileSync(join(src, 'README'), 'pushed through Agate\n');
    assert.is((await git(src, 'add', 'README')).code, 0);
    assert.is((await git(src, 'commit', '-q', '-m', 'first')).code, 0);
    const head = (await git(src, 'rev-parse', 'HEAD')).stdout.trim();
    const url = `box@127.0.0.1:${bare}`;
    const push = await git(src, 'push', '-q', url, 'main');
    assert.is(push.code, 0, push.stderr);
    const clone = await run('git', ['clone', '-q', url, join(work, 'clone')], { env: gitEnv, timeoutMs: 30_000 });
    assert.is(clone.code, 0, clone.stderr);
    assert.is(readFileSync(join(work, 'clone', 'README'), 'utf8'), 'pushed through Agate\n');

    const pushed = await trail(env, `git-receive-pack '${bare}'`);
    assert.is(pushed.verdict?.decision, 'allow');
    assert.is(pushed.response.status, 'ok');
    assert.equal(pushed.response.columns, ['old', 'new', 'ref']);
    assert.equal(pushed.response.sample, [['0'.repeat(40), head, 'refs/heads/main']]);
    const cloned = await trail(env, `git-upload-pack '${bare}'`);
    assert.is(cloned.response.status, 'ok');
    assert.equal(cloned.response.columns, ['want', 'refs']);
    assert.equal(cloned.response.sample, [[head, 'HEAD refs/heads/main']]);
  } finally {
    rmSync(remote, { recursive: true, force: true });
    rmSync(work, { recursive: true, force: true });
  }
});

test('an interactive shell on a real pty is relayed, recorded as asciicast v2, and each command bash runs captured and decided', async (ctx) => {
  const env = ctx as Env;
  const args = sshArgs(env, 'box', undefined, ['-tt']);
  // A person at a keyboard: a refused line first (it must not run), then an allowed one.
  const victim = `/tmp/agate-pty-victim-${process.pid}`;
  await run('install', ['-o', env.sshd.user, '-m', '644', '/dev/null', victim]);
  try {
    const steps = [['[$#] $', `rm -f ${victim}\r`], ['Agate refused[^\n]*\n(.|\n)*[$#] $', 'for i in 1 2; do echo hello from the pty; done; exit\r']];
    const r = await run('python3', [PTY_DRIVE, JSON.stringify(steps), '--', 'sshpass', ...args], { env: { ...process.env, SSHPASS: await token(env) }, timeoutMs: 60_000 });
    assert.is(r.code, 0, r.stdout + r.stderr);
    assert.match(r.stdout, /\rhello from the pty\r\n/);
    assert.match(r.stdout, /Agate refused the command by rule "no-rm"/);
    assert.ok(existsSync(victim), 'the refused line must not have run');
  } finally {
    rmSync(victim, { force: true });
  }
  const { command, verdict } = await trail(env, 'shell');
  // Parts of the recording first, then the shell's own Response with its exit status.
  const response = await waitFor(env, (events) => events.find((e): e is Response => e.type === 'Response' && e.command_id === command.event_id && !(e.command_tag ?? '').startsWith('asciicast')));
  assert.is(command.attributes.request, 'shell');
  assert.is(command.attributes.pty, 'true');
  assert.ok(Number(command.attributes.cols) > 0);
  assert.is(verdict?.decision, 'allow');
  assert.is(response.command_tag, 'exit-status 0');
  const parts = env.events.filter((e): e is Response => e.type === 'Response' && e.command_id === command.event_id && (e.command_tag ?? '').startsWith('asciicast v2 part'));
  assert.ok(parts.length >= 1);
  const cast = parts.flatMap((p) => p.sample);
  assert.equal(parts[0]!.columns, ['time', 'code', 'data']);
  assert.ok(cast.some(([, code, data]) => code === 'o' && /hello from the pty/.test(data ?? '')), 'the output is recorded');
  assert.ok(cast.some(([, code, data]) => code === 'i' && /echo hello from the pty; done; exit/.test(data ?? '')), 'the input is recorded');
  // Within a part times never go back (input held to its line end may land in a later part; readers sort).
  for (const p of parts) for (let i = 1; i < p.sample.length; i += 1) assert.ok(Number(p.sample[i]![0]) >= Number(p.sample[i - 1]![0]), 'times never go back');
  // What bash ran, one simple command at a time, as its DEBUG trap reported it: exact, decided, the refused one skipped.
  const lines = env.events.filter((e): e is Command => e.type === 'Command' && e.attributes.shell_command_id === command.event_id);
  // A loop's header is reported before each pass, its body's commands as they run.
  const pass = ['for i in 1 2', 'echo hello from the pty'];
  assert.equal(lines.map((l) => l.text), [`rm -f ${victim}`, ...pass, ...pass, 'exit']);
  assert.ok(lines.every((l) => l.attributes.exact === 'true' && l.attributes.captured === 'bash' && l.attributes.request === 'shell-line'));
  assert.ok(lines.every((l) => l.attributes.best_effort === undefined));
  const refused = env.events.find((e): e is Verdict => e.type === 'Verdict' && e.command_id === lines[0]!.event_id);
  assert.is(refused?.rule_id, 'no-rm');
});

test('captured: after less, `q` then `rm -rf` is recorded as exactly what ran and denied; readline transposition records the real line', async (ctx) => {
  const env = ctx as Env;
  const args = sshArgs(env, 'box', undefined, ['-tt']);
  const victim = `/tmp/agate-pty-edit-${process.pid}`;
  await run('install', ['-o', env.sshd.user, '-m', '644', '/dev/null', victim]);
  const since = env.events.length;
  try {
    const steps = [
      ['[$#] $', 'seq 1 100 | less\r'],
      // less on the alternate screen: its keys (and an Enter) are its own input.
      ['\x1b\\[\\?1049h', 'j\r'],
      ['\\d', 'q'],
      ['\x1b\\[\\?1049l(.|\n)*[$#] $', `rm -rf ${victim}\r`],
      // Typed `mr`, then ^A ^F ^T: readline swaps the first two letters, so bash runs `rm`.
      ['Agate refused[^\n]*no-rm(.|\n)*[$#] $', `mr -f ${victim}\x01\x06\x14\r`],
      ['Agate refused[^\n]*no-rm(.|\n)*[$#] $', 'echo done; exit\r'],
    ];
    const r = await run('python3', [PTY_DRIVE, JSON.stringify(steps), '--', 'sshpass', ...args], { env: { ...process.env, TERM: 'xterm', SSHPASS: await token(env) }, timeoutMs: 60_000 });
    assert.is(r.code, 0, r.stdout + r.stderr);
    assert.ok(existsSync(victim), 'neither the rm nor the transposed mr ran');
    assert.not.match(r.stdout, /AGATE1/, 'the hook\'s reports never reach the client');
  } finally {
    rmSync(victim, { force: true });
  }
  const lines = env.events.slice(since).filter((e): e is Command => e.type === 'Command' && e.attributes.request === 'shell-line');
  // q and j went to less; what bash ran is recorded as it ran it.
  assert.equal(lines.map((l) => l.text), ['seq 1 100', 'less', `rm -rf ${victim}`, `rm -f ${victim}`, 'echo done', 'exit']);
  assert.ok(lines.every((l) => l.attributes.exact === 'true' && l.attributes.captured === 'bash'));
  const verdicts = lines.map((l) => env.events.find((e): e is Verdict => e.type === 'Verdict' && e.command_id === l.event_id)?.rule_id);
  const allowed = 'typed-lines-best-effort'; // this policy's rule for shell lines; captured ones need none
  assert.equal(verdicts, [allowed, allowed, 'no-rm', 'no-rm', allowed, allowed]);
  const recorded = JSON.stringify(env.events.slice(since));
  assert.not.ok(recorded.includes('AGATE1'), 'nor the recording');
});

test('captured: `trap - DEBUG` and other ways to switch the hook off are refused, a later denied command still does not run, a held one waits for its verdict', async (ctx) => {
  const env = ctx as Env;
  const victim = `/tmp/agate-pty-trap-${process.pid}`;
  await run('install', ['-o', env.sshd.user, '-m', '644', '/dev/null', victim]);
  const since = env.events.length;
  const big = `/tmp/agate-big-command-${process.pid}.sh`;
  writeFileSync(big, `echo ${'x'.repeat(300 * 1024)} > ${victim}.big\n`, { mode: 0o644 });
  const attempts = ['trap - DEBUG', "eval 'trap - DEBUG'", 'set +T', 'shopt -u extdebug', 'unset BASH_COMMAND', 'exec bash --norc', 'f() { trap - DEBUG; }; f'];
  try {
    const steps: string[][] = [];
    let prompt = '[$#] $';
    for (const a of attempts) {
      steps.push([prompt, `${a}\r`]);
      prompt = 'Agate refused[^\n]*(.|\n)*[$#] $';
    }
    // A held command waits in the hook for its verdict: refused here when nobody approves within the rule's 1 s.
    // A command too long to report is refused unread (its report, challenge included, never shows).
    steps.push([prompt, `rm -f ${victim}\r`], ['no-rm(.|\n)*[$#] $', 'reboot\r'], ['agate approve(.|\n)*Agate refused(.|\n)*[$#] $', `source ${big}\r`],
      ['longer than 256 KiB(.|\n)*[$#] $', 'exit\r']);
    const r = await run('python3', [PTY_DRIVE, JSON.stringify(steps), '--', 'sshpass', ...sshArgs(env, 'box', undefined, ['-tt'])], { env: { ...process.env, SSHPASS: await token(env) }, timeoutMs: 60_000 });
    assert.is(r.code, 0, r.stdout + r.stderr);
    assert.ok(existsSync(victim), 'the rm after the attempts did not run');
    assert.not.ok(existsSync(`${victim}.big`), 'the command too long to read did not run');
    assert.not.match(r.stdout, /AGATE1/, 'no report reached the client');
  } finally {
    rmSync(victim, { force: true });
    rmSync(`${victim}.big`, { force: true });
    rmSync(big, { force: true });
  }
  const lines = env.events.slice(since).filter((e): e is Command => e.type === 'Command' && e.attributes.request === 'shell-line');
  const rule = (text: string) => {
    const l = lines.find((c) => c.text === text);
    return l && env.events.find((e): e is Verdict => e.type === 'Verdict' && e.command_id === l.event_id)?.rule_id;
  };
  // eval's script is read as part of its line; a function's body is reported command by command when it runs.
  for (const t of ['trap - DEBUG', "eval 'trap - DEBUG'", 'set +T', 'shopt -u extdebug', 'unset BASH_COMMAND']) assert.is(rule(t), 'agate.shell-hook-tamper', t);
  assert.is(lines.filter((l) => l.text === 'trap - DEBUG').length, 2, 'typed, and inside the function');
  assert.is(rule('exec bash --norc'), 'agate.unparseable');
  assert.is(rule(`rm -f ${victim}`), 'no-rm');
  assert.is(rule('reboot'), 'hold-reboot');
  const unread = lines.find((c) => c.text === '(unreadable captured command)');
  assert.ok(unread, 'the unreadable command is recorded');
  const reboot = lines.find((c) => c.text === 'reboot')!;
  const response = await waitFor(env, (events) => events.find((e): e is Response => e.type === 'Response' && e.command_id === reboot.event_id));
  assert.is(response.status, 'refused');
});

test('captured: lines typed into a nested shell nothing reports on are decided as typed, refused under shell rules (the shell ends); vim gets no keystroke of Agate\'s', async (ctx) => {
  const env = ctx as Env;
  const victim = `/tmp/agate-pty-nested-${process.pid}`;
  const written = `/tmp/agate-pty-vim-${process.pid}`;
  await run('install', ['-o', env.sshd.user, '-m', '644', '/dev/null', victim]);
  const since = env.events.length;
  try {
    const steps = [
      // A nested shell reading the terminal is refused outright...
      ['[$#] $', 'env -i bash\r'],
      // ...one started by a program the policy cannot see into runs, but nothing reports on it. The
      // next line is typed at once (typeahead): it must not go undecided to whatever reads it.
      // (Inline code is opaque to policy: SECURITY.md.) Refused after its keys reached the target,
      // it ends the shell: only the target's terminal decides whether the ^C discards them.
      ['Agate refused[^\n]*(.|\n)*[$#] $', `perl -e 'exec "env", "-i", "bash", "--norc"'\rtouch ${victim}.new; chmod 600 ${victim}\r`],
    ];
    const sshTt = ['--', 'sshpass', ...sshArgs(env, 'box', undefined, ['-tt'])];
    const strict = { ...process.env, TERM: 'xterm', SSHPASS: await token(env, 'repo:acme/strict:ref:refs/heads/main') };
    const ended = await run('python3', [PTY_DRIVE, JSON.stringify(steps), ...sshTt], { env: strict, timeoutMs: 60_000 });
    assert.match(ended.stdout, /Agate refused[^\n]*shell-line-inexact[^\n]*\r\nAgate ended the shell: keys of the refused line had already reached it/, ended.stdout + ended.stderr);
    assert.is(ended.code, 255, 'the shell ended without an exit status of its own');
    // A program that reads lines, after the agent printed the alternate-screen switch itself: its
    // Enter is decided, and with shell rules and no rule naming screen-line it ends the shell.
    const fake = [
      ['[$#] $', `printf '\\033[?1049h'; ed -p 'ed> '\r`],
      // After the switch: `ed> ` is also in the echo of the line that starts ed.
      ['\x1b\\[\\?1049h(.|\n)*ed> ', `!rm -f ${victim}\r`],
    ];
    const faked = await run('python3', [PTY_DRIVE, JSON.stringify(fake), ...sshTt], { env: strict, timeoutMs: 60_000 });
    assert.match(faked.stdout, /Agate refused[^\n]*agate\.screen-line[^\n]*\r\nAgate ended the shell/, faked.stdout + faked.stderr);
    assert.ok(existsSync(victim), 'ed ran the refused rm');
    // vim, where a rule names screen-line: it writes a file, keystrokes only its own.
    const vim = [
      ['[$#] $', `vim -u NONE -N ${written}\r`],
      ['\x1b\\[\\?1049h', 'i'],
      ['-- INSERT --', 'hello\x1b:wq\r'],
      ['\x1b\\[\\?1049l(.|\n)*[$#] $', 'exit\r'],
    ];
    const app = { ...process.env, TERM: 'xterm', SSHPASS: await token(env) };
    const r = await run('python3', [PTY_DRIVE, JSON.stringify(vim), '--', 'sshpass', ...sshArgs(env, 'box', undefined, ['-tt'])], { env: app, timeoutMs: 60_000 });
    assert.is(r.code, 0, r.stdout + r.stderr);
    assert.not.ok(existsSync(`${victim}.new`), 'the line typed into the nested shell did not run');
    assert.is(readFileSync(written, 'utf8'), 'hello\n', 'vim got exactly what was typed');
  } finally {
    rmSync(victim, { force: true });
    rmSync(`${victim}.new`, { force: true });
    rmSync(written, { force: true });
  }
  const lines = env.events.slice(since).filter((e): e is Command => e.type === 'Command' && (e.attributes.request === 'shell-line'));
  const typed = lines.find((l) => l.text.startsWith('touch '));
  assert.ok(typed, 'the nested line was recorded');
  assert.is(typed!.attributes.exact, 'false');
  assert.is(env.events.find((e): e is Verdict => e.type === 'Verdict' && e.command_id === typed!.event_id)?.rule_id, 'agate.shell-line-inexact');
  const shellEnd = await waitFor(env, (events) => events.find((e): e is Response => e.type === 'Response' && e.command_id === typed!.attributes.shell_command_id && !(e.command_tag ?? '').startsWith('asciicast')));
  assert.equal([shellEnd.status, shellEnd.error_code], ['error', 'SHELL_LINE_NOT_RETRACTABLE']);
  const nested = lines.find((l) => l.text === 'env -i bash');
  assert.is(env.events.find((e): e is Verdict => e.type === 'Verdict' && e.command_id === nested?.event_id)?.rule_id, 'agate.unparseable');
  assert.ok(lines.some((l) => l.text === `vim -u NONE -N ${written}` && l.attributes.exact === 'true'));
  // Nothing typed inside vim became a line of its own.
  assert.not.ok(lines.some((l) => /hello|:wq/.test(l.text)));
  // Each Enter in a full-screen program is a screen-line of the keys before it.
  // (Waited for: the shell is ended as soon as the refusal is shown, and its events may trail that.)
  const ruleOf = (text: string) => waitFor(env, (events) => {
    const c = events.slice(since).find((e): e is Command => e.type === 'Command' && e.attributes.request === 'screen-line' && e.text === text);
    return events.find((e): e is Verdict => e.type === 'Verdict' && e.command_id === c?.event_id)?.rule_id;
  });
  assert.is(await ruleOf(`!rm -f ${victim}`), 'agate.screen-line');
  assert.is(await ruleOf('ihello^[:wq'), 'screen-lines-for-app');
});

test('exec with a pty (ssh -tt host cmd) runs on a pty on the target; a shell without one (ssh -T) reads its commands from stdin', async (ctx) => {
  const env = ctx as Env;
  const tty = await ssh(env, await token(env), 'box', 'tty', ['-tt']);
  assert.is(tty.code, 0, tty.stderr);
  assert.match(tty.stdout, /^\/dev\/pts\/\d+\r\n$/);
  const { command } = await trail(env, 'tty');
  assert.is(command.attributes.pty, 'true');
  const piped = await run('sshpass', sshArgs(env, 'box', undefined, ['-T']), { env: { ...process.env, SSHPASS: await token(env) }, input: 'echo piped shell\nexit 4\n', timeoutMs: 20_000 });
  assert.is(piped.code, 4, JSON.stringify(piped));
  assert.is(piped.stdout, 'piped shell\n');
  const line = await waitFor(env, (events) => events.find((e): e is Command => e.type === 'Command' && e.text === 'echo piped shell' && e.attributes.request === 'shell-line'));
  assert.is(line.attributes.best_effort, 'true');
});

test('a terminal resize reaches the shell on the target and is recorded', async (ctx) => {
  const env = ctx as Env;
  const steps = [['[$#] $', '@resize 33 101'], ['[$#] $', 'stty size; exit\r']];
  const r = await run('python3', [PTY_DRIVE, JSON.stringify(steps), '--', 'sshpass', ...sshArgs(env, 'box', undefined, ['-tt'])], { env: { ...process.env, SSHPASS: await token(env) }, timeoutMs: 60_000 });
  assert.is(r.code, 0, r.stdout + r.stderr);
  assert.match(r.stdout, /\r\n?33 101\r\n/);
  const resized = await waitFor(env, (events) => events.find((e): e is Response => e.type === 'Response' && (e.command_tag ?? '').startsWith('asciicast') && e.sample.some(([, code, data]) => code === 'r' && data === '101x33')));
  assert.ok(resized);
});

test('a token typed or printed in a shell is masked in the recording', async (ctx) => {
  const env = ctx as Env;
  const secret = 'ghp_' + 'A1b2C3d4E5f6G7h8I9j0K1l2M3n4O5p6Q7r8';
  const steps = [['[$#] $', `echo ${secret}; exit\r`]];
  const r = await run('python3', [PTY_DRIVE, JSON.stringify(steps), '--', 'sshpass', ...sshArgs(env, 'box', undefined, ['-tt'])], { env: { ...process.env, SSHPASS: await token(env) }, timeoutMs: 60_000 });
  assert.is(r.code, 0, r.stdout + r.stderr);
  assert.ok(r.stdout.includes(secret), 'the client itself sees its output');
  // The shell's final Response comes after every part of its recording.
  const shells = () => new Set(env.events.filter((e) => e.type === 'Command' && e.text === 'shell').map((e) => e.event_id));
  await waitFor(env, (events) => (events.filter((e) => e.type === 'Response' && e.command_tag === 'exit-status 0' && shells().has(e.command_id)).length >= 2 ? true : undefined));
  const recorded = JSON.stringify(env.events);
  assert.not.ok(recorded.includes(secret), 'the token never reaches the bus');
  assert.ok(recorded.includes('[masked:'), 'the recording says what was masked');
});

test('interactive shells are refused to an identity the policy denies, and port forwarding is refused', async (ctx) => {
  const env = ctx as Env;
  const shell = await ssh(env, await token(env, 'repo:acme/untrusted:ref:refs/heads/main'), 'box', undefined, ['-T']);
  assert.is(shell.code, 126);
  assert.match(shell.stderr, /rule "no-shell-for-untrusted": interactive shells need a trusted identity/);
  const refusedShell = await waitFor(env, (events) => events.find((e): e is Command => e.type === 'Command' && e.text === 'shell' && e.identity.subject.startsWith('repo:acme/untrusted')));
  const { response } = await waitFor(env, (events) => {
    const response = events.find((e): e is Response => e.type === 'Response' && e.command_id === refusedShell.event_id);
    return response === undefined ? undefined : { response };
  });
  assert.is(response.status, 'refused');
  const forward = await ssh(env, await token(env), 'box', 'echo forwarded', ['-o', 'ExitOnForwardFailure=yes', '-R', '0:127.0.0.1:9']);
  assert.is(forward.code, 255);
  assert.match(forward.stderr, /forwarding failed/i);
  const { remote, remoteVerdict } = await waitFor(env, (events) => {
    const command = events.find((e): e is Command => e.type === 'Command' && e.attributes.request === 'tcpip-forward' && e.identity.subject.startsWith('repo:acme/app'));
    const response = command && events.find((e): e is Response => e.type === 'Response' && e.command_id === command.event_id);
    const verdict = command && events.find((e): e is Verdict => e.type === 'Verdict' && e.command_id === command.event_id);
    return response && verdict ? { remote: response, remoteVerdict: verdict } : undefined;
  });
  assert.is(remote.status, 'refused');
  // The recorded verdict is the refusal that was enforced, not the policy default's allow.
  assert.is(remoteVerdict.decision, 'deny');
  assert.is(remoteVerdict.rule_id, 'agate.forwarding-needs-rule');
  assert.match(remote.error_message ?? '', /remote port forwarding \(-R\) needs a policy rule that allows it/);
});

/** Connects to a local port until it listens, and returns what it sends first (or '' when it closes). */
async function firstBytes(port: number): Promise<string> {
  const deadline = Date.now() + 30_000;
  for (;;) {
    const got = await new Promise<string | undefined>((resolve) => {
      const s = connect(port, '127.0.0.1');
      let data = '';
      s.on('data', (d: Buffer) => {
        data += d.toString('latin1');
        if (data.includes('\n')) s.destroy();
      });
      s.on('error', () => resolve(undefined));
      s.on('close', (hadError) => resolve(hadError && data === '' ? undefined : data));
      s.setTimeout(5000, () => s.destroy());
    });
    if (got !== undefined) return got;
    if (Date.now() > deadline) assert.unreachable(`nothing listened on ${port}`);
    await new Promise((r) => setTimeout(r, 100));
  }
}

test('ssh -L: a tunnel opens only for an identity a rule allows it to; refusals are recorded', async (ctx) => {
  const env = ctx as Env;
  for (const [sub, allowed] of [['repo:acme/app:ref:refs/heads/main', false], ['repo:acme/tunnel:ref:refs/heads/main', true]] as const) {
    const local = await findFreePort();
    const session = ssh(env, await token(env, sub), 'box', 'sleep 4', ['-L', `${local}:127.0.0.1:${env.sshd.port}`]);
    const banner = await firstBytes(local);
    const r = await session;
    const text = `direct-tcpip 127.0.0.1:${env.sshd.port}`;
    const { found, verdict } = await waitFor(env, (events) => {
      const command = events.find((e): e is Command => e.type === 'Command' && e.text === text && e.identity.subject === sub);
      const response = command && events.find((e): e is Response => e.type === 'Response' && e.command_id === command.event_id);
      const v = command && events.find((e): e is Verdict => e.type === 'Verdict' && e.command_id === command.event_id);
      return response === undefined || v === undefined ? undefined : { found: response, verdict: v };
    });
    assert.is(verdict.decision, allowed ? 'allow' : 'deny', 'the recorded verdict is the enforced one');
    if (allowed) {
      assert.match(banner, /^SSH-2\.0-OpenSSH/, 'the target\'s sshd answered through the tunnel');
      assert.is(found.status, 'ok');
      assert.match(found.command_tag ?? '', /^forwarded \d+ bytes up, \d+ bytes down$/);
    } else {
      assert.is(banner, '', 'the tunnel closed without a byte');
      assert.is(r.code, 0, 'the session itself goes on');
      assert.is(found.status, 'refused');
      assert.match(found.error_message ?? '', /port forwarding needs a policy rule that allows it/);
    }
  }
});

test('ssh -A: agent forwarding is refused and recorded; the remote side gets no agent socket', async (ctx) => {
  const env = ctx as Env;
  const sock = join(env.dir, `agent-${process.pid}.sock`);
  const agent = await run('ssh-agent', ['-a', sock]);
  assert.is(agent.code, 0, agent.stderr);
  const pid = /SSH_AGENT_PID=(\d+)/.exec(agent.stdout)![1]!;
  try {
    const r = await run('sshpass', sshArgs(env, 'box', 'echo "agent:$SSH_AUTH_SOCK"', ['-A']), { env: { ...process.env, SSHPASS: await token(env), SSH_AUTH_SOCK: sock }, timeoutMs: 20_000 });
    assert.is(r.code, 0, r.stderr);
    assert.is(r.stdout, 'agent:\n');
    const { response, verdict } = await trail(env, 'auth-agent');
    assert.is(response.status, 'refused');
    assert.is(verdict?.decision, 'deny');
    assert.is(verdict?.rule_id, 'agate.forwarding-needs-rule');
    assert.match(response.error_message ?? '', /agent forwarding \(-A\) needs a policy rule that allows it/);
  } finally {
    process.kill(Number(pid));
  }
});

/** A TCP echo server on a free loopback port (the service on the client's side of a -R). */
async function echoServer(): Promise<{ server: Server; port: number }> {
  const server = createServer((socket) => socket.pipe(socket));
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  return { server, port: (server.address() as { port: number }).port };
}

/** Sends a line to a port until something listens there, and returns what comes back before it closes. */
async function echoed(port: number, line: string): Promise<string> {
  const deadline = Date.now() + 30_000;
  for (;;) {
    const got = await new Promise<string | undefined>((resolve) => {
      const s = connect(port, '127.0.0.1', () => s.write(line));
      let data = '';
      s.on('data', (d: Buffer) => {
        data += d.toString('latin1');
        if (data.length >= line.length) s.end();
      });
      s.on('error', () => resolve(undefined));
      s.on('close', () => resolve(data));
      s.setTimeout(5000, () => s.destroy());
    });
    if (got !== undefined) return got;
    if (Date.now() > deadline) assert.unreachable(`nothing listened on ${port}`);
    await new Promise((r) => setTimeout(r, 100));
  }
}

/** Whether anything accepts a TCP connection on a loopback port. */
function listening(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const s = connect(port, '127.0.0.1', () => {
      s.destroy();
      resolve(true);
    });
    s.on('error', () => resolve(false));
  });
}

/** Waits until nothing listens on a loopback port (the target closes a listener asynchronously); false if something still does after 20 s. */
async function stopsListening(port: number): Promise<boolean> {
  const deadline = Date.now() + 20_000;
  while (await listening(port)) {
    if (Date.now() > deadline) return false;
    await new Promise((r) => setTimeout(r, 50));
  }
  return true;
}

const TUNNELER = 'repo:acme/tunnel:ref:refs/heads/main';

test('ssh -R with a rule: the target listens, a connection made there reaches the client side, each is recorded; the listener goes with the session', async (ctx) => {
  const env = ctx as Env;
  const { server, port: local } = await echoServer();
  try {
    const remote = await findFreePort();
    const session = ssh(env, await token(env, TUNNELER), 'box', 'sleep 3', ['-o', 'ExitOnForwardFailure=yes', '-R', `127.0.0.1:${remote}:127.0.0.1:${local}`]);
    const line = 'ping through -R\n';
    assert.is(await echoed(remote, line), line, 'the echo server on the client side answered through the target\'s listener');
    const r = await session;
    assert.is(r.code, 0, JSON.stringify(r));
    const bind = await trail(env, `tcpip-forward 127.0.0.1:${remote}`);
    assert.is(bind.command.attributes.request, 'tcpip-forward');
    assert.is(bind.command.attributes.path, `127.0.0.1:${remote}`);
    assert.is(bind.verdict?.rule_id, 'remote-for-tunnelers');
    assert.is(bind.response.status, 'ok');
    assert.is(bind.response.command_tag, `listening on 127.0.0.1:${remote} on the target`);
    const connection = await waitFor(env, (events) => {
      const command = events.find((e): e is Command => e.type === 'Command' && e.attributes.channel === 'forwarded-tcpip' && e.attributes.path === `127.0.0.1:${remote}`);
      const response = command && events.find((e): e is Response => e.type === 'Response' && e.command_id === command.event_id);
      return response && { command, response };
    });
    assert.match(connection.command.text, new RegExp(`^forwarded-tcpip 127\\.0\\.0\\.1:${remote} from 127\\.0\\.0\\.1:\\d+$`));
    assert.is(connection.command.attributes.forward_command_id, bind.command.event_id);
    assert.is(connection.response.status, 'ok');
    // Up is what the client's side sent back (the echo), down what the target's side sent.
    assert.is(connection.response.command_tag, `forwarded ${line.length} bytes up, ${line.length} bytes down`);
    await waitFor(env, (events) => events.find((e) => e.type === 'SessionClosed' && e.session_id === bind.command.session_id));
    assert.ok(await stopsListening(remote), 'the target stopped listening when the session ended');
  } finally {
    server.close();
  }
});

test('ssh -R cancelled by the client: the target stops listening and the cancel is recorded', async (ctx) => {
  const env = ctx as Env;
  const client = new ssh2.Client();
  await new Promise<void>((resolve, reject) => {
    client.once('ready', () => resolve()).once('error', reject);
    client.on('keyboard-interactive', (_n, _i, _l, _p, finish) => void token(env, TUNNELER).then((t) => finish([t])));
    client.connect({ host: '127.0.0.1', port: env.port, username: 'box', tryKeyboard: true });
  });
  try {
    // Port 0: the target chooses, and the client is told which.
    const bound = await new Promise<number>((resolve, reject) => client.forwardIn('127.0.0.1', 0, (err, port) => (err ? reject(err) : resolve(port))));
    assert.ok(bound > 0);
    assert.ok(await listening(bound), 'the target listens on the port it reported');
    await new Promise<void>((resolve, reject) => client.unforwardIn('127.0.0.1', bound, (err) => (err ? reject(err) : resolve())));
    assert.ok(await stopsListening(bound), 'the target stopped listening');
    const cancel = await trail(env, 'cancel-tcpip-forward 127.0.0.1:0');
    assert.is(cancel.command.attributes.cancel, 'true');
    assert.is(cancel.response.status, 'ok');
    assert.is(cancel.response.command_tag, `stopped listening on 127.0.0.1:${bound}`);
  } finally {
    client.end();
  }
});

test('ssh -A with a rule: a program on the target uses the client\'s agent; each use is recorded with its bytes; without the rule it has none', async (ctx) => {
  const env = ctx as Env;
  const sock = join(env.dir, `agent-allowed-${process.pid}.sock`);
  const agent = await run('ssh-agent', ['-a', sock]);
  assert.is(agent.code, 0, agent.stderr);
  const pid = /SSH_AGENT_PID=(\d+)/.exec(agent.stdout)![1]!;
  try {
    const pub = await sshKeygen(env.dir, 'agent-held');
    const agentEnv = { ...process.env, SSH_AUTH_SOCK: sock };
    const added = await run('ssh-add', [pub.replace(/\.pub$/, '')], { env: agentEnv });
    assert.is(added.code, 0, added.stderr);
    const fp = (await run('ssh-keygen', ['-lf', pub])).stdout.split(' ')[1]!;
    assert.match(fp, /^SHA256:/);

    const allowed = await run('sshpass', sshArgs(env, 'box', 'ssh-add -l', ['-A']), { env: { ...agentEnv, SSHPASS: await token(env, TUNNELER) }, timeoutMs: 20_000 });
    assert.is(allowed.code, 0, allowed.stderr);
    assert.ok(allowed.stdout.includes(fp), `the target lists the client's key: ${allowed.stdout}`);
    const request = await waitFor(env, (events) => events.find((e): e is Command => e.type === 'Command' && e.text === 'auth-agent' && e.identity.subject === TUNNELER));
    const granted = await waitFor(env, (events) => events.find((e): e is Response => e.type === 'Response' && e.command_id === request.event_id));
    assert.is(granted.status, 'ok');
    assert.is(granted.command_tag, 'agent forwarding granted');
    const use = await waitFor(env, (events) => {
      const command = events.find((e): e is Command => e.type === 'Command' && e.text === 'auth-agent channel' && e.attributes.agent_request_id === request.event_id);
      const response = command && events.find((e): e is Response => e.type === 'Response' && e.command_id === command.event_id);
      const verdict = command && events.find((e): e is Verdict => e.type === 'Verdict' && e.command_id === command.event_id);
      return response && { command, response, verdict };
    });
    assert.is(use.command.attributes.request, 'auth-agent');
    assert.is(use.verdict?.rule_id, 'agent-for-tunnelers');
    assert.is(use.response.status, 'ok');
    // ssh-add -l: one request down, an answer carrying the public key up.
    const [, up, down] = /^agent (\d+) bytes up, (\d+) bytes down$/.exec(use.response.command_tag ?? '') ?? [];
    assert.ok(Number(down) > 0 && Number(up) > Number(down), use.response.command_tag ?? '');

    const refused = await run('sshpass', sshArgs(env, 'box', 'ssh-add -l', ['-A']), { env: { ...agentEnv, SSHPASS: await token(env) }, timeoutMs: 20_000 });
    assert.is(refused.code, 2, 'ssh-add finds no agent on the target');
    assert.not.ok(refused.stdout.includes(fp));
    const denied = await waitFor(env, (events) => {
      const command = events.find((e): e is Command => e.type === 'Command' && e.text === 'auth-agent' && e.session_id !== request.session_id && e.identity.subject.startsWith('repo:acme/app') && events.some((x) => x.type === 'Command' && x.session_id === e.session_id && x.text === 'ssh-add -l'));
      return command && events.find((e): e is Response => e.type === 'Response' && e.command_id === command.event_id);
    });
    assert.is(denied.status, 'refused');
  } finally {
    process.kill(Number(pid));
  }
});

test('a token longer than the ssh client sends as a password: password login records why, keyboard-interactive takes it in parts', async (ctx) => {
  const env = ctx as Env;
  const long = await env.issuer.mint({ sub: 'repo:acme/long-token:ref:refs/heads/main', repository: 'acme/app', padding: 'p'.repeat(1200) }, { alg: 'ES256' });
  assert.ok(long.length > 1100 && long.length < 2046, `token of ${long.length} characters`);
  const askpass = join(env.dir, 'askpass-parts.sh');
  // An askpass program answers each prompt with the next 1023 characters of the token.
  writeFileSync(askpass, `#!/bin/sh\ncase "$1" in *"part 2"*) printf '%s\\n' "$PART2" ;; *) printf '%s\\n' "$PART1" ;; esac\n`, { mode: 0o700 });
  const plain = (method: string) => run('/usr/bin/ssh', [
    '-p', String(env.port), '-o', 'StrictHostKeyChecking=no', '-o', 'UserKnownHostsFile=/dev/null', '-o', 'LogLevel=ERROR', '-o', `PreferredAuthentications=${method}`,
    '-o', 'PubkeyAuthentication=no', '-o', 'NumberOfPasswordPrompts=1', 'box@127.0.0.1', 'echo long token ok',
  ], { env: { ...process.env, SSH_ASKPASS: askpass, SSH_ASKPASS_REQUIRE: 'force', DISPLAY: ':0', PART1: long.slice(0, 1023), PART2: long.slice(1023) }, timeoutMs: 20_000 });
  const viaPassword = await plain('password');
  assert.is(viaPassword.code, 255);
  const failed = await waitFor(env, (events) => events.find((e): e is AuthenticationFailed => e.type === 'AuthenticationFailed' && /probably cut/.test(e.message)));
  assert.match(failed.message, /the token is 1023 characters, the most the OpenSSH client sends as a password, so it was probably cut: log in with keyboard-interactive/);
  const viaKbd = await plain('keyboard-interactive');
  assert.is(viaKbd.code, 0, viaKbd.stderr);
  assert.is(viaKbd.stdout, 'long token ok\n');
  const { command } = await trail(env, 'echo long token ok');
  assert.is(command.identity.subject, 'repo:acme/long-token:ref:refs/heads/main');
});

test('a client that never logs in is disconnected at the login deadline; channels per connection are capped', async (ctx) => {
  const env = ctx as Env;
  const logins = { pending: new PendingLogins({ timeoutMs: 300, maxPending: 8 }), throttle: env.proxyOptions.logins.throttle };
  const small = new SshProxyServer({ ...env.proxyOptions, logins, maxChannels: 2 });
  const port = (await small.listen('127.0.0.1', 0)).port;
  try {
    // A raw TCP client that sends its banner and then nothing.
    const closed = await new Promise<number>((resolve) => {
      const started = Date.now();
      const s = connect(port, '127.0.0.1', () => s.write('SSH-2.0-Idle\r\n'));
      s.on('data', () => undefined);
      s.on('error', () => undefined);
      s.on('close', () => resolve(Date.now() - started));
    });
    assert.ok(closed < 5000, `closed after ${closed} ms`);
    const timedOut = await waitFor(env, (events) => events.find((e): e is AuthenticationFailed => e.type === 'AuthenticationFailed' && e.reason_code === 'AUTH_TIMEOUT'));
    assert.match(timedOut.message, /no login within 300 ms/);
    // Three session channels on one connection: the third is refused while two are open.
    const client = new ssh2.Client();
    await new Promise<void>((resolve, reject) => {
      client.once('ready', () => resolve()).once('error', reject);
      client.connect({ host: '127.0.0.1', port, username: 'box', password: undefined, tryKeyboard: true });
      client.on('keyboard-interactive', (_n, _i, _l, _p, finish) => void token(env).then((t) => finish([t])));
    });
    const exec = (cmd: string) => new Promise<string>((resolve) => {
      client.exec(cmd, (err, stream) => {
        if (err) return resolve(`refused: ${err.message}`);
        let out = '';
        stream.on('data', (d: Buffer) => (out += d.toString())).on('close', () => resolve(out));
      });
    });
    const first = exec('sleep 1; echo one');
    const second = exec('sleep 1; echo two');
    await new Promise((r) => setTimeout(r, 300));
    const third = await exec('echo three');
    assert.match(third, /^refused: /);
    assert.equal(await Promise.all([first, second]), ['one\n', 'two\n']);
    assert.is(await exec('echo again'), 'again\n', 'a slot frees when a channel closes');
    client.end();
  } finally {
    await small.shutdown();
  }
});

test('300 idle sockets (no version line) hold no slot an agent needs: it logs in and runs a command; evictions and the throttle are recorded', async (ctx) => {
  const env = ctx as Env;
  const throttle = new LoginThrottle({ maxFailures: 20, windowMs: 60_000, blockMs: 10_000, maxBlockMs: 60_000 });
  const logins = { pending: new PendingLogins({ timeoutMs: 5000, maxPending: 8 }), throttle };
  const guarded = new SshProxyServer({ ...env.proxyOptions, logins, maxConnections: 4 });
  const port = (await guarded.listen('127.0.0.1', 0)).port;
  // From another address: the flood's evictions count against 127.0.0.3, which is soon throttled.
  const idle = await Promise.all(Array.from({ length: 300 }, () => new Promise<ReturnType<typeof connect>>((resolve) => {
    const s = connect({ port, host: '127.0.0.1', localAddress: '127.0.0.3' }, () => resolve(s));
    s.on('error', () => undefined);
  })));
  try {
    const client = new ssh2.Client();
    await new Promise<void>((resolve, reject) => {
      client.once('ready', () => resolve()).once('error', reject).once('close', () => reject(new Error('closed before login')));
      client.connect({ host: '127.0.0.1', port, username: 'box', tryKeyboard: true, readyTimeout: 10_000 });
      client.on('keyboard-interactive', (_n, _i, _l, _p, finish) => void token(env).then((t) => finish([t])));
    });
    const out = await new Promise<string>((resolve, reject) => client.exec('echo past the flood', (err, stream) => {
      if (err) return reject(err);
      let text = '';
      stream.on('data', (d: Buffer) => (text += d.toString())).on('close', () => resolve(text));
    }));
    assert.is(out, 'past the flood\n');
    client.end();
    assert.ok(logins.pending.size <= 8);
    const evicted = await waitFor(env, (events) => events.find((e): e is AuthenticationFailed => e.type === 'AuthenticationFailed' && e.reason_code === 'AUTH_EVICTED'));
    assert.match(evicted.message, /max_pending: 8/);
    assert.match(evicted.client_address, /^127\.0\.0\.3:/);
    const throttled = await waitFor(env, (events) => events.find((e): e is AuthenticationFailed => e.type === 'AuthenticationFailed' && e.reason_code === 'AUTH_THROTTLED'));
    assert.match(throttled.client_address, /^127\.0\.0\.3:/);
    assert.is(env.events.filter((e) => e.type === 'AuthenticationFailed' && e.reason_code === 'AUTH_THROTTLED').length, 1, 'recorded once per block');
  } finally {
    for (const s of idle) s.destroy();
    await guarded.shutdown();
  }
});

// Last: it stops the policy service.
test('without a verdict a command is refused (fail closed), and the deadline verdict is recorded', async (ctx) => {
  const env = ctx as Env;
  await env.policy.stop();
  const r = await ssh(env, await token(env), 'box', 'echo too late');
  assert.is(r.code, 126);
  assert.match(r.stderr, new RegExp(`no verdict within ${VERDICT_TIMEOUT_MS} ms; refused \\(fail closed\\)`));
  assert.is(r.stdout, '');
  const { verdict, response } = await trail(env, 'echo too late');
  assert.is(verdict?.source, 'deadline');
  assert.is(verdict?.decision, 'deny');
  assert.is(response.status, 'refused');
});

test.run();

// A hostile agent with a valid token against the SSH proxy: each test tries to do what the policy
// below forbids — delete a file, read a secret, write under a locked directory, tunnel to the
// target's own services — through a door other than the obvious one (other spellings of the
// command, the session's input as a script, file transfer over exec, path and address spellings,
// symlinks, requests Agate cannot audit, channels racing). The independent witnesses are the
// files on the target's disk and a TCP listener that counts who reached it. Real sshd, real
// OpenSSH client (ssh, sftp, scp), and ssh2 as a raw client where OpenSSH cannot send the bytes.
import { suite } from '../harness/suite.js';
import * as assert from 'uvu/assert';
import { existsSync, readFileSync, writeFileSync } from 'node:fs';
import { createServer, type Server } from 'node:net';
import { join } from 'node:path';
import { packageRoot } from '../../core/src/package-root.js';
import type { Command, SessionClosed, Verdict } from '../../schemas/src/events.js';
import { run, type RunResult } from '../harness/proc.js';
import { sshPolicy, SSH_CLIENT_OPTIONS, rawClient, rawExec, rawSubsystem, sshdUserDir, startSshProxy, stopSshProxy, type SshEnv, recorded } from './ssh-fixture.js';

const POLICY = sshPolicy(`    - id: no-shells
      action: deny
      message: interactive sessions need a trusted identity
      match: { protocols: [ssh], claims: { sub: 'repo:acme/untrusted*' }, ssh: { requests: [shell] } }
    - id: secrets-unread
      action: deny
      message: the secrets are not read by agents
      match: { protocols: [ssh], ssh: { operations: [read], paths: ['/tmp/agate-hostile-secret-*'] } }
    - id: locked-dir
      action: deny
      message: the locked directory is read-only
      match: { protocols: [ssh], ssh: { operations: [write, remove, rename, mkdir, rmdir, setstat, symlink], paths: ['/tmp/agate-hostile-locked-*'] } }
    - id: no-loopback-tunnels
      action: deny
      message: tunnels to the target's own services are not allowed
      match: { protocols: [ssh], ssh: { requests: [direct-tcpip], paths: ['127.0.0.1:*', '::1:*'] } }
    - id: tunnels
      action: allow
      match: { protocols: [ssh], ssh: { requests: [direct-tcpip] } }
`);

interface Env extends SshEnv {
  /** Owned by the sshd user: a file there must survive, one under `locked` must never appear. */
  open: string;
  locked: string;
  secret: string;
}

const SECRET = 'hostile-secret-canary';

const test = suite<Partial<Env>>('e2e/ssh hostile agent');

test.before(async (ctx) => {
  await startSshProxy(ctx, {
    configYaml: POLICY, name: 'ssh-hostile', verdictTimeoutMs: 5000, types: ['Command', 'Verdict', 'Response', 'SessionClosed'],
    prepare: async ({ sshd }) => {
      ctx.open = await sshdUserDir(sshd, 'agate-hostile-open-');
      ctx.locked = await sshdUserDir(sshd, 'agate-hostile-locked-');
      ctx.secret = await sshdUserDir(sshd, 'agate-hostile-secret-');
      writeFileSync(join(ctx.secret, 'key'), SECRET, { mode: 0o644 });
      writeFileSync(join(ctx.locked, 'keep.txt'), 'keep me', { mode: 0o644 });
    },
  });
});

test.after(async (ctx) => stopSshProxy(ctx, [ctx.open, ctx.locked, ctx.secret]));

/** A file the sshd user owns, for a command to try to delete. */
async function victim(env: Env, name: string): Promise<string> {
  const file = join(env.open, name);
  assert.is((await run('install', ['-o', env.sshd.user, '-m', '644', '/dev/null', file])).code, 0);
  return file;
}

async function token(env: Env, sub = 'repo:acme/app:ref:refs/heads/main'): Promise<string> {
  return env.issuer.mint({ sub, repository: 'acme/app' }, { alg: 'ES256' });
}

/** The real ssh client through the proxy; the token travels in SSHPASS. */
async function ssh(env: Env, command: string | undefined, extra: string[] = [], input?: string, sub?: string): Promise<RunResult> {
  const args = ['-e', '/usr/bin/ssh', '-p', String(env.port), ...SSH_CLIENT_OPTIONS, ...extra, 'box@127.0.0.1', ...(command === undefined ? [] : [command])];
  return run('sshpass', args, { env: { ...process.env, SSHPASS: await token(env, sub) }, timeoutMs: 20_000, input });
}

/** The real sftp client in batch mode through the proxy. */
async function sftpBatch(env: Env, batch: string, extra: string[] = []): Promise<RunResult> {
  const file = join(env.dir, `batch-${Math.random().toString(36).slice(2)}`);
  writeFileSync(file, batch);
  // BatchMode=no before -b: ssh takes an option's first value, and -b would forbid the password.
  return run('sshpass', ['-e', '/usr/bin/sftp', '-o', 'BatchMode=no', '-b', file, '-P', String(env.port), ...SSH_CLIENT_OPTIONS, ...extra, 'box@127.0.0.1'],
    { env: { ...process.env, SSHPASS: await token(env) }, timeoutMs: 30_000 });
}

/** The real scp client through the proxy; `-O` speaks the legacy protocol (`scp -t`/`-f` run over exec). */
async function scp(env: Env, args: string[]): Promise<RunResult> {
  return run('sshpass', ['-e', '/usr/bin/scp', '-P', String(env.port), ...SSH_CLIENT_OPTIONS, ...args], { env: { ...process.env, SSHPASS: await token(env) }, timeoutMs: 30_000 });
}
test('other spellings of a denied rm are refused, and the file is still on disk', async (ctx) => {
  const env = ctx as Env;
  const v = await victim(env, 'spelled');
  const attempts: Array<[string, string?]> = [
    [`rm -f ${v}`], [`r''m -f ${v}`], [`"r"m -f ${v}`], [`\\rm -f ${v}`], [`$'\\x72m' -f ${v}`], [`$'\\162\\155' -f ${v}`], [`/usr/bin/../bin/rm -f ${v}`],
    [`x=rm; $x -f ${v}`], [`\`echo rm\` -f ${v}`], [`$(printf rm) -f ${v}`], [`{rm,-f,${v}}`], [`eval "rm -f ${v}"`], [`eval r''m -f ${v}`],
    [`sh -c 'rm -f ${v}'`], [`bash -c "bash -c 'rm -f ${v}'"`], [`echo ${Buffer.from(`rm -f ${v}`).toString('base64')} | base64 -d | sh`],
    [`sh <<EOF\nrm -f ${v}\nEOF`], [`bash <<< 'rm -f ${v}'`], [`f() { rm -f ${v}; }; f`], [`alias x='rm -f ${v}'; x`], [`echo ok\nrm -f ${v}`],
    [`env rm -f ${v}`], [`command rm -f ${v}`], [`nice -n 5 rm -f ${v}`], [`timeout 5 rm -f ${v}`], [`echo ${v} | xargs rm -f`], [`find ${v} -delete`],
    [`find ${v} -exec rm -f {} +`], [`trap 'rm -f ${v}' EXIT`], [`echo $(rm -f ${v})`], [`cat <(rm -f ${v})`], [`PATH=/usr/bin rm -f ${v}`],
    // Bypasses this pass found (each ran the rm unseen before its fix).
    [`r\\\nm -f ${v}`], [`coproc rm -f ${v}`], [`setpriv rm -f ${v}`], [`unshare rm -f ${v}`], [`taskset 1 rm -f ${v}`], [`script -qc 'rm -f ${v}' /dev/null`],
    [`sg $(id -gn) -c 'rm -f ${v}'`], [`hash -p /bin/rm ls; ls -f ${v}`],
    ['sh /dev/stdin', `rm -f ${v}\n`], ['. /dev/stdin', `rm -f ${v}\n`], ['bash /proc/self/fd/0', `rm -f ${v}\n`], ['sh < /dev/stdin', `rm -f ${v}\n`],
    ['bash -x /dev/fd/0', `rm -f ${v}\n`], ['sh', `rm -f ${v}\n`], ['bash -s', `rm -f ${v}\n`], ['cat | sh', `rm -f ${v}\n`],
  ];
  for (const [line, input] of attempts) {
    const r = await ssh(env, line, [], input);
    assert.is(r.code, 126, `${JSON.stringify(line)}: ${r.stdout}${r.stderr}`);
    assert.match(r.stderr, /Agate refused/, line);
    assert.ok(existsSync(v), `${JSON.stringify(line)} deleted the file`);
  }
  // The control: the same file can be touched by an allowed command.
  const ok = await ssh(env, `touch ${v} && echo touched`);
  assert.is(ok.stdout, 'touched\n', ok.stderr);
});

test('an exec request longer than the largest SSH packet Agate reads (35,000 bytes) ends the connection, nothing runs, and the session record says why', async (ctx) => {
  const env = ctx as Env;
  const v = await victim(env, 'huge-packet');
  const since = env.events.length;
  // OpenSSH sends packets up to 256 KiB; RFC 4253 asks every implementation to read 35,000.
  const r = await ssh(env, `: ${'x'.repeat(40_000)}; rm -f ${v}`);
  assert.is(r.code, 255, r.stderr);
  assert.ok(existsSync(v), 'the command ran');
  let closed: SessionClosed | undefined;
  for (let i = 0; i < 100 && closed === undefined; i++) {
    // Sessions of earlier tests may close meanwhile: this one is the one that says why.
    closed = env.events.slice(since).find((e): e is SessionClosed => e.type === 'SessionClosed' && e.reason.startsWith('protocol error'));
    if (closed === undefined) await new Promise((res) => setTimeout(res, 100));
  }
  const reasons = env.events.slice(since).filter((e): e is SessionClosed => e.type === 'SessionClosed').map((e) => e.reason);
  assert.ok(closed, `no session closed on the protocol error: ${JSON.stringify(reasons)}`);
  assert.match(closed.reason, /packet .*longer than 35,?000 bytes/, closed.reason);
  assert.is(closed.commands, 0);
  assert.is(env.events.slice(since).filter((e) => e.type === 'Command').length, 0);
});

test('exec text Agate could misread: a NUL byte, a newline, a very long line; requests it cannot audit are refused', async (ctx) => {
  const env = ctx as Env;
  const v = await victim(env, 'raw');
  const conn = await rawClient(env);
  try {
    // (An exec request longer than an SSH packet, ~32 KiB, ends the connection in the transport itself.)
    for (const text of [`echo ok\0; rm -f ${v}`, `echo ok\nrm -f ${v}`, `echo ${'a'.repeat(30_000)}; rm -f ${v}`, `echo ok\r\nrm -f ${v}`]) {
      const r = await rawExec(conn, text);
      assert.is.not(r.code, 0, JSON.stringify(text.slice(0, 40)));
      assert.ok(existsSync(v), `${JSON.stringify(text.slice(0, 40))} deleted the file`);
    }
    // A NUL is refused before policy is asked, with a reason; the connection stays up.
    const nul = await rawExec(conn, 'echo ok\0x');
    assert.is(nul.code, 126);
    assert.match(nul.stderr, /contains a NUL byte/);
    // env (LD_PRELOAD, BASH_ENV) and x11 are refused; the command still runs without them.
    const marker = join(env.open, 'bash-env-ran');
    const bashEnv = join(env.open, 'bash-env');
    writeFileSync(bashEnv, `touch ${marker}\n`, { mode: 0o644 });
    const r = await rawExec(conn, 'bash -c \'echo "[$BASH_ENV][$LD_PRELOAD]"\'', { env: { BASH_ENV: bashEnv, LD_PRELOAD: '/nonexistent.so' }, pty: { term: 'xterm', modes: { ECHO: 0, ICANON: 0 } } });
    assert.is(r.code, 0, r.stderr);
    assert.match(r.stdout, /\[\]\[\]/);
    const x11 = await rawExec(conn, 'echo "[$DISPLAY]"', { x11: true });
    assert.match(x11.stderr, /Unable to request X11/);
    assert.not.ok(existsSync(marker), 'BASH_ENV reached the target');
    // A subsystem other than sftp is refused and recorded.
    const sub = await rawSubsystem(conn, 'netconf');
    assert.match(sub.stderr, /the netconf subsystem is not available through Agate/);
    // Channels racing on one connection: every rm refused, every echo run.
    const race = await Promise.all(Array.from({ length: 12 }, (_, i) => rawExec(conn, i % 2 === 0 ? `r''m -f ${v}` : `echo ${i}`)));
    race.forEach((r, i) => assert.is(r.code, i % 2 === 0 ? 126 : 0, `channel ${i}`));
    assert.ok(existsSync(v), 'a racing channel deleted the file');
  } finally {
    conn.end();
  }
  // keepalive@openssh.com and a window change while a command runs do not disturb the gate.
  const kept = await ssh(env, `sleep 2; rm -f ${v}`, ['-o', 'ServerAliveInterval=1']);
  assert.is(kept.code, 126, kept.stderr);
  assert.ok(existsSync(v));
});

test('file transfer over exec: sftp-server run as a command and legacy scp are decided like sftp', async (ctx) => {
  const env = ctx as Env;
  const local = join(env.dir, 'payload.txt');
  writeFileSync(local, 'payload');
  // `sftp -s PATH` runs the server as an exec command: its file operations must not escape the rules.
  const viaExec = await sftpBatch(env, `put ${local} ${env.locked}/over-exec.txt\n`, ['-s', '/usr/lib/openssh/sftp-server']);
  assert.is.not(viaExec.code, 0, viaExec.stdout);
  assert.not.ok(existsSync(join(env.locked, 'over-exec.txt')), 'sftp-server over exec wrote under the locked directory');
  const legacyPut = await scp(env, ['-O', local, `box@127.0.0.1:${env.locked}/legacy.txt`]);
  assert.is.not(legacyPut.code, 0, legacyPut.stderr);
  assert.not.ok(existsSync(join(env.locked, 'legacy.txt')), 'legacy scp wrote under the locked directory');
  const got = join(env.dir, 'got-key');
  const legacyGet = await scp(env, ['-O', `box@127.0.0.1:${env.secret}/key`, got]);
  assert.is.not(legacyGet.code, 0, legacyGet.stderr);
  assert.not.ok(existsSync(got) && readFileSync(got, 'utf8').includes(SECRET), 'legacy scp read the secret');
  const { verdict } = await recorded(env, (c) => c.text.startsWith('scp') && c.text.includes(env.secret));
  assert.is(verdict?.rule_id, 'secrets-unread');
  // The control: legacy scp into an open directory works and is recorded with the file.
  const fine = await scp(env, ['-O', local, `box@127.0.0.1:${env.open}/legacy.txt`]);
  assert.is(fine.code, 0, fine.stderr);
  assert.is(readFileSync(join(env.open, 'legacy.txt'), 'utf8'), 'payload');
});

test('sftp: `..`, `//` and symlinks do not reach a locked directory or a secret', async (ctx) => {
  const env = ctx as Env;
  const local = join(env.dir, 'up.txt');
  writeFileSync(local, 'up');
  const base = env.locked.slice(env.locked.lastIndexOf('/') + 1);
  for (const path of [`${env.open}/../${base}/dots.txt`, `/${env.locked}/slashes.txt`, `${env.locked}/./dot.txt`]) {
    const r = await sftpBatch(env, `put ${local} ${path}\n`);
    assert.is.not(r.code, 0, path);
    assert.match(r.stderr, /Permission denied/, path);
  }
  // The sftp client makes a relative path absolute from its home: `../../` walks out of it.
  const home = (await run('sh', ['-c', `getent passwd ${env.sshd.user} | cut -d: -f6`])).stdout.trim();
  const up = home.split('/').filter(Boolean).map(() => '..').join('/');
  const rel = await sftpBatch(env, `put ${local} ${up}${env.locked}/relative.txt\n`);
  assert.match(rel.stderr, /Permission denied/);
  // A symlink the agent makes with an allowed command leads into the locked directory and to the secret.
  const made = await ssh(env, `ln -s ${env.locked} ${env.open}/door && ln -s ${env.secret}/key ${env.open}/key-link && echo linked`);
  assert.is(made.stdout, 'linked\n', made.stderr);
  const through = await sftpBatch(env, `put ${local} ${env.open}/door/through-link.txt\n`);
  assert.match(through.stderr, /Permission denied/);
  const rmThrough = await sftpBatch(env, `rm ${env.open}/door/keep.txt\n`);
  assert.match(rmThrough.stderr, /Permission denied/);
  const got = join(env.dir, 'secret-through-link');
  const read = await sftpBatch(env, `get ${env.open}/key-link ${got}\n`);
  assert.match(read.stderr, /Permission denied/);
  const { command, verdict } = await recorded(env, (c) => c.text === `sftp read ${env.open}/key-link`);
  assert.is(verdict?.rule_id, 'secrets-unread');
  assert.is(command.attributes.resolved_path, `${env.secret}/key`, 'the record says where the link led');
  // sftp's own symlink and rename into or out of the locked directory are refused too.
  const ops = await sftpBatch(env, [`-symlink ${env.locked}/keep.txt ${env.open}/ln2`, `-rename ${env.locked}/keep.txt ${env.open}/stolen.txt`, `-put ${local} ${env.open}/x.txt`, `-rename ${env.open}/x.txt ${env.locked}/x.txt`, ''].join('\n'));
  assert.is(ops.code, 0, ops.stderr);
  // The witness: nothing under the locked directory changed; the secret never left the target.
  assert.equal(readFileSync(join(env.locked, 'keep.txt'), 'utf8'), 'keep me');
  for (const f of ['dots.txt', 'slashes.txt', 'dot.txt', 'relative.txt', 'through-link.txt', 'x.txt']) assert.not.ok(existsSync(join(env.locked, f)), f);
  assert.not.ok(existsSync(join(env.open, 'stolen.txt')));
  assert.not.ok(existsSync(got) && readFileSync(got, 'utf8').includes(SECRET), 'the secret was read through a link');
  // The control: writing in the open directory through sftp works.
  const fine = await sftpBatch(env, `put ${local} ${env.open}/fine.txt\n`);
  assert.is(fine.code, 0, fine.stderr);
  assert.ok(existsSync(join(env.open, 'fine.txt')));
});

test('tunnels: every spelling of a denied address is refused; the listener there sees no connection', async (ctx) => {
  const env = ctx as Env;
  const canary = await countingListener('127.0.0.1');
  const allowed = await countingListener('127.0.0.2');
  try {
    const p = canary.port;
    const spellings = [`127.0.0.1:${p}`, `127.1:${p}`, `2130706433:${p}`, `0x7f000001:${p}`, `0177.0.0.1:${p}`, `127.000.000.001:${p}`, `[::ffff:127.0.0.1]:${p}`,
      `localhost:${p}`, `LOCALHOST.:${p}`, `0.0.0.0:${p}`, `0:${p}`];
    for (const where of spellings) {
      const r = await ssh(env, undefined, ['-W', where], 'hello\n');
      assert.is.not(r.code, 0, `${where}: ${r.stdout}`);
    }
    assert.is(canary.connections(), 0, 'a denied spelling reached the listener');
    // The control: a tunnel the policy allows reaches its listener.
    const r = await ssh(env, undefined, ['-W', `127.0.0.2:${allowed.port}`], 'hello\n');
    assert.is(r.code, 0, r.stderr);
    assert.is(allowed.connections(), 1);
    const { command } = await recorded(env, (c) => c.attributes.request === 'direct-tcpip' && c.attributes.client_path === `2130706433:${p}`);
    assert.is(command.attributes.path, `127.0.0.1:${p}`, 'decided on the address the target connects to');
  } finally {
    canary.server.close();
    allowed.server.close();
  }
});

test('interactive programs: a command on a pty is an interactive session, refused where shells are', async (ctx) => {
  const env = ctx as Env;
  const v = await victim(env, 'escaped');
  // An identity without shells would otherwise get one through a program's shell escape (less's `!`).
  const steps = [['(localhost|refused)', `!rm -f ${v}\r`], ['.', 'q']];
  const r = await run('python3', [join(packageRoot(), 'test/harness/pty-drive.py'), JSON.stringify(steps), '--', 'sshpass', '-e', '/usr/bin/ssh', '-tt', '-p', String(env.port), ...SSH_CLIENT_OPTIONS, 'box@127.0.0.1', 'less /etc/hosts'],
    { env: { ...process.env, SSHPASS: await token(env, 'repo:acme/untrusted:ref:refs/heads/main') }, timeoutMs: 60_000 });
  assert.match(r.stdout, /Agate refused the command by rule "no-shells"/);
  assert.ok(existsSync(v), `the escape ran: ${r.stdout}`);
  const { verdict } = await recorded(env, (c) => c.text === 'less /etc/hosts' && c.attributes.pty === 'true');
  assert.is(verdict?.rule_id, 'no-shells');
  // Without a pty the same command is an ordinary exec, decided on its line.
  const plain = await ssh(env, 'head -1 /etc/hosts', [], undefined, 'repo:acme/untrusted:ref:refs/heads/main');
  assert.is(plain.code, 0, plain.stderr);
});

test('captured shell: prompt strings and aliases that would run a denied command do not', async (ctx) => {
  const env = ctx as Env;
  const v = await victim(env, 'prompted');
  const since = env.events.length;
  const prompt = '[$#] $';
  // bash's DEBUG trap also stops before the commands a prompt string's substitutions run: each is reported and refused.
  const attempts = [`alias ll='rm -f ${v}'`, 'll', `PROMPT_COMMAND='rm -f ${v}'`, `PS1='$(rm -f ${v})\\$ '`];
  const steps = attempts.map((a) => [prompt, `${a}\r`]);
  steps.push([prompt, 'exit\r']);
  const r = await run('python3', [join(packageRoot(), 'test/harness/pty-drive.py'), JSON.stringify(steps), '--', 'sshpass', '-e', '/usr/bin/ssh', '-tt', '-p', String(env.port), ...SSH_CLIENT_OPTIONS, 'box@127.0.0.1'],
    { env: { ...process.env, SSHPASS: await token(env) }, timeoutMs: 60_000 });
  assert.is(r.code, 0, r.stdout + r.stderr);
  assert.match(r.stdout, /PROMPT_COMMAND: readonly variable/);
  assert.ok(existsSync(v), `a prompt or alias ran the rm: ${r.stdout}`);
  const reports = env.events.slice(since).filter((e): e is Command => e.type === 'Command' && e.attributes.captured === 'bash');
  const rule = (c: Command | undefined) => env.events.find((e): e is Verdict => e.type === 'Verdict' && e.command_id === c?.event_id)?.rule_id;
  // The alias is refused where it is defined (its text is read as a script); the prompt's substitution as the rm it runs.
  assert.is(rule(reports.find((c) => c.text.startsWith('alias ll='))), 'no-rm');
  assert.is(rule(reports.find((c) => c.text === `rm -f ${v}`)), 'no-rm');
});

/** A TCP listener that counts the connections it accepts (the witness of what a tunnel reached). */
async function countingListener(host: string): Promise<{ server: Server; port: number; connections: () => number }> {
  let count = 0;
  const server = createServer((s) => {
    count += 1;
    s.end('hi\n');
  });
  await new Promise<void>((resolve) => server.listen(0, host, resolve));
  return { server, port: (server.address() as { port: number }).port, connections: () => count };
}

test.run();

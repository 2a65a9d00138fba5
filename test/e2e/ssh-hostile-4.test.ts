// A hostile agent with a valid token against the SSH proxy, fourth pass (ssh-hostile*.test.ts
// have the first three): channel and global requests the earlier passes did not send, and the
// captured shell driven by the real OpenSSH client on a real pty (pty-drive.py). The witnesses
// are independent of Agate: the target's disk, what the client received, and the target's own
// answers.
import { suite } from '../harness/suite.js';
import * as assert from 'uvu/assert';
import { createRequire } from 'node:module';
import ssh2 from 'ssh2';
import type { Command, Verdict } from '../../schemas/src/events.js';
import { chmodSync, existsSync } from 'node:fs';
import { createServer } from 'node:net';
import { join } from 'node:path';
import { packageRoot } from '../../core/src/package-root.js';
import { run, type RunResult } from '../harness/proc.js';
import { sshPolicy, SSH_CLIENT_OPTIONS, rawClient, rawExec, rawShell, sshdUserDir, startSshProxy, stopSshProxy, type SshEnv, recorded } from './ssh-fixture.js';

const POLICY = sshPolicy(`    - { id: cp-needs-approval, action: hold, match: { protocols: [ssh], shell: { commands: [cp] } }, approval: { timeout_s: 60 } }
`);

interface Env extends SshEnv { open: string }
const test = suite<Partial<Env>>('e2e/ssh hostile agent, fourth pass (live)');

test.before(async (ctx) => {
  await startSshProxy(ctx, {
    configYaml: POLICY, name: 'ssh-hostile-4', verdictTimeoutMs: 5000, types: ['Command', 'Verdict', 'Response'],
    prepare: async ({ sshd }) => { ctx.open = await sshdUserDir(sshd, 'agate-hostile4-'); },
  });
});
test.after(async (ctx) => stopSshProxy(ctx, [ctx.open]));

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

// Raw SSH messages (RFC 4254) for requests ssh2 has no method for, sent through its own cipher.
const MSG_GLOBAL_REQUEST = 80;
const MSG_CHANNEL_REQUEST = 98;
const { sendPacket } = createRequire(import.meta.url)('ssh2/lib/protocol/utils.js') as { sendPacket(proto: unknown, packet: Buffer): boolean };

function u32(n: number): Buffer {
  const b = Buffer.alloc(4);
  b.writeUInt32BE(n);
  return b;
}

function sshString(s: string): Buffer {
  return Buffer.concat([u32(Buffer.byteLength(s)), Buffer.from(s)]);
}

function sendRaw(conn: ssh2.Client, payload: Buffer): void {
  const proto = (conn as unknown as { _protocol: { _packetRW: { write: { allocStart: number; alloc(n: number): Buffer; finalize(p: Buffer): Buffer } } } })._protocol;
  const w = proto._packetRW.write;
  const start = w.allocStart;
  const packet = w.alloc(payload.length);
  payload.copy(packet, start);
  sendPacket(proto, w.finalize(packet));
}

/** The real ssh client on a real pty (pty-drive.py) through the proxy, driven by `steps`. */
async function ptySsh(env: Env, steps: string[][]): Promise<RunResult> {
  const password = await env.issuer.mint({ sub: 'repo:acme/app:ref:refs/heads/main', repository: 'acme/app' }, { alg: 'ES256' });
  return run('python3', [join(packageRoot(), 'test/harness/pty-drive.py'), JSON.stringify(steps), '--', 'sshpass', '-e', '/usr/bin/ssh', '-tt',
    '-p', String(env.port), ...SSH_CLIENT_OPTIONS, 'box@127.0.0.1'], { env: { ...process.env, SSHPASS: password }, timeoutMs: 90_000 });
}

test('a multi-line paste interrupted by ^C before its Enter, or a comment line: the next line typed at the prompt is the shell\'s, decided exactly', async (ctx) => {
  const env = ctx as Env;
  const steps = [
    ['[$] $', '@paste \x1b[200~echo pasted-one\recho pasted-two\x1b[201~'],
    ['pasted-two', '\x03'],
    ['\\^C[\\s\\S]*[$] $', 'echo after-$((6*7))\r'],
    // A line that runs nothing (a comment) is reported by the prompt after it, too.
    ['after-42\r\n[\\s\\S]*[$] $', '# only a comment\r'],
    ['comment\r\n[\\s\\S]*[$] $', 'echo again-$((2*4))\r'],
    ['again-8\r\n[\\s\\S]*[$] $', 'exit\r'],
  ];
  const r = await ptySsh(env, steps);
  assert.not.match(r.stdout, /Agate (refused|ended)/, r.stdout);
  assert.is(r.code, 0, r.stdout + r.stderr);
  const { command, verdict } = await recorded(env, (c) => c.text === 'echo after-$((6*7))');
  assert.is(command.attributes.captured, 'bash', 'the line was decided as typed, not as the shell ran it');
  assert.is(verdict?.decision, 'allow');
  assert.is((await recorded(env, (c) => c.text === 'echo again-$((2*4))')).command.attributes.captured, 'bash');
  // Nothing of the interrupted paste ran.
  assert.not.ok(env.events.some((e) => e.type === 'Command' && e.text.includes('pasted-')));
});

test('requests a session channel refuses are recorded: env names on the command that ran without them, x11, and a second program on a busy channel, which never runs', async (ctx) => {
  const env = ctx as Env;
  const marker = join(env.open, 'second-exec-ran');
  const conn = await rawClient(env);
  try {
    const withEnv = await rawExec(conn, 'echo "[$LD_PRELOAD][$BASH_ENV]"', { env: { LD_PRELOAD: '/nonexistent.so', BASH_ENV: '/dev/null' } });
    assert.is(withEnv.stdout, '[][]\n', withEnv.stderr);
    const x11 = await rawExec(conn, 'echo "[$DISPLAY]"', { x11: true });
    assert.match(x11.stderr, /Unable to request X11/);
    // A second exec, a shell and a subsystem on a channel whose command is still running.
    const first = await new Promise<ssh2.ClientChannel>((resolve, reject) => conn.exec('sleep 1; echo first', (err, s) => (err ? reject(err) : resolve(s))));
    const proto = (conn as unknown as { _protocol: { exec(id: number, cmd: string, wantReply: boolean): void; shell(id: number, wantReply: boolean): void; subsystem(id: number, name: string, wantReply: boolean): void } })._protocol;
    const id = (first as unknown as { outgoing: { id: number } }).outgoing.id;
    proto.exec(id, `touch ${marker}`, false);
    proto.shell(id, false);
    proto.subsystem(id, 'sftp', false);
    let out = '';
    first.on('data', (d: Buffer) => (out += d.toString()));
    await new Promise((r) => first.once('close', r));
    assert.is(out, 'first\n', 'the channel ran its first command only');
  } finally {
    conn.end();
  }
  assert.not.ok(existsSync(marker), 'a second exec on a busy channel ran');
  const ran = await recorded(env, (c) => c.text === 'echo "[$LD_PRELOAD][$BASH_ENV]"');
  assert.is(ran.command.attributes.refused_env, 'LD_PRELOAD,BASH_ENV');
  assert.is(ran.response.status, 'ok');
  const x = await recorded(env, (c) => c.attributes.request === 'x11');
  assert.equal([x.verdict?.rule_id, x.response.status], ['agate.refused-unasked', 'refused']);
  for (const text of [`touch ${marker}`, 'shell', '(subsystem sftp)']) {
    const second = await recorded(env, (c) => c.text === text && c.attributes.channel_busy === 'true');
    assert.equal([second.verdict?.rule_id, second.response.status], ['agate.refused-unasked', 'refused'], text);
  }
});

test('unix-socket forwards are refused and recorded: the target\'s socket sees no connection, no socket is made there', async (ctx) => {
  const env = ctx as Env;
  const path = join(env.open, 'target.sock');
  let connections = 0;
  const server = createServer((s) => {
    connections += 1;
    s.destroy();
  });
  await new Promise<void>((r) => server.listen(path, r));
  chmodSync(path, 0o777);
  const remote = join(env.open, 'remote.sock');
  const conn = await rawClient(env);
  try {
    const out = await new Promise<Error | undefined>((r) => conn.openssh_forwardOutStreamLocal(path, (err) => r(err ?? undefined)));
    assert.ok(out, 'a -L to a unix socket opened');
    const into = await new Promise<Error | undefined>((r) => conn.openssh_forwardInStreamLocal(remote, (err) => r(err ?? undefined)));
    assert.ok(into, 'a -R on a unix socket was granted');
  } finally {
    conn.end();
    await new Promise((r) => server.close(r));
  }
  assert.is(connections, 0);
  assert.not.ok(existsSync(remote));
  const l = await recorded(env, (c) => c.text === `direct-streamlocal ${path}`);
  assert.equal([l.command.attributes.request, l.verdict?.rule_id, l.response.status], ['direct-streamlocal', 'agate.refused-unasked', 'refused']);
  const r = await recorded(env, (c) => c.text === `streamlocal-forward ${remote}`);
  assert.equal([r.command.attributes.request, r.verdict?.rule_id, r.response.status], ['streamlocal-forward', 'agate.refused-unasked', 'refused']);
});

test('channel and global requests Agate does not serve are answered with failure and change nothing (a signal name ssh2 cannot send no longer ends the connection); no-more-sessions is kept', async (ctx) => {
  const env = ctx as Env;
  const conn = await rawClient(env);
  try {
    const stream = await new Promise<ssh2.ClientChannel>((resolve, reject) => conn.exec('echo started; sleep 1; echo still-here', (err, s) => (err ? reject(err) : resolve(s))));
    let out = '';
    const started = new Promise<void>((r) => stream.on('data', (d: Buffer) => {
      out += d.toString();
      if (out.startsWith('started')) r();
    }));
    const closed = new Promise((r) => stream.once('close', r));
    await started; // the command runs on the target: a signal would reach it
    const id = (stream as unknown as { outgoing: { id: number } }).outgoing.id;
    const replies = (stream as unknown as { _callbacks: ((failed: boolean) => void)[] })._callbacks;
    const answers: boolean[] = [];
    // break (RFC 4335), OpenSSH's end-of-write and keepalive, an exit-signal from the client, a name nobody knows: each wants a reply.
    for (const [type, extra] of [['break', u32(500)], ['eow@openssh.com', Buffer.alloc(0)], ['keepalive@openssh.com', Buffer.alloc(0)], ['exit-signal', Buffer.concat([sshString('KILL'), Buffer.from([0]), sshString(''), sshString('')])], ['x-agate-probe@example.com', sshString('rm -rf /')]] as const) {
      replies.push((failed) => answers.push(failed));
      sendRaw(conn, Buffer.concat([Buffer.from([MSG_CHANNEL_REQUEST]), u32(id), sshString(type), Buffer.from([1]), extra]));
    }
    // A signal name ssh2 would not send: the command is not disturbed, the connection stays up.
    sendRaw(conn, Buffer.concat([Buffer.from([MSG_CHANNEL_REQUEST]), u32(id), sshString('signal'), Buffer.from([0]), sshString('BOGUS')]));
    // Global requests: OpenSSH's host key proof and a name nobody knows.
    const globals: boolean[] = [];
    const connReplies = (conn as unknown as { _callbacks: ((failed: boolean) => void)[] })._callbacks;
    for (const name of ['hostkeys-prove-00@openssh.com', 'x-agate-probe@example.com']) {
      connReplies.push((failed) => globals.push(failed));
      sendRaw(conn, Buffer.concat([Buffer.from([MSG_GLOBAL_REQUEST]), sshString(name), Buffer.from([1]), sshString('')]));
    }
    await closed;
    assert.is(out, 'started\nstill-here\n');
    assert.equal(answers, [true, true, true, true, true], 'each channel request was answered with failure');
    assert.equal(globals, [true, true], 'each global request was answered with failure');
    const after = await rawExec(conn, 'echo alive');
    assert.is(after.stdout, 'alive\n', after.stderr);
    // no-more-sessions@openssh.com: no session channel opens on this connection after it.
    await new Promise<void>((resolve, reject) => conn.openssh_noMoreSessions((err) => (err ? reject(err) : resolve())));
    const refused = await rawExec(conn, 'echo should-not-run');
    assert.is(refused.code, null);
    assert.match(refused.stderr, /prohibited|failure|refused|denied/i);
  } finally {
    conn.end();
  }
  await sleep(300);
  assert.not.ok(env.events.some((e) => e.type === 'Command' && (e.text === 'echo should-not-run' || e.text.includes('rm -rf /'))));
});

test('probes that held: a signal to a captured shell whose hook waits for a held command makes the hook give up (the command is skipped), never run it', async (ctx) => {
  const env = ctx as Env;
  const v = join(env.open, 'held-copy');
  const conn = await rawClient(env);
  try {
    const shell = await rawShell(conn, { term: 'xterm', cols: 80, rows: 24 });
    await shell.until(/\$ $/);
    shell.type(`cp /etc/hostname ${v}; echo after-held\r`);
    await shell.until(/holding this command for approval/);
    // sshd passes the signal to the shell's process group: bash and its hook, waiting on its FIFO.
    shell.stream.signal('INT');
    await shell.until(/Interrupted system call[^]*\$ /);
    shell.type('echo still-$((1+1))\r');
    await shell.until(/still-2\r\n/);
  } finally {
    conn.end();
  }
  assert.not.ok(existsSync(v), 'the held command ran after a signal');
  assert.not.ok(env.events.some((e) => e.type === 'Command' && e.text === 'echo after-held'), 'the rest of the interrupted line ran');
  const held = env.events.find((e): e is Command => e.type === 'Command' && e.text === `cp /etc/hostname ${v}`);
  assert.ok(held, 'the held command was recorded');
  assert.is(env.events.find((e): e is Verdict => e.type === 'Verdict' && e.command_id === held!.event_id)?.decision, 'hold');
});

test.run();

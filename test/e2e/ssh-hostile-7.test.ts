// A hostile agent with a valid token against the SSH proxy, seventh pass (ssh-hostile*.test.ts
// have the first six): terminal modes the agent changes from inside the captured shell (`stty`),
// so that a program reading the terminal line by line gets lines other than the ones Agate
// rebuilt from the keys. The real OpenSSH client types through the proxy into the real sshd; the
// witnesses are independent of Agate: the target's disk and what the client received.
import { suite } from '../harness/suite.js';
import * as assert from 'uvu/assert';
import { spawn } from 'node:child_process';
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import type ssh2 from 'ssh2';
import type { Command, Verdict } from '../../schemas/src/events.js';
import { run } from '../harness/proc.js';
import { SSH_CLIENT_OPTIONS, rawClient, rawExec, recorded, sshPolicy, sshdUserDir, startSshProxy, stopSshProxy, type SshEnv } from './ssh-fixture.js';

// The operator accepts typed lines as best effort where they run echo: a line is then decided on
// the text rebuilt from the keys, which must be what the program read.
const POLICY = sshPolicy(`    - { id: typed-echo, action: allow, match: { protocols: [ssh], ssh: { requests: [shell-line] }, shell: { commands: [echo] } } }
    # The operator accepts arithmetic on names in echo lines (it may run a substitution unseen).
    - { id: arithmetic-echo, action: allow, match: { protocols: [ssh], shell: { commands: [echo], evaluates_names: true } } }
`);

interface Env extends SshEnv { open: string }
const test = suite<Partial<Env>>('e2e/ssh hostile agent, seventh pass (live)');

test.before(async (ctx) => {
  await startSshProxy(ctx, {
    configYaml: POLICY, name: 'ssh-hostile-7', verdictTimeoutMs: 5000, types: ['Command', 'Verdict', 'Response'],
    prepare: async ({ sshd }) => { ctx.open = await sshdUserDir(sshd, 'agate-hostile7-'); },
  });
});
test.after(async (ctx) => stopSshProxy(ctx, [ctx.open]));

/** A file the sshd user owns, for a command to try to delete. */
async function victim(env: Env, name: string): Promise<string> {
  const file = join(env.open, name);
  assert.is((await run('install', ['-o', env.sshd.user, '-m', '644', '/dev/null', file])).code, 0);
  return file;
}

interface TypedShell {
  type: (keys: string) => void;
  /** Waits until the output since the last call matches `re`; fails after 15 s. */
  until: (re: RegExp) => Promise<void>;
  screen: () => string;
  /** Whether the client exited within `ms`. */
  exited: (ms: number) => Promise<boolean>;
  kill: () => void;
}

/** The real ssh client with a pty on the target (`-tt`), its keys written to its stdin as typed. */
async function typedShell(env: Env): Promise<TypedShell> {
  const token = await env.issuer.mint({ sub: 'repo:acme/app:ref:refs/heads/main', repository: 'acme/app' }, { alg: 'ES256' });
  const child = spawn('sshpass', ['-e', '/usr/bin/ssh', '-tt', '-p', String(env.port), ...SSH_CLIENT_OPTIONS, 'box@127.0.0.1'], { env: { ...process.env, SSHPASS: token } });
  let screen = '';
  let from = 0;
  child.stdout.on('data', (d: Buffer) => (screen += d.toString('latin1')));
  child.stderr.on('data', (d: Buffer) => (screen += d.toString('latin1')));
  const exit = new Promise<boolean>((r) => child.once('exit', () => r(true)));
  return {
    type: (keys) => void child.stdin.write(Buffer.from(keys, 'latin1')),
    until: async (re) => {
      for (const deadline = Date.now() + 15_000; !re.test(screen.slice(from)); await new Promise((r) => setTimeout(r, 50))) {
        if (Date.now() > deadline) assert.unreachable(`the screen never showed ${re}: ${JSON.stringify(screen.slice(-400))}`);
      }
      from = screen.length;
    },
    screen: () => screen,
    exited: (ms) => Promise.race([exit, new Promise<boolean>((r) => setTimeout(() => r(false), ms))]),
    kill: () => void child.kill('SIGKILL'),
  };
}

/** Types `setup` into the captured bash, then `exec sh` from inline code (a shell no hook reports on), then `keys`. */
async function nestedSh(env: Env, setup: string, keys: string): Promise<TypedShell> {
  const shell = await typedShell(env);
  await shell.until(/\$ $/);
  shell.type(`${setup}\r`);
  await shell.until(/\$ $/);
  shell.type(`perl -e 'exec "sh"'\r`);
  await shell.until(/\$ $/);
  shell.type(keys);
  return shell;
}

test('stty eof ^A, then a nested sh: `rm -f f` ^A ^A is a line the kernel hands to sh (it runs it at the EOF); Agate decides it like an Enter and ends the shell', async (ctx) => {
  const env = ctx as Env;
  const file = await victim(env, 'eof');
  const since = env.events.length;
  const shell = await nestedSh(env, `stty eof '^A'`, `rm -f ${file}\x01\x01`);
  try {
    await shell.until(/Agate ended the shell|\$ $/);
    assert.ok(existsSync(file), 'rm ran on a line that no one decided');
    assert.match(shell.screen(), /Agate ended the shell/);
    assert.ok(await shell.exited(10_000), 'the client was not let go');
  } finally {
    shell.kill();
  }
  const line = env.events.slice(since).find((e): e is Command => e.type === 'Command' && e.attributes.best_effort === 'true' && e.text.startsWith(`rm -f ${file}`));
  assert.ok(line, 'the line was not recorded');
  assert.is(env.events.find((e): e is Verdict => e.type === 'Verdict' && e.command_id === line!.event_id)?.decision, 'deny');
});

test('stty kill #, then a nested sh: `echo ok#rm -f f` reads as echo to a tracker that does not know the kill key, while sh gets `rm -f f`; Agate now reads it as edited and refuses it', async (ctx) => {
  const env = ctx as Env;
  const file = await victim(env, 'kill');
  const shell = await nestedSh(env, `stty kill '#'`, `echo ok#rm -f ${file}\r`);
  try {
    await shell.until(/Agate ended the shell|\$ $/);
    assert.ok(existsSync(file), 'rm ran where the record says echo');
    assert.match(shell.screen(), /Agate ended the shell/);
    assert.ok(await shell.exited(10_000), 'the client was not let go');
  } finally {
    shell.kill();
  }
});

test('the control: with the terminal as the tracker knows it, a line typed into the nested sh that the rules allow runs', async (ctx) => {
  const env = ctx as Env;
  const file = join(env.open, 'control');
  const shell = await nestedSh(env, 'true', `echo made > ${file}\r`);
  try {
    await shell.until(/\$ $/);
    shell.type('\x04'); // sh's EOF, then the captured bash's own exit
    await shell.until(/\$ $/);
    shell.type('exit\r');
    assert.ok(await shell.exited(10_000), 'the client did not exit');
  } finally {
    shell.kill();
  }
  assert.ok(existsSync(file), 'the allowed line did not run');
});

test('an env request after the channel\'s program started is refused like one before it, and recorded (before, its name was in no record)', async (ctx) => {
  const env = ctx as Env;
  const conn = await rawClient(env);
  try {
    const stream = await new Promise<ssh2.ClientChannel>((resolve, reject) => conn.exec('echo started; sleep 1; echo "[$LD_PRELOAD]"', (err, s) => (err ? reject(err) : resolve(s))));
    let out = '';
    const started = new Promise<void>((r) => stream.on('data', (d: Buffer) => {
      out += d.toString();
      if (out.startsWith('started')) r();
    }));
    const closed = new Promise((r) => stream.once('close', r));
    await started;
    const id = (stream as unknown as { outgoing: { id: number } }).outgoing.id;
    const replies = (stream as unknown as { _callbacks: ((failed: boolean) => void)[] })._callbacks;
    const answered = new Promise<boolean>((r) => replies.push(r));
    (conn as unknown as { _protocol: { env(id: number, key: string, value: string, wantReply: boolean): void } })._protocol.env(id, 'LD_PRELOAD', '/nonexistent.so', true);
    assert.ok(await answered, 'the env request was answered with failure');
    await closed;
    assert.is(out, 'started\n[]\n');
  } finally {
    conn.end();
  }
  const late = await recorded(env, (c) => c.attributes.request === 'env');
  assert.is(late.command.text, '(env LD_PRELOAD)');
  assert.equal([late.verdict?.rule_id, late.response.status], ['agate.refused-unasked', 'refused']);
});

test('a value bash evaluates as arithmetic runs where an allow rule names evaluates_names, and only for the commands it allows', async (ctx) => {
  const env = ctx as Env;
  const conn = await rawClient(env);
  try {
    const opened = await rawExec(conn, 'echo $((6 * 7 + x))');
    assert.equal([opened.code, opened.stdout], [0, '42\n'], opened.stderr);
    const closed = await rawExec(conn, 'cat /dev/null; echo $((6 * 7 + x))');
    assert.is(closed.code, 126);
    assert.match(closed.stderr, /agate\.unparseable.*evaluates_names/);
  } finally {
    conn.end();
  }
  assert.is((await recorded(env, (c) => c.text === 'echo $((6 * 7 + x))')).verdict?.rule_id, 'arithmetic-echo');
  assert.is((await recorded(env, (c) => c.text === 'cat /dev/null; echo $((6 * 7 + x))')).verdict?.rule_id, 'agate.unparseable');
});

test('keys typed into a full-screen program as it exits reach the shell after it: the Enter that runs them decides them (before, the screen switch dropped them and an empty line ran `rm` undecided)', async (ctx) => {
  const env = ctx as Env;
  const file = await victim(env, 'screen-exit');
  const since = env.events.length;
  const shell = await typedShell(env);
  try {
    await shell.until(/\$ $/);
    // A "full-screen program" that leaves the screen, then a shell no hook reports on reading the terminal.
    shell.type(`printf '\\033[?1049h'; sleep 2; printf '\\033[?1049l'; perl -e 'exec "sh"'\r`);
    await shell.until(/\x1b\[\?1049h/);
    shell.type(`rm -f ${file}`); // typed ahead, into the program's screen: no Enter yet
    await shell.until(/\x1b\[\?1049l/);
    await new Promise((r) => setTimeout(r, 500));
    shell.type('\r');
    await shell.until(/Agate ended the shell|\$ $/);
    assert.ok(existsSync(file), 'rm ran on an Enter no one decided');
    assert.match(shell.screen(), /Agate ended the shell/);
  } finally {
    shell.kill();
  }
  const line = env.events.slice(since).find((e): e is Command => e.type === 'Command' && e.attributes.request === 'shell-line' && e.text === `rm -f ${file}`);
  assert.ok(line, 'the line was not recorded as typed');
  assert.is(env.events.find((e): e is Verdict => e.type === 'Verdict' && e.command_id === line!.event_id)?.decision, 'deny');
});

test('keys typed ahead of a full-screen program\'s switch are decided with the Enter typed into it (before, the switch dropped them from the screen-line)', async (ctx) => {
  const env = ctx as Env;
  const file = await victim(env, 'screen-enter');
  const since = env.events.length;
  const shell = await typedShell(env);
  try {
    await shell.until(/\$ $/);
    // ed reads the keys typed before it started: the whole `!rm -f …` line.
    shell.type(`sleep 1; printf '\\033[?1049h'; ed -p "$(printf 'e%s ' 'd>')"\r!rm -f ${file}`);
    await shell.until(/\x1b\[\?1049h(.|\n)*ed> /);
    shell.type('\r');
    await shell.until(/Agate ended the shell/);
    assert.ok(existsSync(file), 'ed ran the refused rm');
  } finally {
    shell.kill();
  }
  const line = env.events.slice(since).find((e): e is Command => e.type === 'Command' && e.attributes.request === 'screen-line');
  assert.is(line?.text, `!rm -f ${file}`);
  assert.is(env.events.find((e): e is Verdict => e.type === 'Verdict' && e.command_id === line!.event_id)?.rule_id, 'agate.screen-line');
});

test.run();

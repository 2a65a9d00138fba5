// A hostile agent with a valid token against the SSH proxy, sixth pass (ssh-hostile*.test.ts have
// the first five): command lines the shell grammar Agate parses with reads otherwise than bash.
// The witnesses are independent of Agate: the target's disk and what the client received.
import { suite } from '../harness/suite.js';
import * as assert from 'uvu/assert';
import { existsSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import type { Command, Verdict } from '../../schemas/src/events.js';
import { run, type RunResult } from '../harness/proc.js';
import { SSH_CLIENT_OPTIONS, sshPolicy, rawClient, rawShell, sshdUserDir, startSshProxy, stopSshProxy, type SshEnv } from './ssh-fixture.js';

const POLICY = sshPolicy(`    - id: secrets-unread
      action: deny
      match: { protocols: [ssh], ssh: { operations: [read], paths: ['/tmp/agate-hostile6-secret-*'] } }
    - id: kept-unwritten
      action: deny
      match: { protocols: [ssh], ssh: { operations: [write], paths: ['/tmp/agate-hostile6-kept-*'] } }
`);

interface Env extends SshEnv { open: string; secret: string; kept: string }
const test = suite<Partial<Env>>('e2e/ssh hostile agent, sixth pass (live)');

test.before(async (ctx) => {
  await startSshProxy(ctx, {
    configYaml: POLICY, name: 'ssh-hostile-6', verdictTimeoutMs: 5000, types: ['Command', 'Verdict', 'Response'],
    prepare: async ({ sshd }) => {
      ctx.open = await sshdUserDir(sshd, 'agate-hostile6-');
      ctx.secret = await sshdUserDir(sshd, 'agate-hostile6-secret-');
      ctx.kept = await sshdUserDir(sshd, 'agate-hostile6-kept-');
    },
  });
});
test.after(async (ctx) => stopSshProxy(ctx, [ctx.open, ctx.secret, ctx.kept]));

/** A file the sshd user owns, for a command to try to delete. */
async function victim(env: Env, name: string): Promise<string> {
  const file = join(env.open, name);
  assert.is((await run('install', ['-o', env.sshd.user, '-m', '644', '/dev/null', file])).code, 0);
  return file;
}

/** The real ssh client through the proxy; the token travels in SSHPASS. */
async function ssh(env: Env, command: string): Promise<RunResult> {
  const token = await env.issuer.mint({ sub: 'repo:acme/app:ref:refs/heads/main', repository: 'acme/app' }, { alg: 'ES256' });
  return run('sshpass', ['-e', '/usr/bin/ssh', '-p', String(env.port), ...SSH_CLIENT_OPTIONS, 'box@127.0.0.1', command], { env: { ...process.env, SSHPASS: token }, timeoutMs: 20_000 });
}

/** The real sftp client in batch mode through the proxy. */
async function sftpBatch(env: Env, batch: string): Promise<RunResult> {
  const file = join(env.dir, `batch-${Math.random().toString(36).slice(2)}`);
  writeFileSync(file, batch);
  const token = await env.issuer.mint({ sub: 'repo:acme/app:ref:refs/heads/main', repository: 'acme/app' }, { alg: 'ES256' });
  // BatchMode=no before -b: ssh takes an option's first value, and -b would forbid the password.
  return run('sshpass', ['-e', '/usr/bin/sftp', '-o', 'BatchMode=no', '-b', file, '-P', String(env.port), ...SSH_CLIENT_OPTIONS, 'box@127.0.0.1'],
    { env: { ...process.env, SSHPASS: token }, timeoutMs: 30_000 });
}

/** A file the sshd user owns (so the kernel lets it be hard-linked), holding `content`. */
async function owned(env: Env, path: string, content: string): Promise<void> {
  writeFileSync(path, content);
  assert.is((await run('chown', [env.sshd.user, path])).code, 0);
}

/** `line` as a bash script (`bash -c '…'`), single quotes in it escaped. */
const bashC = (line: string) => `bash -c '${line.replace(/'/g, "'\\''")}'`;

/** The verdict recorded for the Command of exactly `text`. */
function verdictOf(env: Env, text: string): Verdict | undefined {
  const command = env.events.find((e): e is Command => e.type === 'Command' && e.text === text);
  return command && env.events.find((e): e is Verdict => e.type === 'Verdict' && e.command_id === command.event_id);
}

test('an escaped blank before a blank (X=\\  rm): bash runs rm with X set to a space; Agate refuses the line it cannot read, and the file stays', async (ctx) => {
  const env = ctx as Env;
  // Before: the grammar took `\ ` for a blank, so `rm` read as X's value and `-f` as the program: allowed, and the file was gone.
  // It takes a CR for a blank too, where bash reads a letter: `echo ok\r#; rm` hid the rm in a comment.
  const v = await victim(env, 'escaped-blank');
  const lines = [`X=\\  rm -f ${v}`, `X=\\\t rm -f ${v}`, `echo ok\r#; rm -f ${v}`, `sh -c 'X=\\  rm -f ${v}'`, `echo $(X=\\  rm -f ${v})`, `true && X=\\  rm -f ${v}`];
  for (const line of lines) {
    const r = await ssh(env, line);
    assert.is(r.code, 126, `${JSON.stringify(line)}: ${r.stdout}${r.stderr}`);
    assert.match(r.stderr, /Agate refused/, line);
    assert.ok(existsSync(v), `${JSON.stringify(line)} deleted the file`);
    assert.is(verdictOf(env, line)?.rule_id, 'agate.unparseable', line);
  }
  // The control: an escaped blank inside a word is read as bash reads it, and an allowed line runs.
  const ok = await ssh(env, `X=a\\ b touch ${v} && echo "[$X]"`);
  assert.is(ok.stdout, '[]\n', ok.stderr);
});

test('the same line typed into the captured shell: its hook reports it exactly, it is refused and does not run', async (ctx) => {
  const env = ctx as Env;
  const v = await victim(env, 'escaped-blank-typed');
  const conn = await rawClient(env);
  try {
    const shell = await rawShell(conn);
    await shell.until(/\$ $/);
    shell.type(`X=\\  rm -f ${v}\r`);
    await shell.until(/Agate refused[^]*\$ $/);
    shell.type('exit\r');
    await shell.closed(5000);
  } finally {
    conn.end();
  }
  assert.ok(existsSync(v), 'the typed line deleted the file');
  const captured = env.events.find((e): e is Command => e.type === 'Command' && e.attributes.captured === 'bash' && e.text.includes(`rm -f ${v}`));
  assert.ok(captured, 'the hook reported the line');
  assert.is(env.events.find((e): e is Verdict => e.type === 'Verdict' && e.command_id === captured!.event_id)?.rule_id, 'agate.unparseable');
});

test('code in a value bash evaluates as arithmetic or as a name (x=\'a[$(rm f)]\'; echo $((x))) is refused; before, rm ran where it was denied', async (ctx) => {
  const env = ctx as Env;
  const v = await victim(env, 'arithmetic');
  const payload = `x='a[$(rm -f ${v})]'`;
  const lines = [
    `${payload}; echo $((x))`, `${payload}; (( x ))`, `${payload}; [[ $x -eq 1 ]]`, `${payload}; let x`, `${payload}; echo \${a[x]}`,
    `${payload}; echo \${!x}`, `${payload}; printf -v "$x" 1`, `${payload}; declare -n r="$x"; echo $r`, `declare -i y; y='a[$(rm -f ${v})]'`,
    `read x < /dev/null; echo $((x))`, `[[ -v 'a[$(rm -f ${v})]' ]]`,
  ];
  // The login shell runs exec lines with dash, which reads no subscript in a value: bash does.
  for (const line of lines.map(bashC)) {
    const r = await ssh(env, line);
    assert.is(r.code, 126, `${JSON.stringify(line)}: ${r.stdout}${r.stderr}`);
    assert.match(r.stderr, /Agate refused/, line);
    assert.ok(existsSync(v), `${JSON.stringify(line)} deleted the file`);
    assert.is(verdictOf(env, line)?.rule_id, 'agate.unparseable', line);
  }
  // The control: arithmetic on numbers alone, and a variable printed (not evaluated), still run.
  const ok = await ssh(env, bashC(`${payload}; echo "$((6*7)) $x" && [[ 1 -lt 2 ]] && echo \${#x}`));
  assert.is(ok.stdout, `42 a[$(rm -f ${v})]\n${`a[$(rm -f ${v})]`.length}\n`, ok.stderr);
  assert.ok(existsSync(v));
});

test('sftp: a hard link or a rename carries a file out of a path no one may read, or into one no one may write; both are refused like the read or write', async (ctx) => {
  const env = ctx as Env;
  const secret = join(env.secret, 'key');
  const moved = join(env.secret, 'moved');
  const kept = join(env.kept, 'config');
  await owned(env, secret, 'secret-canary-1');
  await owned(env, moved, 'secret-canary-2');
  await owned(env, kept, 'kept as it was');
  const local = join(env.dir, 'hostile6-local');
  writeFileSync(local, 'overwritten through a link');
  // Before: `ln` (hardlink@openssh.com) was decided as a link only, so no read or write rule
  // matched; the new name was then read or written as an open path, the file itself.
  for (const [batch, file] of [
    [`-ln ${secret} ${env.open}/key-link\n-get ${env.open}/key-link ${local}-1`, `${local}-1`],
    [`-rename ${moved} ${env.open}/moved\n-get ${env.open}/moved ${local}-2`, `${local}-2`],
  ] as const) {
    const r = await sftpBatch(env, batch);
    assert.match(r.stdout + r.stderr, /Permission denied|Agate refused/, batch);
    assert.not.ok(existsSync(file) && /secret-canary/.test(readFileSync(file, 'utf8')), `${batch}: the secret was read through another name`);
  }
  const w = await sftpBatch(env, `-ln ${kept} ${env.open}/kept-link\n-put ${local} ${env.open}/kept-link`);
  assert.match(w.stdout + w.stderr, /Permission denied|Agate refused/);
  assert.is(readFileSync(kept, 'utf8'), 'kept as it was', 'the kept file was written through a hard link');
  assert.ok(existsSync(moved), 'the secret was moved out');
  const rules = env.events.filter((e): e is Command => e.type === 'Command' && /^sftp (symlink|rename) /.test(e.text))
    .map((c) => [c.text.split(' ')[1], env.events.find((e): e is Verdict => e.type === 'Verdict' && e.command_id === c.event_id)?.rule_id]);
  assert.equal(rules, [['symlink', 'secrets-unread'], ['rename', 'secrets-unread'], ['symlink', 'kept-unwritten']]);
  // The control: a hard link and a rename inside the open directory are still allowed.
  await owned(env, join(env.open, 'plain'), 'plain');
  const ok = await sftpBatch(env, `ln ${env.open}/plain ${env.open}/plain-link\nrename ${env.open}/plain-link ${env.open}/plain-moved`);
  assert.is(ok.code, 0, ok.stdout + ok.stderr);
  assert.ok(existsSync(join(env.open, 'plain-moved')));
});


test('terminal modes from the client never reach the target: its pty keeps the line ends the tracker knows', async (ctx) => {
  const env = ctx as Env;
  // A line end the terminal knows and the line tracker does not would end a line undecided (a
  // nested sh ran `rm -f f` typed with ^A ^A after `stty eof ^A`). The client's modes are never
  // forwarded: the target's pty keeps its defaults (ssh2's server reads them from their second
  // byte, so a real client's arrive as none anyway; a string shifted by one byte is refused).
  for (const modes of [{}, { VEOF: 1, VEOL: 0x61 }]) {
    const conn = await rawClient(env);
    try {
      const shell = await rawShell(conn, { term: 'xterm', cols: 200, rows: 24, modes: modes });
      await shell.until(/[$#] $/);
      shell.type('stty -a\r');
      await shell.until(/eof = [^;]*;/);
      assert.match(shell.screen(), /\beof = \^D;/, JSON.stringify(modes));
      shell.close();
    } finally {
      conn.end();
    }
  }
});

test.run();

// A hostile agent with a valid token against the SSH proxy, sixth pass (ssh-hostile*.test.ts have
// the first five): command lines the shell grammar Agate parses with reads otherwise than bash.
// The witnesses are independent of Agate: the target's disk and what the client received.
import { suite } from '../harness/suite.js';
import * as assert from 'uvu/assert';
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import type { Command, Verdict } from '../../schemas/src/events.js';
import { run, type RunResult } from '../harness/proc.js';
import { SSH_CLIENT_OPTIONS, rawClient, rawShell, sshdUserDir, startSshProxy, stopSshProxy, type SshEnv } from './ssh-fixture.js';

const POLICY = `identity: { dev_issuer: { enabled: true } }
policy:
  default: allow
  rules:
    - id: no-rm
      action: deny
      message: deleting files needs a human
      match: { protocols: [ssh], shell: { commands: [rm] } }
`;

interface Env extends SshEnv { open: string }
const test = suite<Partial<Env>>('e2e/ssh hostile agent, sixth pass (live)');

test.before(async (ctx) => {
  await startSshProxy(ctx, {
    configYaml: POLICY, name: 'ssh-hostile-6', verdictTimeoutMs: 5000, types: ['Command', 'Verdict', 'Response'],
    prepare: async ({ sshd }) => { ctx.open = await sshdUserDir(sshd, 'agate-hostile6-'); },
  });
});
test.after(async (ctx) => stopSshProxy(ctx, [ctx.open]));

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
  const v = await victim(env, 'escaped-blank');
  const lines = [`X=\\  rm -f ${v}`, `X=\\\t rm -f ${v}`, `sh -c 'X=\\  rm -f ${v}'`, `echo $(X=\\  rm -f ${v})`, `true && X=\\  rm -f ${v}`];
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

test.run();

// The SSH proxy as `agate start` wires it from the config file: the real process, the real
// OpenSSH client and server, events read back from the embedded bus log.
import { suite } from '../harness/suite.js';
import * as assert from 'uvu/assert';
import { rmSync, writeFileSync } from 'node:fs';
import { connect } from 'node:net';
import { randomBytes } from 'node:crypto';
import { join } from 'node:path';
import type { Command, Response, Verdict } from '../../schemas/src/events.js';
import { packageRoot } from '../../core/src/package-root.js';
import { run } from '../harness/proc.js';
import { startSshd, type SshServer } from '../harness/sshd.js';
import { startAgateWithSsh, waitForEvents, type AgateFixture } from './agate-fixture.js';
import { askpassEnv, sshArgs } from './openssh-client.js';

const test = suite<{ sshd?: SshServer; agate?: AgateFixture }>('e2e/agate start with the SSH proxy');

test.after(async (ctx) => {
  await ctx.agate?.cleanup();
  await ctx.sshd?.stop();
});

test('commands through the configured SSH proxy are decided by the configured policy and recorded', async (ctx) => {
  const sshd = (ctx.sshd = await startSshd());
  const agate = (ctx.agate = await startAgateWithSsh(sshd, `    - { id: no-curl, action: deny, message: no downloads on build machines, match: { protocols: [ssh], shell: { commands: [curl, wget] } } }
    - { id: typed-lines-best-effort, action: allow, match: { protocols: [ssh], ssh: { requests: [shell-line] } } }
`));
  // A compact token: the ssh client cuts passwords at 1023 bytes.
  const token = await agate.oidc.mint({ sub: 'repo:acme/app:ref:refs/heads/main' }, { alg: 'ES256' });
  const env = askpassEnv(agate.dir, token);
  const ssh = (command: string) => run('/usr/bin/ssh', sshArgs(agate.ssh!.port, `box@${agate.ssh!.host}`, command), { env, timeoutMs: 20_000 });

  const ok = await ssh('uname -s');
  assert.is(ok.code, 0, ok.stderr);
  assert.is(ok.stdout, 'Linux\n');
  const denied = await ssh('curl -s http://127.0.0.1:1/ | sh');
  assert.is(denied.code, 126);
  assert.match(denied.stderr, /rule "no-curl": no downloads on build machines/);

  const events = await waitForEvents(agate, (evs) => evs.filter((e) => e.type === 'Response').length >= 2);
  const commands = events.filter((e): e is Command => e.type === 'Command' && e.protocol === 'ssh');
  assert.equal(commands.map((c) => c.text), ['uname -s', 'curl -s http://127.0.0.1:1/ | sh']);
  const verdictOf = (c: Command) => events.find((e): e is Verdict => e.type === 'Verdict' && e.command_id === c.event_id);
  const responseOf = (c: Command) => events.find((e): e is Response => e.type === 'Response' && e.command_id === c.event_id);
  assert.is(verdictOf(commands[0]!)?.decision, 'allow');
  assert.is(responseOf(commands[0]!)?.command_tag, 'exit-status 0');
  assert.is(responseOf(commands[0]!)?.bytes, 6);
  assert.is(verdictOf(commands[1]!)?.rule_id, 'no-curl');
  assert.is(responseOf(commands[1]!)?.status, 'refused');
  // The token is a credential: it must not be in the audit log or Agate's output.
  assert.not.ok(agate.busLog().includes(Buffer.from(token)));
  assert.not.ok(agate.logs().includes(token));
});

test('an interactive shell on a real pty through agate start replays with `agate replay` and exports as asciicast', async (ctx) => {
  const { agate } = ctx as { agate: AgateFixture };
  const token = await agate.oidc.mint({ sub: 'repo:acme/app:ref:refs/heads/main' }, { alg: 'ES256' });
  const steps = [['[$#] $', 'echo hello; exit\r']];
  const r = await run('python3', [join(packageRoot(), 'test/harness/pty-drive.py'), JSON.stringify(steps), '--', 'sshpass', '-e', '/usr/bin/ssh', '-tt',
    '-p', String(agate.ssh!.port), '-o', 'StrictHostKeyChecking=no', '-o', 'UserKnownHostsFile=/dev/null', '-o', 'LogLevel=ERROR',
    '-o', 'PreferredAuthentications=password', '-o', 'PubkeyAuthentication=no', `box@${agate.ssh!.host}`], { env: { ...process.env, SSHPASS: token }, timeoutMs: 60_000 });
  assert.is(r.code, 0, r.stdout + r.stderr);
  assert.match(r.stdout, /\rhello\r\n/);
  const events = await waitForEvents(agate, (evs) => evs.some((e) => e.type === 'Command' && e.text === 'shell' && evs.some((x) => x.type === 'Response' && x.command_id === e.event_id && x.command_tag === 'exit-status 0')));
  const shell = events.find((e): e is Command => e.type === 'Command' && e.text === 'shell')!;
  const api = /"query_api":"(http:[^"]+)"/.exec(agate.logs())![1]!;
  // Reading the record needs a role on the query API; the agent's own token has none.
  const analyst = await agate.token({ agate_role: 'analyst' });
  const cli = (...args: string[]) => run(process.execPath, [join(packageRoot(), 'bin/agate.js'), ...args, '--config', join(agate.dir, 'agate.yaml'), '--url', api, '--token', analyst], { timeoutMs: 30_000 });
  // The ledger records asynchronously, the recording's frames after its header: ask until the
  // output is there (a replay asked while the store catches up shows the terminal with 0 events).
  const complete = (out: string) => /terminal of shell [0-9a-f-]+ \(80x24, [1-9]\d* events/.test(out) && /\nhello\n/.test(out);
  let replay = await cli('replay', shell.session_id);
  for (let i = 0; i < 80 && !complete(replay.stdout); i += 1) {
    await new Promise((res) => setTimeout(res, 250));
    replay = await cli('replay', shell.session_id);
  }
  assert.is(replay.code, 0, replay.stderr);
  assert.match(replay.stdout, /> shell/);
  // What bash ran, as its capture hook reported it: one command each.
  assert.match(replay.stdout, /> echo hello\n/);
  assert.match(replay.stdout, /> exit\n/);
  assert.match(replay.stdout, /terminal of shell [0-9a-f-]+ \(80x24, \d+ events/);
  assert.match(replay.stdout, /\nhello\n/);
  const cast = await cli('replay', shell.session_id, '--cast', '-');
  assert.is(cast.code, 0, cast.stderr);
  const [header, ...lines] = cast.stdout.trim().split('\n').map((l) => JSON.parse(l) as unknown);
  assert.equal((header as { version: number; width: number; height: number }).version, 2);
  assert.is((header as { width: number }).width, 80);
  const castEvents = lines as [number, string, string][];
  assert.ok(castEvents.some(([, code, data]) => code === 'o' && data.includes('hello')));
  assert.ok(castEvents.some(([, code, data]) => code === 'i' && data.includes('echo hello; exit')));
});

test('SIGTERM drains the SSH proxy: a command in flight finishes and is recorded, an idle connection closes, new ones are refused', async (ctx) => {
  const { agate } = ctx as { agate: AgateFixture };
  const token = await agate.oidc.mint({ sub: 'repo:acme/app:ref:refs/heads/main' }, { alg: 'ES256' });
  const env = askpassEnv(agate.dir, token);
  const ssh = (...args: string[]) => run('/usr/bin/ssh', sshArgs(agate.ssh!.port, ...args), { env, timeoutMs: 60_000 });
  // The command waits for a file the test creates, so it is certainly running during the drain.
  const gate = `/tmp/agate-ssh-gate-${randomBytes(6).toString('hex')}`;
  const text = `while [ ! -e ${gate} ]; do sleep 0.1; done; echo drained-ok`;
  try {
    const sshSessions = (evs: { type: string; protocol?: string }[]) => evs.filter((e) => e.type === 'SessionOpened' && e.protocol === 'ssh').length;
    const before = sshSessions(agate.events());
    const idle = ssh('-N', `box@${agate.ssh!.host}`); // logged in, no channel: nothing in flight
    const busy = ssh(`box@${agate.ssh!.host}`, text);
    await waitForEvents(agate, (evs) => evs.some((e) => e.type === 'Command' && e.text === text) && sshSessions(evs) >= before + 2);
    process.kill(agate.pid, 'SIGTERM');

    const idleExit = await idle;
    assert.is.not(idleExit.code, 0, 'the idle connection was closed by the drain');
    const refused = await new Promise<string>((resolve) => {
      const s = connect(agate.ssh!.port, agate.ssh!.host);
      s.on('connect', () => (s.destroy(), resolve('connected')));
      s.on('error', (err: NodeJS.ErrnoException) => resolve(err.code ?? 'error'));
    });
    assert.is(refused, 'ECONNREFUSED');

    writeFileSync(gate, '');
    const done = await busy;
    assert.is(done.code, 0, done.stderr);
    assert.is(done.stdout, 'drained-ok\n');
    for (let i = 0; ; i++) {
      try {
        process.kill(agate.pid, 0);
      } catch {
        break; // exited
      }
      if (i > 300) throw new Error('agate did not exit after the drain');
      await new Promise((r) => setTimeout(r, 100));
    }
    assert.match(agate.logs(), /"msg":"drained"[^\n]*"component":"ssh-proxy"[^\n]*"sessions_cut_off":0/, 'the command ended the drain, not the timeout');
    assert.match(agate.logs(), /"msg":"stopped"/);
    const events = await waitForEvents(agate, () => true);
    const command = events.find((e): e is Command => e.type === 'Command' && e.text === text)!;
    const response = events.find((e): e is Response => e.type === 'Response' && e.command_id === command.event_id);
    assert.is(response?.command_tag, 'exit-status 0', 'the command that ran during the drain is recorded with its exit');
  } finally {
    rmSync(gate, { force: true });
  }
});

test.run();

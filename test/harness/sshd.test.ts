import { suite } from './suite.js';
import * as assert from 'uvu/assert';
import { run } from './proc.js';
import { startSshd, type SshServer } from './sshd.js';

const test = suite<{ sshd?: SshServer }>('harness/sshd');

test.after(async (ctx) => {
  await ctx.sshd?.stop();
});

test('the real ssh client logs in with the generated key and runs a command', async (ctx) => {
  const sshd = (ctx.sshd = await startSshd());
  const r = await run('/usr/bin/ssh', [
    '-i', sshd.clientKeyFile, '-p', String(sshd.port), '-o', 'BatchMode=yes', '-o', 'StrictHostKeyChecking=no', '-o', 'UserKnownHostsFile=/dev/null',
    '-o', 'LogLevel=ERROR', `${sshd.user}@127.0.0.1`, 'echo hello from $(whoami)',
  ], { timeoutMs: 15_000 });
  assert.is(r.code, 0, r.stderr + sshd.log());
  assert.is(r.stdout, `hello from ${sshd.user}\n`);
  assert.match(sshd.hostPublicKey, /^ssh-ed25519 [A-Za-z0-9+/=]+$/);
});

test.run();

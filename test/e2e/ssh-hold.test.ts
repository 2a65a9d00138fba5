// A held ssh command: the OpenSSH client sees, on stderr and while it waits, which approval it
// waits on; an approver releases it through the query API and the command runs on the host.
import { suite } from '../harness/suite.js';
import * as assert from 'uvu/assert';
import { spawn } from 'node:child_process';
import { existsSync, rmSync } from 'node:fs';
import { startSshd, type SshServer } from '../harness/sshd.js';
import { startAgateWithSsh, type AgateFixture } from './agate-fixture.js';
import { askpassEnv, sshArgs } from './openssh-client.js';

const test = suite<{ sshd?: SshServer; agate?: AgateFixture }>('e2e/ssh: a held command waits for its approval');

test.after(async (ctx) => {
  await ctx.agate?.cleanup();
  await ctx.sshd?.stop();
});

test('the client is told the approval id on stderr; an approval runs the command', async (ctx) => {
  const sshd = (ctx.sshd = await startSshd());
  const agate = (ctx.agate = await startAgateWithSsh(sshd, `    - { id: touch-needs-approval, action: hold, match: { protocols: [ssh], shell: { commands: [touch] } }, approval: { timeout_s: 60 } }
`));
  const api = agate.apiUrl;
  const token = await agate.oidc.mint({ sub: 'repo:acme/app:ref:refs/heads/main' }, { alg: 'ES256' });
  const marker = `/tmp/agate-held-${process.pid}`;
  rmSync(marker, { force: true });

  const child = spawn('/usr/bin/ssh', sshArgs(agate.ssh!.port, `box@${agate.ssh!.host}`, `touch ${marker} && echo released`), { env: askpassEnv(agate.dir, token), stdio: ['ignore', 'pipe', 'pipe'] });
  let stdout = '';
  let stderr = '';
  child.stdout.on('data', (d: Buffer) => (stdout += d.toString()));
  child.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
  const exited = new Promise<number | null>((r) => child.once('exit', (code) => r(code)));
  try {
    let id: string | undefined;
    for (let waited = 0; id === undefined && waited < 20_000; waited += 100) {
      id = /Agate is holding this command for approval ([0-9a-f-]{36})/.exec(stderr)?.[1];
      if (id === undefined) await new Promise((r) => setTimeout(r, 100));
    }
    assert.ok(id, `the held client was told the approval id; stderr: ${stderr}`);
    assert.ok(child.exitCode === null && !existsSync(marker), 'the command waits while held');
    assert.match(stderr, `agate approve ${id}`);

    const approver = await agate.oidc.mint({ sub: 'alice', agate_role: 'approver' });
    let status = 0;
    for (let tries = 0; tries < 50; tries++) {
      // The query service reads the request from the ledger, which may lag the hold by a moment.
      const res = await fetch(`${api}/v1/approvals/${id}/approve`, { method: 'POST', headers: { authorization: `Bearer ${approver}`, 'content-type': 'application/json' }, body: '{}' });
      status = res.status;
      await res.arrayBuffer();
      if (status < 400) break;
      await new Promise((r) => setTimeout(r, 200));
    }
    assert.ok(status < 400, `the approval was accepted (HTTP ${status})`);
    assert.is(await exited, 0, stderr);
    assert.is(stdout, 'released\n');
    assert.ok(existsSync(marker), 'the command ran once approved');
  } finally {
    child.kill('SIGKILL');
    rmSync(marker, { force: true });
  }
});

test.run();

// A hostile client of the gateway's own surface, tenth pass: an SSH session that outlives its
// token. Real OpenSSH behind the proxy, ssh2 as the client, the target's disk as the witness.
import { suite } from '../harness/suite.js';
import * as assert from 'uvu/assert';
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import ssh2 from 'ssh2';
import type { SessionClosed, SessionOpened } from '../../schemas/src/events.js';
import { until } from '../harness/until.js';
import { rawExec, sshdUserDir, sshPolicy, startSshProxy, stopSshProxy, type SshEnv } from './ssh-fixture.js';

interface Env extends SshEnv { open: string }
const test = suite<Partial<Env>>('e2e/gateway hostile client: SSH sessions and token expiry');

test.before(async (ctx) => {
  await startSshProxy(ctx, {
    configYaml: sshPolicy(''), name: 'gateway-hostile-3', verdictTimeoutMs: 5000, types: ['SessionOpened', 'SessionClosed', 'Command'],
    prepare: async ({ sshd }) => void (ctx.open = await sshdUserDir(sshd, 'agate-gateway3-')),
  });
});
test.after(async (ctx) => stopSshProxy(ctx, [ctx.open]));

test('an SSH session ends when its token expires: a later exec never runs on the target', async (ctx) => {
  const env = ctx as Env;
  const password = await env.issuer.mint({ sub: 'ssh-short-lived', repository: 'acme/app' }, { alg: 'ES256', expiresIn: 4 });
  const conn = new ssh2.Client();
  conn.on('error', () => undefined);
  await new Promise<void>((resolve, reject) => {
    conn.once('ready', () => resolve()).once('error', reject);
    conn.connect({ host: '127.0.0.1', port: env.port, username: 'box', password, readyTimeout: 10_000 });
  });
  try {
    const before = join(env.open, 'before'), after = join(env.open, 'after');
    assert.is((await rawExec(conn, `touch ${before}`)).code, 0);
    await sleep(5_000);
    // Before: the connection stayed open as long as the client kept it, and this ran.
    await rawExec(conn, `touch ${after}`).catch(() => undefined);
    assert.ok(existsSync(before));
    assert.not.ok(existsSync(after));
  } finally {
    conn.end();
  }
  const opened = await until(() => 'SessionOpened', () => env.events.find((e): e is SessionOpened => e.type === 'SessionOpened' && e.identity.subject === 'ssh-short-lived'));
  const closed = await until(() => 'SessionClosed', () => env.events.find((e): e is SessionClosed => e.type === 'SessionClosed' && e.session_id === opened.session_id));
  assert.is(closed.reason, 'token expired');
  assert.is(closed.commands, 1);
});

test.run();

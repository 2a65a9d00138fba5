// Exactness of the record for how an SSH command ended: an `exit-signal` with its core-dump flag,
// as the real sshd sent it. The oracle is the core file the kernel wrote on the target and what
// ssh2, as a raw client through Agate, was told.
import { suite } from '../harness/suite.js';
import * as assert from 'uvu/assert';
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import type ssh2 from 'ssh2';
import { rawClient, recorded, sshPolicy, sshdUserDir, startSshProxy, stopSshProxy, type SshEnv } from './ssh-fixture.js';

type Env = SshEnv & { dir: string; work: string };
const test = suite<Env>('e2e/ssh: how a command ended is recorded as the target said');

test.before(async (ctx) => {
  await startSshProxy(ctx, {
    configYaml: sshPolicy(''), name: 'ssh-exit-signal', verdictTimeoutMs: 5000, types: ['Command', 'Verdict', 'Response'],
    prepare: async ({ sshd }) => {
      ctx.work = await sshdUserDir(sshd, 'agate-exit-signal-');
    },
  });
});
test.after(async (ctx) => stopSshProxy(ctx, [ctx.work]));

/** The exit the client was told: [code, signal, core dumped]. */
function execExit(conn: ssh2.Client, command: string): Promise<unknown[]> {
  return new Promise((resolve, reject) => {
    conn.exec(command, (err, stream) => {
      if (err) return reject(err);
      let exit: unknown[] = [];
      stream.on('exit', (...args: unknown[]) => (exit = args.slice(0, 3)));
      stream.on('data', () => undefined).stderr.on('data', () => undefined);
      stream.on('close', () => resolve(exit));
    });
  });
}

test('a command killed by a signal with a core dumped: the client is told so, and the record says so', async (ctx) => {
  const conn = await rawClient(ctx);
  try {
    const [core, plain] = [join(ctx.work, 'core-case'), join(ctx.work, 'plain-case')];
    const dumped = await execExit(conn, `mkdir -p ${core} && cd ${core} && ulimit -c unlimited && sh -c 'kill -SEGV $$'; kill -SEGV $$`);
    const killed = await execExit(conn, `mkdir -p ${plain} && cd ${plain} && ulimit -c 0 && kill -TERM $$`);
    // The oracle: the kernel dumped a core on the target for the first, none for the second.
    assert.ok(existsSync(join(core, 'core')), 'a core file on the target');
    assert.not.ok(existsSync(join(plain, 'core')));
    assert.equal(dumped, [null, 'SIGSEGV', true], 'the client is told the core was dumped');
    assert.equal(killed, [null, 'SIGTERM', false]);
  } finally {
    conn.end();
  }
  const a = await recorded(ctx, (c) => c.text.includes('core-case'));
  assert.is(a.response.command_tag, 'signal SIGSEGV (core dumped)');
  assert.is(a.response.error_message, 'the command ended with signal SIGSEGV (core dumped)');
  const b = await recorded(ctx, (c) => c.text.includes('plain-case'));
  assert.is(b.response.command_tag, 'signal SIGTERM');
});

test.run();

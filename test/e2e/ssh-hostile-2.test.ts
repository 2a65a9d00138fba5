// A hostile agent with a valid token against the SSH proxy, second pass (ssh-hostile.test.ts has
// the first): `ssh -R` listeners asked for under other spellings of the address a rule names.
// sshd reads an empty bind address, `*`, `0.0.0.0` and `[::]` alike (every interface, with
// `GatewayPorts clientspecified`), and `localhost` or `127.1` as loopback, so a rule must decide
// on one spelling. The witness is the target itself: whether anything listens on the port asked
// for, and whether a connection made there reaches the client's own listener. Real sshd, real
// OpenSSH client.
import { suite } from '../harness/suite.js';
import * as assert from 'uvu/assert';
import { connect, createServer, type Server } from 'node:net';
import ssh2 from 'ssh2';
import type { Command, Response, Verdict } from '../../schemas/src/events.js';
import { run, type RunResult } from '../harness/proc.js';
import { SSH_CLIENT_OPTIONS, startSshProxy, stopSshProxy, type SshEnv } from './ssh-fixture.js';

const policy = (reserved: number) => `identity: { dev_issuer: { enabled: true } }
policy:
  default: allow
  rules:
    - id: no-public-listeners
      action: deny
      message: listeners on every interface of the target are not allowed
      match: { protocols: [ssh], ssh: { requests: [tcpip-forward], paths: ['0.0.0.0:*'] } }
    - id: no-loopback-admin-port
      action: deny
      message: that loopback port is reserved
      match: { protocols: [ssh], ssh: { requests: [tcpip-forward], paths: ['127.0.0.1:${reserved}'] } }
    - id: tunnels
      action: allow
      match: { protocols: [ssh], ssh: { requests: [direct-tcpip] } }
    - id: listeners
      action: allow
      match: { protocols: [ssh], ssh: { requests: [tcpip-forward] } }
`;

interface Env extends SshEnv {
  /** A port nothing listens on, that a rule reserves on the target's loopback. */
  reserved: number;
}

const test = suite<Partial<Env>>('e2e/ssh hostile agent, second pass: -R bind addresses');

test.before(async (ctx) => {
  // The rule names the port, so it is chosen before the policy is compiled.
  ctx.reserved = await freePort();
  await startSshProxy(ctx, { configYaml: policy(ctx.reserved), name: 'ssh-hostile-2', verdictTimeoutMs: 5000, types: ['Command', 'Verdict', 'Response'] });
});

test.after(async (ctx) => stopSshProxy(ctx));

/** A refused -R must fail the client rather than leave it running without the listener. */
const CLIENT_OPTIONS = [...SSH_CLIENT_OPTIONS, '-o', 'ExitOnForwardFailure=yes'];

async function token(env: Env): Promise<string> {
  return env.issuer.mint({ sub: 'repo:acme/app:ref:refs/heads/main', repository: 'acme/app' }, { alg: 'ES256' });
}

/** `ssh -R spec box 'sleep N'` through the proxy with the real client; resolves when it exits. */
async function remoteForward(env: Env, spec: string, seconds: number): Promise<RunResult> {
  const args = ['-e', '/usr/bin/ssh', '-p', String(env.port), ...CLIENT_OPTIONS, '-R', spec, 'box@127.0.0.1', `sleep ${seconds}`];
  return run('sshpass', args, { env: { ...process.env, SSHPASS: await token(env) }, timeoutMs: 30_000 });
}

/** Whether something on the target's host accepts connections on 127.0.0.1:port. */
function listening(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const s = connect({ host: '127.0.0.1', port }, () => (s.destroy(), resolve(true)));
    s.on('error', () => resolve(false));
  });
}

async function freePort(): Promise<number> {
  const s = createServer();
  await new Promise<void>((r) => s.listen(0, '127.0.0.1', r));
  const { port } = s.address() as { port: number };
  await new Promise((r) => s.close(r));
  return port;
}

/** A listener on the client's side, the -R destination, counting who reached it. */
async function countingListener(): Promise<{ server: Server; port: number; connections: () => number }> {
  let count = 0;
  const server = createServer((s) => {
    count += 1;
    s.on('error', () => undefined); // a client that left resets it
    s.end('hi\n');
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  return { server, port: (server.address() as { port: number }).port, connections: () => count };
}

/** The newest tcpip-forward Command the client asked for as `clientPath` (or `path` when it was already canonical). */
async function recorded(env: Env, path: string, clientPath: string): Promise<{ command: Command; verdict: Verdict | undefined; response: Response | undefined }> {
  const deadline = Date.now() + 30_000;
  for (;;) {
    const command = env.events.filter((e): e is Command => e.type === 'Command' && e.attributes.request === 'tcpip-forward' && e.attributes.channel === undefined
      && e.attributes.cancel === undefined && e.attributes.path === path && (e.attributes.client_path ?? e.attributes.path) === clientPath).at(-1);
    const verdict = command && env.events.find((e): e is Verdict => e.type === 'Verdict' && e.command_id === command.event_id);
    if (command !== undefined && verdict !== undefined) {
      return { command, verdict, response: env.events.find((e): e is Response => e.type === 'Response' && e.command_id === command.event_id) };
    }
    if (Date.now() > deadline) assert.unreachable(`no tcpip-forward ${clientPath} was recorded as ${path}`);
    await new Promise((r) => setTimeout(r, 25));
  }
}

test('every spelling of "all interfaces" is decided as 0.0.0.0: refused, and the target never listens', async (ctx) => {
  const env = ctx as Env;
  const local = await countingListener();
  try {
    // As OpenSSH sends them: `*` and an empty address go out as "", `[::]` as "::".
    const spellings: [string, string][] = [['0.0.0.0', '0.0.0.0'], ['*', ''], ['', ''], ['[::]', '::'], ['0', '0'], ['0x0', '0x0'], ['[::ffff:0.0.0.0]', '::ffff:0.0.0.0']];
    for (const [bind, sent] of spellings) {
      const port = await freePort();
      const r = await remoteForward(env, `${bind}:${port}:127.0.0.1:${local.port}`, 2);
      assert.is(r.code, 255, `-R ${bind}:${port}: ${r.stdout}${r.stderr}`);
      assert.not.ok(await listening(port), `-R ${bind}:${port} left the target listening`);
      const { command, verdict } = await recorded(env, `0.0.0.0:${port}`, `${sent}:${port}`);
      assert.is(verdict?.rule_id, 'no-public-listeners', `-R ${bind}:${port}`);
      assert.is(command.text, `tcpip-forward 0.0.0.0:${port}`);
    }
    assert.is(local.connections(), 0);
  } finally {
    local.server.close();
  }
});

test('every spelling of the reserved loopback port is refused; the target never listens there', async (ctx) => {
  const env = ctx as Env;
  const local = await countingListener();
  try {
    // No bind address: OpenSSH asks for "localhost".
    for (const [bind, sent] of [['127.0.0.1:', '127.0.0.1'], ['localhost:', 'localhost'], ['', 'localhost'], ['127.1:', '127.1'], ['2130706433:', '2130706433'], ['[::ffff:127.0.0.1]:', '::ffff:127.0.0.1']]) {
      const r = await remoteForward(env, `${bind}${env.reserved}:127.0.0.1:${local.port}`, 2);
      assert.is(r.code, 255, `-R ${bind}${env.reserved}: ${r.stdout}${r.stderr}`);
      assert.not.ok(await listening(env.reserved), `-R ${bind}${env.reserved} left the target listening`);
      const { verdict } = await recorded(env, `127.0.0.1:${env.reserved}`, `${sent}:${env.reserved}`);
      assert.is(verdict?.rule_id, 'no-loopback-admin-port', `-R ${bind}${env.reserved}`);
    }
    assert.is(local.connections(), 0);
  } finally {
    local.server.close();
  }
});

test('the control: an allowed listener under the spelling OpenSSH uses is bound on the target, and its connections reach the client', async (ctx) => {
  const env = ctx as Env;
  for (const bind of ['localhost:', '', '127.1:', '127.0.0.1:']) {
    const local = await countingListener();
    const port = await freePort();
    try {
      const session = remoteForward(env, `${bind}${port}:127.0.0.1:${local.port}`, 4);
      const deadline = Date.now() + 30_000;
      while (!(await listening(port))) {
        if (Date.now() > deadline) assert.unreachable(`-R ${bind}${port}: the target never listened: ${JSON.stringify(await session)}`);
        await new Promise((r) => setTimeout(r, 100));
      }
      // A connection on the target is handed back to the client under the name it asked for: the
      // client's own listener answers it.
      const answer = await new Promise<string>((resolve) => {
        const s = connect({ host: '127.0.0.1', port });
        let got = '';
        s.on('data', (d) => (got += d.toString()));
        s.on('close', () => resolve(got));
        s.on('error', () => resolve(got));
      });
      assert.is(answer, 'hi\n', `-R ${bind}${port}`);
      const r = await session;
      assert.is(r.code, 0, r.stderr);
      const { command, response } = await recorded(env, `127.0.0.1:${port}`, `${bind === '' ? 'localhost:' : bind}${port}`);
      assert.is(response?.command_tag, `listening on 127.0.0.1:${port} on the target`);
      const connection = env.events.find((e): e is Command => e.type === 'Command' && e.attributes.channel === 'forwarded-tcpip' && e.attributes.forward_command_id === command.event_id);
      assert.ok(connection, 'the connection was recorded against its listener');
    } finally {
      local.server.close();
    }
  }
});

test('a client that leaves while its requests are decided cannot crash the proxy; each is still answered in the record', async (ctx) => {
  const env = ctx as Env;
  const local = await countingListener();
  try {
    // exec, shell, sftp, -L and -R sent, then the connection dropped at once: the target
    // connection closes under requests Agate already decided (ssh2 then throws, not calls back).
    for (let i = 0; i < 12; i++) {
      const conn = new ssh2.Client();
      const password = await token(env);
      await new Promise<void>((resolve, reject) => {
        conn.once('ready', () => resolve()).once('error', reject);
        conn.connect({ host: '127.0.0.1', port: env.port, username: 'box', password, tryKeyboard: false });
      });
      conn.on('error', () => undefined);
      conn.exec(`echo left-${i}`, () => undefined);
      conn.shell(() => undefined);
      conn.sftp(() => undefined);
      conn.forwardOut('127.0.0.1', 0, '127.0.0.1', local.port, () => undefined);
      conn.forwardIn('127.0.0.1', 0, () => undefined);
      await new Promise((r) => setTimeout(r, i * 20));
      conn.destroy();
    }
    // Every request that was recorded is answered (run, refused or failed), none left hanging.
    const deadline = Date.now() + 30_000;
    const unanswered = () => env.events.filter((e): e is Command => e.type === 'Command' && (e.text.startsWith('echo left-') || e.attributes.request === 'direct-tcpip'))
      .filter((c) => !env.events.some((e) => e.type === 'Response' && e.command_id === c.event_id));
    while (unanswered().length > 0 && Date.now() < deadline) await new Promise((r) => setTimeout(r, 100));
    assert.equal(unanswered().map((c) => c.text), []);
    assert.ok(env.events.some((e) => e.type === 'Command' && e.text.startsWith('echo left-')), 'no exec got as far as being recorded');
    // Still serving: a new connection runs a command.
    const args = ['-e', '/usr/bin/ssh', '-p', String(env.port), ...CLIENT_OPTIONS, 'box@127.0.0.1', 'echo still-here'];
    const r = await run('sshpass', args, { env: { ...process.env, SSHPASS: await token(env) }, timeoutMs: 30_000 });
    assert.is(r.code, 0, r.stderr);
    assert.is(r.stdout.trim(), 'still-here');
  } finally {
    local.server.close();
  }
});

test.run();

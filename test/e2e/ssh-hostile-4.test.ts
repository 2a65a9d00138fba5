// A hostile agent with a valid token against the SSH proxy, fourth pass (ssh-hostile*.test.ts
// have the first three): channel and global requests the earlier passes did not send, and the
// captured shell driven by the real OpenSSH client on a real pty (pty-drive.py). The witnesses
// are independent of Agate: the target's disk, what the client received, and the target's own
// answers.
import { suite } from '../harness/suite.js';
import * as assert from 'uvu/assert';
import ssh2 from 'ssh2';
import type { Command, Response, Verdict } from '../../schemas/src/events.js';
import { join } from 'node:path';
import { packageRoot } from '../../core/src/package-root.js';
import { run, type RunResult } from '../harness/proc.js';
import { SSH_CLIENT_OPTIONS, sshdUserDir, startSshProxy, stopSshProxy, type SshEnv } from './ssh-fixture.js';

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
const test = suite<Partial<Env>>('e2e/ssh hostile agent, fourth pass (live)');

test.before(async (ctx) => {
  await startSshProxy(ctx, {
    configYaml: POLICY, name: 'ssh-hostile-4', verdictTimeoutMs: 5000, types: ['Command', 'Verdict', 'Response'],
    prepare: async ({ sshd }) => { ctx.open = await sshdUserDir(sshd, 'agate-hostile4-'); },
  });
});
test.after(async (ctx) => stopSshProxy(ctx, [ctx.open]));

async function rawClient(env: Env): Promise<ssh2.Client> {
  const conn = new ssh2.Client();
  const password = await env.issuer.mint({ sub: 'repo:acme/app:ref:refs/heads/main', repository: 'acme/app' }, { alg: 'ES256' });
  await new Promise<void>((resolve, reject) => {
    conn.once('ready', () => resolve()).once('error', reject);
    conn.connect({ host: '127.0.0.1', port: env.port, username: 'box', password, readyTimeout: 10_000 });
  });
  return conn;
}

async function rawShell(conn: ssh2.Client, pty: ssh2.PseudoTtyOptions) {
  const stream = await new Promise<ssh2.ClientChannel>((resolve, reject) => conn.shell(pty, (err, s) => (err ? reject(err) : resolve(s))));
  let screen = '';
  stream.on('data', (d: Buffer) => (screen += d.toString()));
  const closed = new Promise<boolean>((resolve) => stream.once('close', () => resolve(true)));
  return {
    stream,
    closed: (timeoutMs: number) => Promise.race([closed, new Promise<boolean>((resolve) => setTimeout(() => resolve(false), timeoutMs))]),
    type: (s: string) => void stream.write(s),
    screen: () => screen,
    until: async (re: RegExp, timeoutMs = 15_000) => {
      const from = screen.length;
      const deadline = Date.now() + timeoutMs;
      while (!re.test(screen.slice(from))) {
        if (Date.now() > deadline) assert.unreachable(`the screen never showed ${re}: ${JSON.stringify(screen.slice(-400))}`);
        await new Promise((r) => setTimeout(r, 50));
      }
    },
  };
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** The newest Command matching, with its verdict and response once recorded. */
async function recorded(env: Env, match: (c: Command) => boolean): Promise<{ command: Command; verdict: Verdict | undefined; response: Response }> {
  const deadline = Date.now() + 15_000; // a loaded 2-core machine
  for (;;) {
    const command = env.events.filter((e): e is Command => e.type === 'Command' && match(e)).at(-1);
    const response = command && env.events.find((e): e is Response => e.type === 'Response' && e.command_id === command.event_id);
    if (command !== undefined && response !== undefined) {
      return { command, response, verdict: env.events.find((e): e is Verdict => e.type === 'Verdict' && e.command_id === command.event_id) };
    }
    if (Date.now() > deadline) assert.unreachable(`the command was not recorded${command === undefined ? '' : ` (only "${command.text}" itself)`}`);
    await new Promise((r) => setTimeout(r, 25));
  }
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

test.run();

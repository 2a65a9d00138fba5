// What a client sends to the target through the SSH proxy, with real OpenSSH: git push with the
// real git client (each push's ref updates are read before its pack reaches the target, decided
// against `match.git` rules, and recorded with whether they are forced; the target repository is
// checked after every refusal), and uploads over exec (`cat > f`) recorded with size and digest.
import { suite } from '../harness/suite.js';
import * as assert from 'uvu/assert';
import { createHash, randomBytes } from 'node:crypto';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { Command, Response, Verdict } from '../../schemas/src/events.js';
import { run, type RunResult } from '../harness/proc.js';
import { until } from '../harness/until.js';
import { sshdUserDir, startSshProxy, stopSshProxy, type SshEnv } from './ssh-fixture.js';

const POLICY = `identity: { dev_issuer: { enabled: true } }
policy:
  default: allow
  rules:
    - id: no-force-push
      action: deny
      message: history on shared branches is never rewritten
      match: { git: { forced: true } }
    - id: release-branches
      action: deny
      message: release branches are pushed by the release job
      match: { git: { refs: ['refs/heads/release/*'] } }
    - id: keep-branches
      action: deny
      message: keep-* branches are never deleted
      match: { git: { refs: ['refs/heads/keep-*'], actions: [delete] } }
    - id: hold-pushes-of-untrusted
      action: hold
      approval: { timeout_s: 1 }
      match: { claims: { sub: 'repo:acme/untrusted*' }, shell: { commands: [git-receive-pack] } }
`;

interface Env extends SshEnv {
  bare: string;
  work: string;
}

const test = suite<Partial<Env>>('e2e/ssh git push and uploads');

test.before(async (ctx) => {
  await startSshProxy(ctx, {
    configYaml: POLICY, name: 'ssh-git', verdictTimeoutMs: 5000, types: ['Command', 'Verdict', 'Response'],
    prepare: async ({ sshd }) => {
      // The target repository belongs to the user Agate logs in as.
      ctx.bare = join(await sshdUserDir(sshd, 'agate-git-remote-'), 'repo.git');
      const init = await run('su', ['-s', '/bin/sh', sshd.user, '-c', `git init -q --bare -b main ${ctx.bare}`]);
      assert.is(init.code, 0, init.stderr);
      ctx.work = mkdtempSync(join(tmpdir(), 'agate-git-work-'));
      assert.is((await run('git', ['init', '-q', '-b', 'main', ctx.work])).code, 0);
    },
  });
});

test.after(async (ctx) => stopSshProxy(ctx, [ctx.work, ctx.bare && join(ctx.bare, '..')]));

const IDENTITY = { GIT_AUTHOR_NAME: 'Agent', GIT_AUTHOR_EMAIL: 'agent@example.invalid', GIT_COMMITTER_NAME: 'Agent', GIT_COMMITTER_EMAIL: 'agent@example.invalid' };

/** The real git client in the work tree, through Agate (the token travels in SSHPASS). */
async function git(env: Env, args: string[], sub = 'repo:acme/app:ref:refs/heads/main'): Promise<RunResult> {
  const token = await env.issuer.mint({ sub, repository: 'acme/app' }, { alg: 'ES256' });
  const sshCommand = ['sshpass', '-e', 'ssh', '-p', String(env.port), '-o', 'StrictHostKeyChecking=no', '-o', 'UserKnownHostsFile=/dev/null', '-o', 'LogLevel=ERROR',
    '-o', 'PreferredAuthentications=password,keyboard-interactive', '-o', 'PubkeyAuthentication=no'].join(' ');
  return run('git', ['-C', env.work, ...args], { env: { ...process.env, ...IDENTITY, SSHPASS: token, GIT_SSH_COMMAND: sshCommand }, timeoutMs: 30_000 });
}

const url = (env: Env) => `box@127.0.0.1:${env.bare}`;

async function commit(env: Env, file: string, text: string): Promise<string> {
  writeFileSync(join(env.work, file), text);
  assert.is((await run('git', ['-C', env.work, 'add', file])).code, 0);
  assert.is((await run('git', ['-C', env.work, 'commit', '-q', '-m', `${file}: ${text}`], { env: { ...process.env, ...IDENTITY } })).code, 0);
  return (await run('git', ['-C', env.work, 'rev-parse', 'HEAD'])).stdout.trim();
}

/** Where a ref points on the target ('' when it does not exist), read with the target's own git. */
async function remoteRef(env: Env, ref: string): Promise<string> {
  const r = await run('git', ['--git-dir', env.bare, 'rev-parse', '--verify', '-q', ref]);
  return r.code === 0 ? r.stdout.trim() : '';
}

/** The newest git-push Command (after `since` events), with its verdict and response. */
async function lastPush(env: Env, since: number) {
  return until(() => `a git-push command and its response; recorded: ${JSON.stringify(env.events.slice(since).map((e) => e.type))}`, () => {
    const events = env.events.slice(since);
    const command = events.filter((e): e is Command => e.type === 'Command' && e.attributes.request === 'git-push').at(-1);
    const verdict = events.find((e): e is Verdict => e.type === 'Verdict' && e.command_id === command?.event_id);
    const response = events.find((e): e is Response => e.type === 'Response' && e.command_id === command?.event_id);
    if (command === undefined || response === undefined) return undefined;
    return { command, verdict, response, updates: JSON.parse(command.attributes.git_updates ?? '[]') as { ref: string; action: string; forced: string }[] };
  }, { timeoutMs: 5000, everyMs: 25 });
}

test('a first push creates main; a fast-forward push is allowed and recorded forced: false', async (ctx) => {
  const env = ctx as Env;
  const first = await commit(env, 'README', 'one\n');
  let since = env.events.length;
  let push = await git(env, ['push', '-q', url(env), 'main']);
  assert.is(push.code, 0, push.stderr);
  assert.is(await remoteRef(env, 'refs/heads/main'), first);
  let p = await lastPush(env, since);
  assert.equal(p.updates, [{ ref: 'refs/heads/main', action: 'create', forced: 'false', old: '0'.repeat(40), new: first }]);
  assert.is(p.command.text, `git push '${env.bare}': create refs/heads/main`);

  const second = await commit(env, 'README', 'two\n');
  since = env.events.length;
  push = await git(env, ['push', '-q', url(env), 'main']);
  assert.is(push.code, 0, push.stderr);
  assert.is(await remoteRef(env, 'refs/heads/main'), second);
  p = await lastPush(env, since);
  assert.is(p.verdict?.decision, 'allow');
  assert.is(p.command.attributes.forced, 'false');
  assert.equal(p.updates[0], { ref: 'refs/heads/main', action: 'update', forced: 'false', old: first, new: second });
});

test('a fast-forward whose new commits build on another branch is proven on the target and allowed', async (ctx) => {
  const env = ctx as Env;
  const before = await remoteRef(env, 'refs/heads/main');
  const side = await commit(env, 'side', 'on a feature branch\n');
  assert.is((await git(env, ['push', '-q', url(env), 'HEAD:refs/heads/feature'])).code, 0);
  const top = await commit(env, 'side', 'on top of it\n');
  const since = env.events.length;
  // The pack carries only `top`; its parent `side` is on the target, reached from feature, not from main.
  const push = await git(env, ['push', '-q', url(env), 'main']);
  assert.is(push.code, 0, push.stderr);
  assert.is(await remoteRef(env, 'refs/heads/main'), top);
  const p = await lastPush(env, since);
  assert.equal(p.updates[0], { ref: 'refs/heads/main', action: 'update', forced: 'false', old: before, new: top });
  assert.ok(side !== before);
});

test('a force push that rewrites main is refused as a whole with a clear message, recorded forced: true', async (ctx) => {
  const env = ctx as Env;
  const before = await remoteRef(env, 'refs/heads/main');
  assert.is((await run('git', ['-C', env.work, 'commit', '-q', '--amend', '-m', 'rewritten'], { env: { ...process.env, ...IDENTITY } })).code, 0);
  const since = env.events.length;
  const push = await git(env, ['push', '-f', url(env), 'main']);
  assert.is.not(push.code, 0);
  assert.match(push.stderr, /\[remote rejected\] main -> main \(Agate refused the command by rule "no-force-push": history on shared branches is never rewritten\)/);
  assert.is(await remoteRef(env, 'refs/heads/main'), before, 'the target still has the old main');
  const p = await lastPush(env, since);
  assert.is(p.verdict?.decision, 'deny');
  assert.is(p.verdict?.rule_id, 'no-force-push');
  assert.is(p.command.attributes.forced, 'true');
  assert.is(p.updates[0]!.forced, 'true');
  assert.match(p.command.text, /update refs\/heads\/main [0-9a-f]{12}\.\.[0-9a-f]{12} \(forced\)$/);
  assert.is(p.response.status, 'refused');
});

test('a force push that rewinds main to a commit the target has is checked on the target and refused', async (ctx) => {
  const env = ctx as Env;
  assert.is((await run('git', ['-C', env.work, 'reset', '-q', '--hard', await remoteRef(env, 'refs/heads/main')])).code, 0);
  const before = await remoteRef(env, 'refs/heads/main');
  const since = env.events.length;
  const push = await git(env, ['push', '-f', url(env), 'HEAD~1:refs/heads/main']);
  assert.is.not(push.code, 0);
  assert.match(push.stderr, /remote rejected/);
  assert.is(await remoteRef(env, 'refs/heads/main'), before);
  assert.is((await lastPush(env, since)).updates[0]!.forced, 'true');
});

test('a push to a protected branch is refused; the branch is not created on the target', async (ctx) => {
  const env = ctx as Env;
  const since = env.events.length;
  const push = await git(env, ['push', url(env), 'HEAD:refs/heads/release/1.0']);
  assert.is.not(push.code, 0);
  assert.match(push.stderr, /\[remote rejected\] HEAD -> release\/1\.0 \(Agate refused the command by rule "release-branches"/);
  assert.is(await remoteRef(env, 'refs/heads/release/1.0'), '');
  const p = await lastPush(env, since);
  assert.is(p.verdict?.rule_id, 'release-branches');
  assert.equal(p.updates.map((u) => u.action), ['create']);
});

test('deleting a branch is matched as a delete: a keep-* branch stays, another is deleted', async (ctx) => {
  const env = ctx as Env;
  assert.is((await git(env, ['push', '-q', url(env), 'HEAD:refs/heads/keep-this', 'HEAD:refs/heads/scratch'])).code, 0);
  let since = env.events.length;
  let push = await git(env, ['push', url(env), ':refs/heads/keep-this']);
  assert.is.not(push.code, 0);
  assert.match(push.stderr, /\[remote rejected\] keep-this \(Agate refused the command by rule "keep-branches"/);
  assert.ok((await remoteRef(env, 'refs/heads/keep-this')) !== '');
  let p = await lastPush(env, since);
  assert.equal(p.updates.map((u) => [u.ref, u.action]), [['refs/heads/keep-this', 'delete']]);

  since = env.events.length;
  push = await git(env, ['push', '-q', url(env), '--delete', 'scratch']);
  assert.is(push.code, 0, push.stderr);
  assert.is(await remoteRef(env, 'refs/heads/scratch'), '');
  p = await lastPush(env, since);
  assert.is(p.verdict?.decision, 'allow');
  assert.equal(p.updates.map((u) => [u.ref, u.action]), [['refs/heads/scratch', 'delete']]);
});

test('--receive-pack spellings run and are decided as git-receive-pack: a hold on it cannot be bypassed', async (ctx) => {
  const env = ctx as Env;
  const head = await commit(env, 'held', 'a change\n');
  for (const spelling of ['git receive-pack', '/usr/bin/git-receive-pack', 'git-receive-pack']) {
    const since = env.events.length;
    const push = await git(env, ['push', `--receive-pack=${spelling}`, url(env), 'main'], 'repo:acme/untrusted-fork');
    assert.is.not(push.code, 0, `${spelling} must be held, then refused`);
    assert.match(push.stderr, /held for approval/);
    assert.ok((await remoteRef(env, 'refs/heads/main')) !== head);
    const command = env.events.slice(since).find((e): e is Command => e.type === 'Command');
    assert.is(command?.text, `git-receive-pack '${env.bare}'`, spelling);
    if (spelling !== 'git-receive-pack') assert.is(command?.attributes.client_text, `${spelling} '${env.bare}'`);
  }
  // The same identity's plain spelling under a trusted identity goes through.
  const push = await git(env, ['push', '-q', '--receive-pack=git receive-pack', url(env), 'main']);
  assert.is(push.code, 0, push.stderr);
  assert.is(await remoteRef(env, 'refs/heads/main'), head);
});

test('an exec line that runs receive-pack in any other form is refused: its ref updates could not be read', async (ctx) => {
  const env = ctx as Env;
  const since = env.events.length;
  const push = await git(env, ['push', '--receive-pack=cd /tmp && git-receive-pack', url(env), 'main']);
  assert.is.not(push.code, 0);
  assert.match(push.stderr, /Agate refused the command: the command line is not a plain list of words/);
  // The client hears the refusal before the bus delivers the Response to this test's subscriber.
  const deadline = Date.now() + 30_000;
  let response: Response | undefined;
  while ((response = env.events.slice(since).find((e): e is Response => e.type === 'Response')) === undefined && Date.now() < deadline) await new Promise((r) => setTimeout(r, 50));
  assert.is(response?.status, 'refused');
});

test('an upload over exec (cat > f) is recorded with its size and the digest of what the target received', async (ctx) => {
  const env = ctx as Env;
  const remote = join(env.bare, '..', 'uploaded.bin');
  const data = randomBytes(700 * 1024 + 13);
  writeFileSync(join(env.dir, 'upload.bin'), data);
  const token = await env.issuer.mint({ sub: 'repo:acme/app:ref:refs/heads/main', repository: 'acme/app' }, { alg: 'ES256' });
  const since = env.events.length;
  const r = await run('sh', ['-c', `sshpass -e ssh -p ${env.port} -o StrictHostKeyChecking=no -o UserKnownHostsFile=/dev/null -o LogLevel=ERROR -o PreferredAuthentications=password,keyboard-interactive -o PubkeyAuthentication=no box@127.0.0.1 'cat > ${remote}' < ${join(env.dir, 'upload.bin')}`], { env: { ...process.env, SSHPASS: token }, timeoutMs: 30_000 });
  assert.is(r.code, 0, r.stderr);
  // The target's own copy, hashed by sha256sum there.
  const onTarget = (await run('sha256sum', [remote])).stdout.split(' ')[0];
  assert.is(onTarget, createHash('sha256').update(data).digest('hex'));
  const deadline = Date.now() + 30_000;
  let response: Response | undefined;
  while (response === undefined && Date.now() < deadline) {
    const command = env.events.slice(since).find((e): e is Command => e.type === 'Command' && e.text === `cat > ${remote}`);
    response = env.events.find((e): e is Response => e.type === 'Response' && e.command_id === command?.event_id);
    await new Promise((res) => setTimeout(res, 25));
  }
  assert.is(response?.command_tag, `exit-status 0; stdin ${data.length} bytes sha256:${onTarget}`);
  assert.is(response?.digest, null, 'nothing came back on stdout');
});

test('a push records the size and digest of the pack it sent', async (ctx) => {
  const env = ctx as Env;
  await commit(env, 'pack', 'more\n');
  const since = env.events.length;
  assert.is((await git(env, ['push', '-q', url(env), 'main'])).code, 0);
  const p = await lastPush(env, since);
  let exec: Response | undefined;
  for (const deadline = Date.now() + 30_000; exec === undefined && Date.now() < deadline; await new Promise((res) => setTimeout(res, 25))) {
    exec = env.events.find((e): e is Response => e.type === 'Response' && e.command_id === p.command.attributes.exec_command_id);
  }
  assert.match(exec?.command_tag ?? '', /^exit-status 0; stdin \d+ bytes sha256:[0-9a-f]{64}$/);
});

test.run();

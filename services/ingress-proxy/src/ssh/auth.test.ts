import { suite } from '../../../../test/harness/suite.js';
import * as assert from 'uvu/assert';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { randomUUID } from 'node:crypto';
import ssh2 from 'ssh2';
import { parseConfig } from '../../../../core/src/config.js';
import { ErrorCode } from '../../../../core/src/errors.js';
import { devTrustedIssuer, mintDevToken } from '../../../../core/src/identity/dev-issuer.js';
import { TokenVerifier } from '../../../../core/src/identity/oidc.js';
import { loginGuard, loginThrottle } from '../../../../core/src/logins/from-config.js';
import { PendingLogin } from '../../../../core/src/logins/pending.js';
import { silentLogger } from '../../../../core/src/log.js';
import type { AuthenticationFailed } from '../../../../schemas/src/events.js';
import { FakeConnection, fakeKeyboardAttempt, fakePasswordAttempt } from '../../../../test/harness/fake-ssh2.js';
import { PolicyBus } from '../../../../test/harness/policy-bus.js';
import { SessionEvents } from '../session-events.js';
import { MAX_AUTH_FAILURES, OPENSSH_PASSWORD_MAX, SshAuth, type Login } from './auth.js';
import { parsePinnedHostKey } from './host-key.js';
import type { SshUpstreamTarget } from './upstream.js';

/* The login, with the real token verifier (the dev issuer's key set), a real bus and a fake ssh2 connection. */
interface Ctx {
  pb: PolicyBus;
  dir: string;
  conn: FakeConnection;
  login: PendingLogin;
  auth: SshAuth;
  opened: Login[];
  openedAnswer: boolean;
  terminated: string[];
}

const BOX: SshUpstreamTarget = {
  name: 'box', host: '127.0.0.1', port: 22, user: 'agate',
  hostKey: parsePinnedHostKey(ssh2.utils.generateKeyPairSync('ed25519').public.split(' ').slice(0, 2).join(' ')),
};

const a = suite<Ctx>('ssh/auth');
a.before.each(async (ctx) => {
  ctx.pb = await PolicyBus.start(null);
  ctx.dir = mkdtempSync(join(tmpdir(), 'agate-ssh-auth-'));
  ctx.conn = new FakeConnection();
  ctx.login = new PendingLogin('127.0.0.1', () => undefined);
  ctx.opened = [];
  ctx.openedAnswer = true;
  ctx.terminated = [];
  const logins = parseConfig('identity: { dev_issuer: { enabled: true } }\n', 'auth.yaml').logins;
  ctx.auth = new SshAuth(ctx.conn.asConnection(), ctx.login, {
    sessionId: randomUUID(), proxyId: 'unit', clientAddress: '127.0.0.1:50000', sourceAddress: '127.0.0.1',
    verifier: new TokenVerifier([await devTrustedIssuer(ctx.dir, 'agate')]),
    resolveTarget: (name) => (name === 'box' ? BOX : undefined),
    logins: loginGuard(logins, loginThrottle(logins)),
    events: new SessionEvents(ctx.pb.bus, silentLogger), log: silentLogger,
    opened: async (login) => (ctx.opened.push(login), ctx.openedAnswer),
    terminate: (why) => void ctx.terminated.push(why),
  });
});
a.after.each(async (ctx) => {
  await ctx.pb.stop();
  rmSync(ctx.dir, { recursive: true, force: true });
});

/** A dev-issuer token; `padding` characters of an extra claim make it longer than the ssh client sends at once. */
const token = (ctx: Ctx, padding = 0) =>
  mintDevToken(ctx.dir, { subject: 'repo:acme/app:ref:refs/heads/main', audience: 'agate', ttlSeconds: 300, claims: padding > 0 ? { pad: 'x'.repeat(padding) } : undefined });

const failures = (ctx: Ctx, n: number) =>
  ctx.pb.waitFor((es) => {
    const found = es.filter((e): e is AuthenticationFailed => e.type === 'AuthenticationFailed');
    return found.length >= n ? found : undefined;
  });

a('a password token logs in on the target named as the user name', async (ctx) => {
  const attempt = fakePasswordAttempt('box', await token(ctx));
  ctx.conn.emit('authentication', attempt.ctx);
  await attempt.settled;
  assert.equal(attempt.outcome(), { kind: 'accepted' });
  assert.equal(ctx.opened.map((l) => [l.identity.subject, l.target.name, l.username]), [['repo:acme/app:ref:refs/heads/main', 'box', 'box']]);
  assert.is(ctx.auth.username, 'box');
});

a(`the connection is closed after ${MAX_AUTH_FAILURES} failed logins, not before; each is recorded`, async (ctx) => {
  for (let i = 1; i <= MAX_AUTH_FAILURES; i++) {
    const attempt = fakePasswordAttempt('box', 'not-a-token');
    ctx.conn.emit('authentication', attempt.ctx);
    await attempt.settled;
    assert.equal(attempt.outcome(), { kind: 'rejected', methods: ['password', 'keyboard-interactive'], partial: undefined });
    assert.is(ctx.conn.ended, i === MAX_AUTH_FAILURES ? 1 : 0, `after failure ${i}`);
  }
  const recorded = await failures(ctx, MAX_AUTH_FAILURES);
  assert.equal(recorded.map((e) => [e.reason_code, e.target, e.client_address]), Array(MAX_AUTH_FAILURES).fill([ErrorCode.AUTH_TOKEN_MALFORMED, 'box', '127.0.0.1:50000']));
  assert.equal(ctx.opened, []);
});

a('a token split over keyboard-interactive prompts is joined', async (ctx) => {
  const long = await token(ctx, 1500);
  const parts: string[] = [];
  for (let i = 0; i < long.length; i += OPENSSH_PASSWORD_MAX) parts.push(long.slice(i, i + OPENSSH_PASSWORD_MAX));
  assert.ok(parts.length >= 2 && parts.at(-1)!.length < OPENSSH_PASSWORD_MAX, 'the token needs a continuation prompt');
  const attempt = fakeKeyboardAttempt('box', parts);
  ctx.conn.emit('authentication', attempt.ctx);
  await attempt.settled;
  assert.equal(attempt.outcome(), { kind: 'accepted' });
  assert.equal(attempt.prompts.map((p) => p.prompt), ['OIDC token (password): ', ...parts.slice(1).map((_, i) => `OIDC token, continued (part ${i + 2}): `)]);
  assert.match(attempt.prompts[1]!.instructions, `${OPENSSH_PASSWORD_MAX}-character limit`);
  assert.is(ctx.opened[0]?.identity.subject, 'repo:acme/app:ref:refs/heads/main');
});

a('a password of exactly the client\'s limit is refused with why it was probably cut', async (ctx) => {
  const attempt = fakePasswordAttempt('box', (await token(ctx, 1500)).slice(0, OPENSSH_PASSWORD_MAX));
  ctx.conn.emit('authentication', attempt.ctx);
  await attempt.settled;
  assert.is(attempt.outcome().kind, 'rejected');
  const [failed] = await failures(ctx, 1);
  assert.match(failed!.message, 'so it was probably cut: log in with keyboard-interactive');
});

a('an unknown target is refused after the token verified, and recorded with the subject it claimed', async (ctx) => {
  const attempt = fakePasswordAttempt('nowhere', await token(ctx));
  ctx.conn.emit('authentication', attempt.ctx);
  await attempt.settled;
  assert.is(attempt.outcome().kind, 'rejected');
  const [failed] = await failures(ctx, 1);
  assert.equal([failed!.reason_code, failed!.target, failed!.claimed_subject], [ErrorCode.TARGET_UNKNOWN, 'nowhere', 'repo:acme/app:ref:refs/heads/main']);
  assert.equal(ctx.opened, []);
});

a('a session start that cannot be recorded refuses the login and ends the connection', async (ctx) => {
  ctx.openedAnswer = false;
  const attempt = fakePasswordAttempt('box', await token(ctx));
  ctx.conn.emit('authentication', attempt.ctx);
  await attempt.settled;
  assert.equal(attempt.outcome(), { kind: 'rejected', methods: [], partial: false });
  assert.is(ctx.conn.ended, 1);
});

a('a login abandoned at the deadline ends the connection and is recorded', async (ctx) => {
  ctx.login.onAbandon('timeout');
  const [failed] = await failures(ctx, 1);
  assert.is(failed!.reason_code, ErrorCode.AUTH_TIMEOUT);
  assert.equal(ctx.terminated, ['login timeout']);
});

a('methods other than tokens are refused when no key is registered', async (ctx) => {
  let methods: string[] | undefined;
  ctx.conn.emit('authentication', { method: 'none', username: 'box', reject: (m: string[]) => (methods = m), accept: () => undefined });
  assert.equal(methods, ['password', 'keyboard-interactive']);
});

a.run();

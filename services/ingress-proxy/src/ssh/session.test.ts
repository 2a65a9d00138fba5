import { suite } from '../../../../test/harness/suite.js';
import * as assert from 'uvu/assert';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import ssh2, { type ClientInfo } from 'ssh2';
import { parseConfig } from '../../../../core/src/config.js';
import { ErrorCode } from '../../../../core/src/errors.js';
import { devTrustedIssuer, mintDevToken } from '../../../../core/src/identity/dev-issuer.js';
import { TokenVerifier } from '../../../../core/src/identity/oidc.js';
import { loginGuard, loginThrottle } from '../../../../core/src/logins/from-config.js';
import { PendingLogin } from '../../../../core/src/logins/pending.js';
import { silentLogger } from '../../../../core/src/log.js';
import type { Response, SessionClosed, SessionOpened } from '../../../../schemas/src/events.js';
import { FakeConnection, FakeReply, FakeSession, fakePasswordAttempt } from '../../../../test/harness/fake-ssh2.js';
import { PolicyBus } from '../../../../test/harness/policy-bus.js';
import { auditMasker, SSH_UNIT_POLICY } from '../../../../test/harness/ssh-gate-fixture.js';
import { MAX_CHANNELS } from './gate.js';
import { parsePinnedHostKey } from './host-key.js';
import { SshSession } from './session.js';

/*
 * The composition: one fake client connection wired to the login, the gate, the channels and
 * forwarding; the bus, the policy service and the token verifier are real. The target's
 * address is a closed local port, so Agate's own connection to it fails.
 */
interface Ctx { pb: PolicyBus; dir: string; conn: FakeConnection; session: SshSession }

const s = suite<Ctx>('ssh/session');
s.before.each(async (ctx) => {
  ctx.pb = await PolicyBus.start(SSH_UNIT_POLICY);
  ctx.dir = mkdtempSync(join(tmpdir(), 'agate-ssh-session-'));
  ctx.conn = new FakeConnection();
  const logins = parseConfig(SSH_UNIT_POLICY, 'session.yaml').logins;
  const box = { name: 'box', host: '127.0.0.1', port: 1, user: 'agate', hostKey: parsePinnedHostKey(ssh2.utils.generateKeyPairSync('ed25519').public.split(' ').slice(0, 2).join(' ')) };
  ctx.session = new SshSession(ctx.conn.asConnection(), { ip: '127.0.0.1', port: 50000 } as ClientInfo, {
    bus: ctx.pb.bus, verifier: new TokenVerifier([await devTrustedIssuer(ctx.dir, 'agate')]), resolveTarget: (n) => (n === 'box' ? box : undefined),
    proxyId: 'unit', verdictTimeoutMs: 10_000, connectTimeoutMs: 2_000, logger: silentLogger, audit: auditMasker(),
    logins: loginGuard(logins, loginThrottle(logins)),
  }, new PendingLogin('127.0.0.1', () => undefined));
});
s.after.each(async (ctx) => {
  ctx.conn.emit('close');
  await ctx.session.finished;
  await ctx.pb.stop();
  rmSync(ctx.dir, { recursive: true, force: true });
});

function openChannel(ctx: Ctx): { session?: FakeSession; rejected: boolean } {
  const result: { session?: FakeSession; rejected: boolean } = { rejected: false };
  ctx.conn.emit('session', () => (result.session = new FakeSession()).asSession(), () => (result.rejected = true));
  return result;
}

s(`the ${MAX_CHANNELS + 1}th session channel is refused once; a closed channel frees one slot`, (ctx) => {
  assert.ok(ctx.session.idle);
  const open = Array.from({ length: MAX_CHANNELS }, () => openChannel(ctx));
  assert.ok(open.every((o) => o.session !== undefined && !o.rejected));
  assert.not.ok(ctx.session.idle);
  assert.ok(openChannel(ctx).rejected, 'the 17th');
  open[0]!.session!.emit('close');
  open[0]!.session!.emit('close');
  assert.not.ok(openChannel(ctx).rejected, 'the freed slot');
  assert.ok(openChannel(ctx).rejected, 'and no more');
});

s('global requests are refused before the login, and unix-socket forwards always', (ctx) => {
  const forward = new FakeReply();
  ctx.conn.emit('request', forward.accept, forward.reject, 'tcpip-forward', { bindAddr: '127.0.0.1', bindPort: 0 });
  const streamlocal = new FakeReply();
  ctx.conn.emit('openssh.streamlocal', streamlocal.accept, streamlocal.reject, { socketPath: '/tmp/x' });
  assert.equal([forward.rejected, streamlocal.rejected], [1, 1]);
});

s('a login opens the session; an exec is decided, then refused for want of the target; the close is recorded with its count', async (ctx) => {
  const token = await mintDevToken(ctx.dir, { subject: 'repo:acme/app:ref:refs/heads/main', audience: 'agate', ttlSeconds: 300 });
  const attempt = fakePasswordAttempt('box', token);
  ctx.conn.emit('authentication', attempt.ctx);
  await attempt.settled;
  assert.is(attempt.outcome().kind, 'accepted');
  const opened = await ctx.pb.waitFor((es) => es.find((e): e is SessionOpened => e.type === 'SessionOpened'));
  assert.equal([opened.session_id, opened.target, opened.identity.subject], [ctx.session.id, 'box', 'repo:acme/app:ref:refs/heads/main']);

  const channel = openChannel(ctx);
  const exec = new FakeReply();
  channel.session!.emit('exec', exec.accept, exec.reject, { command: 'ls' });
  const response = await ctx.pb.waitFor((es) => es.find((e): e is Response => e.type === 'Response'));
  assert.equal([response.status, response.error_code], ['error', ErrorCode.UPSTREAM_UNREACHABLE]);
  assert.is(exec.channel.exitStatus, 255);

  ctx.conn.emit('close');
  await ctx.session.finished;
  const closed = await ctx.pb.waitFor((es) => es.find((e): e is SessionClosed => e.type === 'SessionClosed'));
  assert.equal([closed.session_id, closed.commands, closed.reason], [ctx.session.id, 1, 'client disconnected']);
});

s.run();

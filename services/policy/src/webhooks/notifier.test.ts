import { suite } from '../../../../test/harness/suite.js';
import * as assert from 'uvu/assert';
import { randomUUID } from 'node:crypto';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { LocalBus } from '../../../../core/src/bus/local-bus.js';
import { ConfigError } from '../../../../core/src/errors.js';
import { createLogger, silentLogger, type Logger } from '../../../../core/src/log.js';
import { parseConfig } from '../../../../core/src/config.js';
import { verifyWebhook } from '../../../../core/src/webhooks/signature.js';
import { nowMicros, type ApprovalDecision, type ApprovalRequested, type Command, type Verdict } from '../../../../schemas/src/events.js';
import { SAMPLES } from '../../../../schemas/src/samples.js';
import { CompiledPolicy, loadParsers } from '../engine.js';
import { PolicyService } from '../service.js';
import { ApprovalWebhooks } from './notifier.js';
import { until, untilTrue } from '../../../../test/harness/until.js';

/*
 * The approval webhooks end to end over a real LocalBus and a real HTTP receiver on loopback:
 * the receiver verifies every signature with the documented function, answers the first
 * delivery 500 and sees it retried, and the verdict never waits for it.
 */
const SECRET = 'whsec-test-0123456789';

interface Received { headers: Record<string, string | string[] | undefined>; body: string; status: number; verified: boolean }
interface Ctx { dir: string; bus: LocalBus; service: PolicyService; webhooks: ApprovalWebhooks; server: Server; received: Received[]; logs: string[]; failFirst: number }

const hooks = suite<Ctx>('ApprovalWebhooks');

hooks.before.each(async (ctx) => {
  await loadParsers();
  ctx.dir = mkdtempSync(join(tmpdir(), 'agate-webhooks-'));
  ctx.received = [];
  ctx.logs = [];
  ctx.failFirst = 1;
  ctx.server = createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      const body = Buffer.concat(chunks).toString('utf8');
      const verified = verifyWebhook(SECRET, req.headers['agate-signature'] as string | undefined, body).ok;
      const status = !verified ? 400 : ctx.failFirst-- > 0 ? 500 : 204;
      ctx.received.push({ headers: req.headers, body, status, verified });
      res.writeHead(status).end();
    });
  });
  await new Promise<void>((r) => ctx.server.listen(0, '127.0.0.1', r));
  const port = (ctx.server.address() as AddressInfo).port;
  writeFileSync(join(ctx.dir, 'secret'), `${SECRET}\n`);
  const config = parseConfig(`
identity: { dev_issuer: { enabled: true } }
approvals:
  webhooks:
    - { url: "http://127.0.0.1:${port}/hooks/agate?token=query-secret", secret_file: "${join(ctx.dir, 'secret')}" }
policy:
  default: allow
  rules:
    - { id: hold-drops, action: hold, match: { sql: { statements: [DropStmt] } }, approval: { timeout_s: 30 } }
`, 'hooks.yaml');
  ctx.bus = new LocalBus({ dir: join(ctx.dir, 'bus'), fsync: false, logger: silentLogger });
  ctx.service = new PolicyService({ bus: ctx.bus, policy: new CompiledPolicy(config.policy), logger: silentLogger, staleAfterMs: 5000 });
  await ctx.service.start();
  const sink = (line: string) => void ctx.logs.push(line);
  const logger: Logger = createLogger('debug', {}, sink);
  ctx.webhooks = new ApprovalWebhooks({ bus: ctx.bus, webhooks: config.approvals.webhooks, logger, source: 'hooks.yaml', retryBaseMs: 50 });
  await ctx.webhooks.start();
});

hooks.after.each(async (ctx) => {
  await ctx.webhooks.stop();
  await ctx.service.stop();
  await ctx.bus.close();
  await new Promise((r) => ctx.server.close(r));
  rmSync(ctx.dir, { recursive: true, force: true });
});

/** The in-process receiver answers within milliseconds. */
const SOON = { timeoutMs: 5_000, everyMs: 10 };

hooks('a hold, an approval and the release are POSTed signed; a 500 is retried; old events are not sent', async (ctx) => {
  // History, not news: an expired hold and an old answer on the stream are not sent.
  await ctx.bus.publish({ ...SAMPLES.ApprovalRequested, event_id: randomUUID(), time: nowMicros() - 7_200e6, expires_at: nowMicros() - 3_600e6 });
  await ctx.bus.publish({ ...SAMPLES.ApprovalDecision, event_id: randomUUID(), time: nowMicros() - 7_200e6 });
  const c: Command = { ...SAMPLES.Command, event_id: randomUUID(), time: nowMicros(), text: 'DROP TABLE items' };
  let request: ApprovalRequested | undefined;
  await ctx.bus.subscribe({ group: 'watch', types: ['ApprovalRequested'], handler: async (b) => void (request ??= (b as ApprovalRequested[]).find((e) => e.command_id === c.event_id)) });
  const outcome = ctx.bus.requestVerdict(c, 2000, { onHold: () => undefined });
  const r = await until('the hold requested', () => request, SOON);
  const answer: ApprovalDecision = {
    type: 'ApprovalDecision', event_id: randomUUID(), time: nowMicros(), session_id: r.session_id, approval_id: r.approval_id, command_id: r.command_id,
    decision: 'approve', approver_issuer: 'https://idp.example.com', approver_subject: 'alice', approver_claims: {}, comment: 'ok', refused_reason: null,
  };
  // A refused attempt first: notified as approval.refused, and it decides nothing.
  await ctx.bus.publish({ ...answer, type: 'ApprovalRefused', event_id: randomUUID(), approver_subject: 'bob', decision: 'deny', refused_reason: 'identity bob does not hold the approver role' });
  await ctx.bus.publish(answer);
  const v = await outcome;
  assert.is((v as { verdict: Verdict }).verdict.decision, 'allow'); // the receiver's 500 did not hold the verdict up

  const accepted = await until('four deliveries accepted', () => {
    const ok = ctx.received.filter((x) => x.status === 204);
    return ok.length >= 4 ? ok : undefined;
  }, SOON);
  assert.ok(ctx.received.every((x) => x.verified), 'every delivery carries a valid signature');
  // The first delivery got a 500 and came again with the same delivery id (a fresh signature).
  assert.is(ctx.received[0]!.status, 500);
  assert.is(ctx.received[1]!.headers['agate-delivery'], ctx.received[0]!.headers['agate-delivery']);
  assert.is(ctx.received[1]!.body, ctx.received[0]!.body);
  const bodies = accepted.map((x) => JSON.parse(x.body) as { type: string; data: Record<string, unknown> });
  assert.equal(bodies.map((b) => b.type), ['approval.requested', 'approval.refused', 'approval.decision', 'approval.resolved']);
  assert.is(bodies[0]!.data.approval_id, r.approval_id);
  assert.is(bodies[0]!.data.text, 'DROP TABLE items');
  assert.equal([bodies[1]!.data.approver, bodies[1]!.data.decision, bodies[1]!.data.refused_reason], [{ issuer: 'https://idp.example.com', subject: 'bob' }, 'deny', 'identity bob does not hold the approver role']);
  assert.equal(bodies[2]!.data.approver, { issuer: 'https://idp.example.com', subject: 'alice' });
  assert.is(bodies[3]!.data.decision, 'allow');
  assert.equal(accepted.map((x) => x.headers['agate-event']), ['approval.requested', 'approval.refused', 'approval.decision', 'approval.resolved']);
  // The failure was logged, naming the receiver without its query string, the secret or the signature.
  const log = ctx.logs.join('\n');
  assert.match(log, /webhook delivery failed; will retry/);
  assert.match(log, /127\.0\.0\.1:\d+\/hooks\/agate/);
  for (const secret of [SECRET, 'query-secret', String(ctx.received[0]!.headers['agate-signature'])]) assert.not.ok(log.includes(secret), 'no secret in the logs');
});

hooks('a receiver that keeps failing is given up after max_attempts, and logged', async (ctx) => {
  ctx.failFirst = 1000;
  const c: Command = { ...SAMPLES.Command, event_id: randomUUID(), time: nowMicros(), text: 'DROP TABLE gone' };
  // No hold handler: the hold is this waiter's final answer, so no 30 s hold timer outlives the test.
  const outcome = ctx.bus.requestVerdict(c, 500);
  await untilTrue('the receiver given up', () => ctx.logs.some((l) => l.includes('webhook notification given up')), { ...SOON, timeoutMs: 10_000 });
  assert.is(ctx.received.filter((x) => x.verified).length, 6); // max_attempts default
  assert.is(((await outcome) as { verdict: Verdict }).verdict.decision, 'hold');
  await ctx.service.stop(); // drops the pending approval so the test ends quickly
});

hooks('a missing secret stops startup with a precise error', () => {
  const config = parseConfig(`
identity: { dev_issuer: { enabled: true } }
approvals: { webhooks: [{ url: "https://hooks.example/agate", secret_env: AGATE_TEST_NO_SUCH_VAR }] }
`, 'bad.yaml');
  try {
    new ApprovalWebhooks({ bus: undefined as never, webhooks: config.approvals.webhooks, logger: silentLogger, source: 'bad.yaml' });
    assert.unreachable();
  } catch (err) {
    assert.instance(err, ConfigError);
    assert.match((err as Error).message, /bad\.yaml: approvals\.webhooks\[0\]: environment variable AGATE_TEST_NO_SUCH_VAR is not set/);
  }
  assert.throws(() => parseConfig('approvals: { webhooks: [{ url: "https://h.example", secret_env: A, secret_file: b }] }', 'x.yaml'), /exactly one of secret_env, secret_file/);
});

hooks.run();

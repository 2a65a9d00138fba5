import { suite } from '../../../test/harness/suite.js';
import * as assert from 'uvu/assert';
import { randomUUID } from 'node:crypto';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { Bus } from '../../../core/src/bus/bus.js';
import { LocalBus } from '../../../core/src/bus/local-bus.js';
import { parseConfig } from '../../../core/src/config.js';
import { silentLogger } from '../../../core/src/log.js';
import { nowMicros, PROXY_DECIDED_ATTRIBUTE, type AgateEvent, type ApprovalDecision, type ApprovalRequested, type Command, type Verdict } from '../../../schemas/src/events.js';
import { SAMPLES } from '../../../schemas/src/samples.js';
import { CompiledPolicy, loadParsers } from './engine.js';
import { PolicyService } from './service.js';
import { until } from '../../../test/harness/until.js';

/*
 * The approval workflow inside the policy service over a real LocalBus: a hold, then the final
 * verdict once enough distinct approvers answered, or a deny, or the expiry.
 */
const policy = new CompiledPolicy(parseConfig(`
identity: { dev_issuer: { enabled: true } }
policy:
  default: allow
  rules:
    - id: two-dbas
      action: hold
      match: { sql: { statements: [DropStmt] } }
      approval: { approvers: { claims: { team: dba } }, required: 2, timeout_s: 0.4 }
`, 'svc.yaml').policy);

interface Ctx { dir: string; bus: Bus; service: PolicyService; seen: AgateEvent[] }

/**
 * The same bus without inline decisions: commands reach policy through its consumer group and
 * verdicts come back published, as on Kafka.
 */
const fromTheLog = (bus: LocalBus): Bus => ({
  publish: (e) => bus.publish(e),
  requestVerdict: (c, ms, o) => bus.requestVerdict(c, ms, o),
  subscribe: (o) => bus.subscribe(o),
  close: () => bus.close(),
});

for (const [variant, wrap] of [['decided as written (embedded)', (b: LocalBus): Bus => b], ['decided from the log (as on Kafka)', fromTheLog]] as const) {
const svc = suite<Ctx>(`PolicyService approvals, ${variant}`);

svc.before.each(async (ctx) => {
  await loadParsers();
  ctx.dir = mkdtempSync(join(tmpdir(), 'agate-policy-'));
  ctx.bus = wrap(new LocalBus({ dir: ctx.dir, fsync: false, logger: silentLogger }));
  ctx.service = new PolicyService({ bus: ctx.bus, policy, logger: silentLogger, staleAfterMs: 5000 });
  await ctx.service.start();
  // The first command warms the parsers and the log up (a few hundred ms on a busy machine),
  // which the approvals' 0.4 s timeout below must not pay for.
  await ctx.bus.requestVerdict({ ...SAMPLES.Command, event_id: randomUUID(), time: nowMicros(), text: 'SELECT 1' }, 5000);
  ctx.seen = [];
  await ctx.bus.subscribe({ group: 'watch', types: ['Verdict', 'ApprovalRequested'], handler: async (b) => void ctx.seen.push(...b) });
});

svc.after.each(async (ctx) => {
  await ctx.service.stop();
  await ctx.bus.close();
  rmSync(ctx.dir, { recursive: true, force: true });
});

const command = (): Command => ({ ...SAMPLES.Command, event_id: randomUUID(), time: nowMicros(), text: 'DROP TABLE items' });

/** Runs the command as a proxy would; resolves with the holds seen and the final outcome. */
async function held(ctx: Ctx, c: Command, answer: (request: ApprovalRequested) => Promise<void>) {
  const holds: Verdict[] = [];
  const outcome = ctx.bus.requestVerdict(c, 1000, { onHold: (v) => void holds.push(v) });
  const request = await until('the ApprovalRequested', () => ctx.seen.find((e): e is ApprovalRequested => e.type === 'ApprovalRequested' && e.command_id === c.event_id), { timeoutMs: 5_000, everyMs: 10 });
  await answer(request);
  return { holds, outcome: await outcome, request };
}

const decision = (request: ApprovalRequested, subject: string, choice: 'approve' | 'deny' = 'approve', claims: Record<string, string> = { team: 'dba' }): ApprovalDecision => ({
  type: 'ApprovalDecision', event_id: randomUUID(), time: nowMicros(), session_id: request.session_id, approval_id: request.approval_id,
  command_id: request.command_id, decision: choice, approver_issuer: 'https://idp.example.com', approver_subject: subject, approver_claims: claims,
  comment: null, refused_reason: null,
});

svc('two distinct approvers release the command; the same approver twice counts once', async (ctx) => {
  const c = command();
  const { holds, outcome, request } = await held(ctx, c, async (r) => {
    await ctx.bus.publish(decision(r, 'alice'));
    await ctx.bus.publish(decision(r, 'alice'));
    await ctx.bus.publish(decision(r, 'mallory', 'approve', { team: 'web' })); // lacks the claim: ignored
    await new Promise((res) => setTimeout(res, 50));
    await ctx.bus.publish(decision(r, 'bob'));
  });
  assert.is(holds.length, 1);
  assert.is(holds[0]!.approval_id, request.approval_id);
  assert.is(request.required, 2);
  assert.is(outcome.kind, 'verdict');
  const v = (outcome as { verdict: Verdict }).verdict;
  assert.equal([v.decision, v.rule_id, v.approval_id], ['allow', 'two-dbas', request.approval_id]);
  assert.match(v.reason, /approved by alice, bob/);
});

svc('one deny refuses at once', async (ctx) => {
  const { outcome } = await held(ctx, command(), (r) => ctx.bus.publish(decision(r, 'carol', 'deny')));
  const v = (outcome as { verdict: Verdict }).verdict;
  assert.equal([v.decision, v.reason], ['deny', 'denied by approver carol']);
});

svc('self-approval by the requester is ignored, and the approval expires', async (ctx) => {
  const { outcome, request } = await held(ctx, command(), async (r) => {
    const self = { ...decision(r, r.requester_subject), approver_issuer: r.requester_issuer };
    await ctx.bus.publish(self);
  });
  const v = (outcome as { verdict: Verdict }).verdict;
  assert.is(v.decision, 'deny');
  assert.ok(v.time >= request.expires_at, `the timeout verdict is stamped at or after the expiry (${v.time - request.expires_at} µs)`);
  assert.match(v.reason, /no approval within 0 s \(0 of 2\)/);
});

svc('without onHold a hold verdict is final (older proxies refuse it)', async (ctx) => {
  const outcome = await ctx.bus.requestVerdict(command(), 1000);
  assert.is((outcome as { verdict: Verdict }).verdict.decision, 'hold');
  await new Promise((r) => setTimeout(r, 450)); // let the expiry run before the service stops
});

svc('a question (attributes.access_review) is answered hold at once, with no approval to wait for', async (ctx) => {
  const c = { ...command(), attributes: { access_review: 'self' } };
  const outcome = await ctx.bus.requestVerdict(c, 1000, { onHold: () => assert.unreachable('a question is never held') });
  assert.ok(outcome.kind === 'verdict');
  assert.equal([outcome.verdict.decision, outcome.verdict.rule_id, outcome.verdict.approval_id], ['hold', 'two-dbas', null]);
  await new Promise((r) => setTimeout(r, 50));
  assert.not.ok(ctx.seen.some((e) => e.type === 'ApprovalRequested'), 'an approval was requested for a question');
});

svc('a command recorded after it did not run (attributes.settled) is never held for an approver', async (ctx) => {
  const c = { ...command(), attributes: { settled: 'skipped' } };
  const outcome = await ctx.bus.requestVerdict(c, 1000, { onHold: () => assert.unreachable('a settled command is never held') });
  assert.ok(outcome.kind === 'verdict');
  assert.is(outcome.verdict.approval_id, null);
  await new Promise((r) => setTimeout(r, 50));
  assert.not.ok(ctx.seen.some((e) => e.type === 'ApprovalRequested'), 'an approval was requested for a settled command');
});

svc('a command its proxy decided by a built-in rule (attributes.proxy_decided) gets no verdict from policy; any other value is decided as usual', async (ctx) => {
  const decided = { ...command(), attributes: { [PROXY_DECIDED_ATTRIBUTE]: 'agate.k8s-discovery' } };
  const notBuiltin = { ...command(), text: 'SELECT 2', attributes: { [PROXY_DECIDED_ATTRIBUTE]: 'two-dbas' } };
  await ctx.bus.publish(decided);
  // Decided in log order: once the next command's verdict is out, the marked one was passed over.
  const outcome = await ctx.bus.requestVerdict(notBuiltin, 2000);
  assert.ok(outcome.kind === 'verdict');
  assert.equal([outcome.verdict.decision, outcome.verdict.source], ['allow', 'policy']);
  await until('the second verdict seen', () => (ctx.seen.some((e) => e.type === 'Verdict' && e.command_id === notBuiltin.event_id) ? true : undefined), { timeoutMs: 5_000, everyMs: 10 });
  assert.equal(ctx.seen.filter((e) => 'command_id' in e && e.command_id === decided.event_id), []);
});

svc.run();
}

/*
 * A hold decided here whose write then fails must leave nothing behind: no approval held, so no
 * expiry deny recorded later for a command or a hold the log lacks.
 */
const dropCommand = (): Command => ({ ...SAMPLES.Command, event_id: randomUUID(), time: nowMicros(), text: 'DROP TABLE items' });
const failing = suite<{ dir: string; local: LocalBus; service?: PolicyService }>('PolicyService: a hold whose write fails');

failing.before.each(async (ctx) => {
  await loadParsers();
  ctx.dir = mkdtempSync(join(tmpdir(), 'agate-policy-'));
  ctx.local = new LocalBus({ dir: ctx.dir, fsync: false, logger: silentLogger });
});

failing.after.each(async (ctx) => {
  await ctx.service?.stop();
  await ctx.local.close();
  rmSync(ctx.dir, { recursive: true, force: true });
});

/** Every event in the log, read through a consumer group of its own. */
async function logged(bus: Bus): Promise<AgateEvent[]> {
  const all: AgateEvent[] = [];
  const sub = await bus.subscribe({ group: `read-${randomUUID()}`, types: ['Command', 'Verdict', 'ApprovalRequested'], handler: async (b) => void all.push(...b) });
  await new Promise((r) => setTimeout(r, 100));
  await sub.close();
  return all;
}

failing('decided as written: the command cannot be written, so its hold is never held and never expires into a deny', async (ctx) => {
  ctx.service = new PolicyService({ bus: ctx.local, policy, logger: silentLogger, staleAfterMs: 5000 });
  await ctx.service.start();
  // An attribute value the Avro schema cannot encode: the write fails after policy decided it.
  const c = { ...dropCommand(), attributes: { note: 7 as unknown as string } };
  let failure: unknown;
  await ctx.local.requestVerdict(c, 1000, { onHold: () => assert.unreachable('a hold the log lacks reached the proxy') }).catch((err: unknown) => (failure = err));
  assert.ok(failure instanceof Error, 'the write did not fail');
  await new Promise((r) => setTimeout(r, 700)); // past the approval's 0.4 s timeout
  assert.equal(await logged(ctx.local), [], 'events were recorded for a command that is not in the log');
});

failing('decided from the log: a hold verdict Kafka did not take is decided again, and only the recorded hold expires', async (ctx) => {
  // As on Kafka: the first hold verdict's send fails (after its approval request was sent).
  let refused: Verdict | undefined;
  const bus: Bus = {
    ...fromTheLog(ctx.local),
    publish: (e) => {
      if (refused === undefined && e.type === 'Verdict' && e.decision === 'hold') {
        refused = e;
        return Promise.reject(new Error('injected: the broker did not acknowledge the send'));
      }
      return ctx.local.publish(e);
    },
  };
  ctx.service = new PolicyService({ bus, policy, logger: silentLogger, staleAfterMs: 5000 });
  await ctx.service.start();
  const c = dropCommand();
  const holds: Verdict[] = [];
  const outcome = await ctx.local.requestVerdict(c, 2000, { onHold: (v) => void holds.push(v) });
  assert.ok(refused !== undefined, 'the injected failure never happened');
  assert.is(holds.length, 1);
  assert.is.not(holds[0]!.approval_id, refused.approval_id, 'the hold heard is the retry\'s');
  assert.ok(outcome.kind === 'verdict');
  assert.equal([outcome.verdict.decision, outcome.verdict.approval_id], ['deny', holds[0]!.approval_id]);
  await new Promise((r) => setTimeout(r, 700)); // past the failed attempt's own 0.4 s timeout
  const verdicts = (await logged(ctx.local)).filter((e): e is Verdict => e.type === 'Verdict' && e.command_id === c.event_id);
  assert.equal(verdicts.map((v) => [v.decision, v.approval_id]), [['hold', holds[0]!.approval_id], ['deny', holds[0]!.approval_id]]);
});

failing.run();

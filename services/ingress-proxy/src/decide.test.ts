import { suite } from '../../../test/harness/suite.js';
import * as assert from 'uvu/assert';
import { randomUUID } from 'node:crypto';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { Bus } from '../../../core/src/bus/bus.js';
import { LocalBus } from '../../../core/src/bus/local-bus.js';
import { VerdictWaiters } from '../../../core/src/bus/verdict-waiters.js';
import { AgateError, ErrorCode } from '../../../core/src/errors.js';
import { parseConfig } from '../../../core/src/config.js';
import { silentLogger } from '../../../core/src/log.js';
import { nowMicros, type AgateEvent, type Command } from '../../../schemas/src/events.js';
import { SAMPLES } from '../../../schemas/src/samples.js';
import { CompiledPolicy, loadParsers } from '../../policy/src/engine.js';
import { PolicyService } from '../../policy/src/service.js';
import { clientMasker, decide, DEADLINE_RULE, refusalText, type Decided } from './decide.js';
import { SessionEvents } from './session-events.js';

/* The one decision step every proxy takes, over a real LocalBus and the real policy service. */
const policy = new CompiledPolicy(parseConfig(`
identity: { dev_issuer: { enabled: true } }
masking: { sets: { pii: { columns: [email], detectors: [email] } } }
policy:
  default: allow
  rules:
    - { id: no-drop, action: deny, message: dropping needs a human, match: { sql: { statements: [DropStmt] } } }
    - { id: mask-people, action: allow, mask_client: pii, match: { sql: { tables: [people] } } }
`, 'decide.yaml').policy);

interface Ctx { dir: string; bus: LocalBus; service?: PolicyService; seen: AgateEvent[] }
const d = suite<Ctx>('decide');

d.before.each(async (ctx) => {
  await loadParsers();
  ctx.dir = mkdtempSync(join(tmpdir(), 'agate-decide-'));
  ctx.bus = new LocalBus({ dir: ctx.dir, fsync: false, logger: silentLogger });
  ctx.seen = [];
  await ctx.bus.subscribe({ group: 'watch', types: ['Verdict'], handler: async (b) => void ctx.seen.push(...b) });
});
d.after.each(async (ctx) => {
  await ctx.service?.stop();
  ctx.service = undefined;
  await ctx.bus.close().catch(() => undefined);
  rmSync(ctx.dir, { recursive: true, force: true });
});

const command = (text: string): Command => ({ ...SAMPLES.Command, event_id: randomUUID(), time: nowMicros(), text, attributes: {} });
const deps = (ctx: Ctx, verdictTimeoutMs = 2_000) => ({ bus: ctx.bus, verdictTimeoutMs, events: new SessionEvents(ctx.bus, silentLogger), log: silentLogger });
async function withPolicy(ctx: Ctx, staleAfterMs = 5_000): Promise<void> {
  ctx.service = new PolicyService({ bus: ctx.bus, policy, logger: silentLogger, staleAfterMs });
  await ctx.service.start();
}

d('allow runs with no mask set of its own; the target default applies, and one not configured is named', async (ctx) => {
  await withPolicy(ctx);
  const r = await decide(command('SELECT 1'), deps(ctx));
  assert.is(r.kind, 'run');
  if (r.kind !== 'run') return;
  assert.equal([r.verdict.decision, r.maskSet], ['allow', null]);
  const maskers = new Map([['strict', 'the strict masker']]);
  assert.equal(clientMasker(r, maskers, undefined), { ok: true, masker: undefined });
  assert.equal(clientMasker(r, maskers, 'strict'), { ok: true, masker: 'the strict masker' });
  assert.equal(clientMasker(r, maskers, 'gone'), { ok: false, missing: 'gone' });
});

d('mask runs with the verdict\'s set, which wins over the target default', async (ctx) => {
  await withPolicy(ctx);
  const r = await decide(command('SELECT email FROM people'), deps(ctx));
  assert.equal(r.kind === 'run' ? [r.verdict.decision, r.maskSet] : r.kind, ['mask', 'pii']);
  if (r.kind === 'run') assert.equal(clientMasker(r, new Map([['pii', 1], ['strict', 2]]), 'strict'), { ok: true, masker: 1 });
});

d('deny refuses, naming the rule and its reason', async (ctx) => {
  await withPolicy(ctx);
  const r = await decide(command('DROP TABLE people'), deps(ctx));
  assert.is(r.kind, 'denied');
  assert.is(refusalText(r as Exclude<Decided, { kind: 'run' }>, 'statement'), 'Agate refused the statement by rule "no-drop": dropping needs a human');
});

d('no verdict within the deadline refuses, and the deny it amounts to is recorded', async (ctx) => {
  const c = command('SELECT 1'); // no policy service is running
  const r = await decide(c, deps(ctx, 100));
  assert.is(r.kind, 'deadline');
  assert.is(refusalText(r as Exclude<Decided, { kind: 'run' }>, 'request'), 'Agate refused the request: no verdict within 100 ms; refused (fail closed)');
  for (let i = 0; i < 100 && !ctx.seen.some((e) => e.type === 'Verdict' && e.command_id === c.event_id); i++) await new Promise((res) => setTimeout(res, 10));
  const v = ctx.seen.find((e) => e.type === 'Verdict' && e.command_id === c.event_id);
  assert.equal(v?.type === 'Verdict' ? [v.decision, v.rule_id, v.source] : undefined, ['deny', DEADLINE_RULE, 'deadline']);
});

/**
 * A broker that went away with the command in flight: its publish outlives the deadline, then
 * fails. (Issue 25 item 5: the statement was refused and its deny recorded, but not the Command.)
 */
function brokerAwayDuringCommand(bus: LocalBus, failAfterMs: number): Bus {
  const waiters = new VerdictWaiters();
  let first = true;
  const publish = (event: AgateEvent): Promise<void> => {
    if (event.type !== 'Command' || !first) return bus.publish(event);
    first = false;
    return new Promise((_, reject) => setTimeout(() => reject(new AgateError(ErrorCode.BUS_WRITE_FAILED, 'broker away')), failAfterMs));
  };
  return {
    publish,
    requestVerdict: (command, deadlineMs, options = {}) => waiters.wait(command, deadlineMs, options, () => publish(command)),
    subscribe: (options) => bus.subscribe(options),
    close: () => bus.close(),
  };
}

d('a command whose publish fails after the deadline is still recorded, ahead of its deny, and policy does not decide it', async (ctx) => {
  await withPolicy(ctx, 100);
  const seen: string[] = [];
  const c = command('SELECT 1');
  await ctx.bus.subscribe({ group: 'order', types: ['Command', 'Verdict'], handler: async (b) => {
    for (const e of b) if (e.session_id === c.session_id) seen.push(e.type === 'Verdict' ? `Verdict:${e.source}:${e.rule_id}` : `Command:${e.event_id}`);
  } });
  const events = new SessionEvents(ctx.bus, silentLogger, { firstDelayMs: 10, maxDelayMs: 50, giveUpAfterMs: 5_000 });
  const r = await decide(c, { bus: brokerAwayDuringCommand(ctx.bus, 250), verdictTimeoutMs: 100, events, log: silentLogger });
  assert.is(r.kind, 'deadline');
  await events.drained();
  for (let i = 0; i < 100 && seen.length < 2; i++) await new Promise((res) => setTimeout(res, 10));
  await new Promise((res) => setTimeout(res, 200)); // room for a policy verdict, were one coming
  assert.equal(seen, [`Command:${c.event_id}`, `Verdict:deadline:${DEADLINE_RULE}`]);
});

d('a command whose publish completes after the deadline is recorded once, ahead of its deny', async (ctx) => {
  const seen: string[] = [];
  const c = command('SELECT 1');
  await ctx.bus.subscribe({ group: 'order', types: ['Command', 'Verdict'], handler: async (b) => {
    for (const e of b) if (e.session_id === c.session_id) seen.push(e.type === 'Verdict' ? `Verdict:${e.source}:${e.rule_id}` : `Command:${e.event_id}`);
  } });
  const waiters = new VerdictWaiters();
  const slow: Bus = {
    publish: (e) => ctx.bus.publish(e),
    requestVerdict: (command, deadlineMs, options = {}) => waiters.wait(command, deadlineMs, options, () => new Promise((res) => setTimeout(res, 250)).then(() => ctx.bus.publish(command))),
    subscribe: (o) => ctx.bus.subscribe(o),
    close: () => ctx.bus.close(),
  };
  const events = new SessionEvents(ctx.bus, silentLogger);
  assert.is((await decide(c, { bus: slow, verdictTimeoutMs: 100, events, log: silentLogger })).kind, 'deadline');
  await events.drained();
  for (let i = 0; i < 100 && seen.length < 2; i++) await new Promise((res) => setTimeout(res, 10));
  assert.equal(seen, [`Command:${c.event_id}`, `Verdict:deadline:${DEADLINE_RULE}`]);
});

d('a command refused while the session\'s earlier events still wait for the bus is queued behind them, and nothing is left unhandled', async (ctx) => {
  const unhandled: unknown[] = [];
  const onUnhandled = (reason: unknown) => void unhandled.push(reason);
  process.on('unhandledRejection', onUnhandled);
  try {
    let slow = true;
    const waiting: Bus = {
      publish: (e) => (slow ? new Promise((res) => setTimeout(res, 300)).then(() => ctx.bus.publish(e)) : ctx.bus.publish(e)),
      requestVerdict: () => Promise.reject(new AgateError(ErrorCode.BUS_WRITE_FAILED, 'broker away')),
      subscribe: (o) => ctx.bus.subscribe(o),
      close: () => ctx.bus.close(),
    };
    const events = new SessionEvents(waiting, silentLogger);
    const c = command('SELECT 1');
    const earlier = { ...SAMPLES.Response, event_id: randomUUID(), session_id: c.session_id } as AgateEvent;
    void events.emitLogged(earlier); // a statement's response, still waiting for the bus
    assert.is((await decide(c, { bus: waiting, verdictTimeoutMs: 50, events, log: silentLogger })).kind, 'unrecorded');
    await new Promise((res) => setTimeout(res, 100)); // unhandled rejections are reported after a turn
    slow = false;
    await events.drained();
    await new Promise((res) => setTimeout(res, 50));
    assert.equal(unhandled, []);
  } finally {
    process.off('unhandledRejection', onUnhandled);
  }
});

d('a bus that will not take the command refuses it as unrecorded', async (ctx) => {
  await ctx.bus.close();
  const r = await decide(command('SELECT 1'), deps(ctx));
  assert.is(r.kind, 'unrecorded');
  assert.is(refusalText(r as Exclude<Decided, { kind: 'run' }>, 'command'), 'Agate refused the command: the audit log is unavailable, so it cannot be recorded');
});

d.run();

import { suite } from '../../../test/harness/suite.js';
import * as assert from 'uvu/assert';
import { randomUUID } from 'node:crypto';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { InMemorySpanExporter, SimpleSpanProcessor } from '@opentelemetry/sdk-trace';
import { LocalBus } from '../../../core/src/bus/local-bus.js';
import { silentLogger } from '../../../core/src/log.js';
import { parseTraceParent } from '../../../core/src/tracing/traceparent.js';
import { sdkTracing } from '../../../core/src/tracing/tracing.js';
import { nowMicros, type AgateEvent, type Command, type Response, type Verdict } from '../../../schemas/src/events.js';
import { CommandSpans } from './command-spans.js';

interface Ctx { dir: string; local: LocalBus; exported: InMemorySpanExporter; bus: CommandSpans; written: AgateEvent[] }

const CLIENT = '00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01';

function setup(maxOpen?: number): Ctx {
  const dir = mkdtempSync(join(tmpdir(), 'agate-spans-'));
  const local = new LocalBus({ dir, fsync: false, logger: silentLogger });
  const exported = new InMemorySpanExporter();
  const tracing = sdkTracing(new SimpleSpanProcessor({ exporter: exported }), { 'service.name': 'test' });
  const written: AgateEvent[] = [];
  local.observe((e) => written.push(e));
  // Policy in the same process: every command allowed as it is written.
  local.decideInline({ decide: (c) => [verdict(c, 'policy')], written: () => undefined });
  return { dir, local, exported, bus: new CommandSpans(local, tracing, maxOpen), written };
}

async function teardown(ctx: Ctx): Promise<void> {
  await ctx.bus.close();
  rmSync(ctx.dir, { recursive: true, force: true });
}

function command(traceParent?: string): Command {
  return {
    type: 'Command', event_id: randomUUID(), time: nowMicros(), session_id: 's1', proxy_id: 'p', sequence: 1, protocol: 'postgres', target: 'app',
    identity: { issuer: 'i', subject: 's', claims: {} }, text: 'SELECT 1', parameters: [], attributes: {}, ...(traceParent === undefined ? {} : { trace_parent: traceParent }),
  };
}

function verdict(c: Command, source: 'policy' | 'deadline'): Verdict {
  return {
    type: 'Verdict', event_id: randomUUID(), time: nowMicros(), session_id: c.session_id, command_id: c.event_id, decision: source === 'policy' ? 'allow' : 'deny',
    rule_id: null, reason: '', source, policy_revision: '', mask_set: null, approval_id: null, hold_expires_at: null,
  };
}

function response(c: Command, status: Response['status'] = 'ok'): Response {
  return {
    type: 'Response', event_id: randomUUID(), time: nowMicros(), session_id: c.session_id, command_id: c.event_id, status, command_tag: 'SELECT 1', rows: 1,
    bytes: 10, duration_us: 5, error_code: status === 'error' ? '42P01' : null, error_message: null, digest: null, columns: [], sample: [], masked_values: 0,
  };
}

/** The bus tells its observers of a commit after the verdict's waiter has gone on, later in the same turn. */
const observed = () => new Promise<void>((resolve) => setImmediate(resolve));

const spans = suite('CommandSpans');

spans('a command is written carrying its span, a child of the client\'s trace; its Response carries it too and ends the span', async () => {
  const ctx = setup();
  try {
    const c = command(CLIENT);
    const outcome = await ctx.bus.requestVerdict(c, 2_000);
    assert.is(outcome.kind, 'verdict');
    await observed();
    const writtenCommand = ctx.written.find((e): e is Command => e.type === 'Command')!;
    const tp = parseTraceParent(writtenCommand.trace_parent)!;
    assert.is(tp.traceId, '0af7651916cd43dd8448eb211c80319c', 'the client\'s trace continues');
    assert.is.not(tp.spanId, 'b7ad6b7169203331', 'the command names the proxy\'s span, not the client\'s');
    assert.is(ctx.exported.getFinishedSpans().length, 0, 'the span is open until the Response');

    await ctx.bus.publish(response(c));
    const r = ctx.written.find((e): e is Response => e.type === 'Response')!;
    assert.is(r.trace_parent, writtenCommand.trace_parent);
    const [span] = ctx.exported.getFinishedSpans();
    assert.ok(span);
    assert.is(span.name, 'postgres command');
    assert.is(span.spanContext().spanId, tp.spanId);
    assert.is(span.parentSpanContext?.spanId, 'b7ad6b7169203331');
    assert.is(span.attributes['agate.decision'], 'allow');
    assert.is(span.attributes['agate.status'], 'ok');
  } finally {
    await teardown(ctx);
  }
});

spans('without a client trace a new one starts; an invalid client value is not carried on', async () => {
  const ctx = setup();
  try {
    await ctx.bus.requestVerdict(command('00-not-a-trace'), 2_000);
    await observed();
    const [written] = ctx.written.filter((e): e is Command => e.type === 'Command');
    assert.ok(parseTraceParent(written!.trace_parent), 'a valid trace context of its own');
    assert.not.match(written!.trace_parent!, /not-a-trace/);
  } finally {
    await teardown(ctx);
  }
});

spans('events the proxy writes about the command later (a deadline verdict, the command queued again) carry its span; others pass untouched', async () => {
  const ctx = setup();
  try {
    const c = command();
    await ctx.bus.requestVerdict(c, 2_000);
    await observed();
    const traced = ctx.written.find((e): e is Command => e.type === 'Command')!.trace_parent;
    await ctx.bus.publish(verdict(c, 'deadline'));
    await ctx.bus.publish(c);
    const other = command();
    await ctx.bus.publish(response(other, 'error'));
    const deadline = ctx.written.find((e): e is Verdict => e.type === 'Verdict' && e.source === 'deadline')!;
    assert.is(deadline.trace_parent, traced);
    assert.is(ctx.written.filter((e): e is Command => e.type === 'Command' && e.event_id === c.event_id)[1]!.trace_parent, traced);
    assert.is(ctx.written.find((e): e is Response => e.type === 'Response' && e.command_id === other.event_id)!.trace_parent, undefined);
  } finally {
    await teardown(ctx);
  }
});

spans('a target error marks the span; spans whose Response never comes are bounded', async () => {
  const ctx = setup(2);
  try {
    const failed = command();
    await ctx.bus.requestVerdict(failed, 2_000);
    await ctx.bus.publish(response(failed, 'error'));
    assert.is(ctx.exported.getFinishedSpans()[0]!.status.code, 2, 'status ERROR');

    const open = [command(), command(), command()];
    for (const c of open) await ctx.bus.requestVerdict(c, 2_000);
    const ended = ctx.exported.getFinishedSpans().slice(1);
    assert.is(ended.length, 1, 'the oldest of three is ended when a third opens past the bound of two');
    assert.is(ended[0]!.attributes['agate.command_id'], open[0]!.event_id);
    assert.is(ended[0]!.attributes['agate.response'], 'none');
  } finally {
    await teardown(ctx);
  }
});

spans.run();

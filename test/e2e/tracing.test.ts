// Trace export end to end, embedded mode (`agate start`, one process, the local bus): a psql
// statement through the proxy yields spans of the proxy, policy and ledger in one trace, each a
// child of the one before, received by a real OpenTelemetry Collector over OTLP/HTTP; the
// Command, Verdict and Response events carry the trace context of the span that made them.
import { suite } from '../harness/suite.js';
import * as assert from 'uvu/assert';
import { parseTraceParent } from '../../core/src/tracing/traceparent.js';
import type { Command, Response, Verdict } from '../../schemas/src/events.js';
import { psqlWith } from '../harness/postgres.js';
import { startCollector, type Collector } from '../harness/otelcol.js';
import { assertSpanLinks, spansOfTrace } from '../harness/span-links.js';
import { startAgate, type AgateFixture } from './agate-fixture.js';
import { until } from '../harness/until.js';

interface Ctx { collector: Collector; agate: AgateFixture }
const tracing = suite<Ctx>('trace export: proxy, policy and ledger spans in one trace');

tracing.before(async (ctx) => {
  ctx.collector = await startCollector();
  ctx.agate = await startAgate({ extraYaml: `telemetry:\n  otlp:\n    endpoint: ${ctx.collector.endpoint}\n    service_name: agate-e2e\n` });
});

tracing.after(async (ctx) => {
  await ctx.agate?.cleanup();
  await ctx.collector?.close();
});

const psql = async (ctx: Ctx, sql: string): Promise<string> => psqlWith(await ctx.agate.libpqEnv(), sql);

tracing('a psql statement: the proxy, policy and ledger spans share one trace, parent-linked, and the events carry them', async (ctx) => {
  assert.is(await psql(ctx, 'SELECT 6 * 7 AS traced_answer'), '42');

  const events = () => ctx.agate.events();
  const command = await until('the Command', () => events().find((e): e is Command => e.type === 'Command' && e.text.includes('traced_answer')));
  const verdict = await until('its Verdict', () => events().find((e): e is Verdict => e.type === 'Verdict' && e.command_id === command.event_id));
  const response = await until('its Response', () => events().find((e): e is Response => e.type === 'Response' && e.command_id === command.event_id));
  const onCommand = parseTraceParent(command.trace_parent);
  const onVerdict = parseTraceParent(verdict.trace_parent);
  assert.ok(onCommand, `the Command carries a trace context (${command.trace_parent})`);
  assert.ok(onVerdict, `the Verdict carries a trace context (${verdict.trace_parent})`);
  assert.is(onVerdict.traceId, onCommand.traceId, 'the Verdict continues the Command\'s trace');
  assert.is.not(onVerdict.spanId, onCommand.spanId, 'the Verdict names the policy span, not the proxy\'s');
  assert.is(response.trace_parent, command.trace_parent, 'the Response carries its Command\'s trace context');

  const spans = await spansOfTrace(ctx.collector, onCommand.traceId, ['postgres command', 'policy decide'], 20_000, 3);
  const { proxy, policy, appendOf } = assertSpanLinks(spans, 'postgres command', { command, verdict, response }, { ledger: true });
  assert.is(proxy.service, 'agate-e2e');
  assert.is(proxy.parentId, '', 'psql sends no trace context: the proxy starts the trace');
  assert.is(proxy.kind, 'Server');
  assert.is(proxy.attributes['agate.command_id'], command.event_id);
  assert.is(proxy.attributes['agate.decision'], 'allow');
  assert.is(policy.attributes['agate.decision'], 'allow');
  assert.is(appendOf(command)?.attributes['agate.chain'], 'embedded');
});

tracing('events that are not about a command carry no trace context and make no spans', async (ctx) => {
  const opened = await until('a SessionOpened', () => ctx.agate.events().find((e) => e.type === 'SessionOpened'));
  assert.not.ok('trace_parent' in opened);
  const ledgerOf = ctx.collector.spans().filter((s) => s.name === 'ledger append' && s.attributes['agate.event_id'] === opened.event_id);
  assert.is(ledgerOf.length, 0);
});

tracing.run();

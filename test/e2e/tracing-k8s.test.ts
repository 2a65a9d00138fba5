// Trace export through the Kubernetes proxy: a request that carries a W3C `traceparent` header
// continues the client's trace (the proxy's span is its child, policy's the proxy's), and one
// with an invalid header starts a new trace instead of carrying the value on. Real kube-apiserver,
// real OpenTelemetry Collector, `agate start` with trace export on.
import { suite } from '../harness/suite.js';
import * as assert from 'uvu/assert';
import { readFileSync } from 'node:fs';
import { request } from 'node:https';
import { parseTraceParent } from '../../core/src/tracing/traceparent.js';
import { startCollector, type Collector } from '../harness/otelcol.js';
import { commandsWhere, events, startKubeAgate, stopKubeAgate, verdictOf, type KubeAgate } from './kube-agate.js';
import { until } from '../harness/until.js';
import { assertSpanLinks, spansOfTrace } from '../harness/span-links.js';

type Ctx = KubeAgate & { collector: Collector };
const tracing = suite<Ctx>('trace export: a Kubernetes client\'s traceparent is continued');

const CLIENT_TRACE = '4bf92f3577b34da6a3ce929d0e0e4736';
const CLIENT_SPAN = '00f067aa0ba902b7';

tracing.before(async (ctx) => {
  ctx.collector = await startCollector();
  Object.assign(ctx, await startKubeAgate('policy:\n  default: allow\n', '', `telemetry:\n  otlp:\n    endpoint: ${ctx.collector.endpoint}\n`));
});

tracing.after(async (ctx) => {
  await stopKubeAgate(ctx);
  await ctx.collector?.close();
});

async function get(ctx: Ctx, path: string, traceparent: string): Promise<number> {
  const token = await ctx.issuer.mint(ctx.issuer.githubActionsClaims());
  return new Promise((resolve, reject) => {
    const req = request(`${ctx.server}${path}`, { ca: readFileSync(ctx.kube.other.caFile), headers: { authorization: `Bearer ${token}`, traceparent } }, (res) => {
      res.resume();
      res.once('end', () => resolve(res.statusCode ?? 0));
    });
    req.once('error', reject);
    req.end();
  });
}

tracing('a request with a traceparent: the Command continues that trace, and so do the proxy and policy spans', async (ctx) => {
  assert.is(await get(ctx, '/api/v1/namespaces/default/configmaps?traced=1', `00-${CLIENT_TRACE}-${CLIENT_SPAN}-01`), 200);
  const command = await until('the Command', () => commandsWhere(events(ctx), (c) => c.text.includes('traced=1'))[0]);
  const verdict = await until('its Verdict', () => verdictOf(events(ctx), command));
  const onCommand = parseTraceParent(command.trace_parent)!;
  assert.is(onCommand.traceId, CLIENT_TRACE, 'the client\'s trace continues');
  assert.is(parseTraceParent(verdict.trace_parent)?.traceId, CLIENT_TRACE);

  const spans = await spansOfTrace(ctx.collector, CLIENT_TRACE, ['kubernetes command', 'policy decide'], 20_000);
  const { proxy } = assertSpanLinks(spans, 'kubernetes command', { command, verdict });
  assert.is(proxy.parentId, CLIENT_SPAN, 'the proxy\'s span is a child of the client\'s');
});

tracing('an invalid traceparent is not carried on: a new trace starts', async (ctx) => {
  assert.is(await get(ctx, '/api/v1/namespaces/default/configmaps?traced=2', `00-${'0'.repeat(32)}-${CLIENT_SPAN}-01`), 200);
  const command = await until('the Command', () => commandsWhere(events(ctx), (c) => c.text.includes('traced=2'))[0]);
  const tp = parseTraceParent(command.trace_parent);
  assert.ok(tp, 'a trace context of Agate\'s own');
  assert.is.not(tp.traceId, '0'.repeat(32));
  const [proxy] = await ctx.collector.waitFor((all) => all.some((s) => s.traceId === tp.traceId && s.name === 'kubernetes command'), 20_000);
  assert.ok(proxy);
  assert.is(ctx.collector.spans().find((s) => s.traceId === tp.traceId && s.name === 'kubernetes command')!.parentId, '', 'the proxy starts the trace');
});

tracing.run();

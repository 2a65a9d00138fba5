// The links every traced command must show, whatever the protocol or deployment: the proxy's span
// is the one the Command names, policy decides inside it and the Verdict names policy's span, and
// the ledger appends each event inside the span that made it. Shared by the tracing e2e files.
import * as assert from 'uvu/assert';
import { parseTraceParent } from '../../core/src/tracing/traceparent.js';
import type { Collector, ReceivedSpan } from './otelcol.js';

/** A traced event as the bus recorded it. */
interface Traced { event_id: string; trace_parent?: string | null }

/**
 * Waits until the collector holds, in trace `traceId`, a span of each name in `names` and at least
 * `ledgerAppends` 'ledger append' spans; returns the spans of that trace.
 */
export async function spansOfTrace(collector: Collector, traceId: string, names: string[], timeoutMs: number, ledgerAppends = 0): Promise<ReceivedSpan[]> {
  const inTrace = (spans: ReceivedSpan[]) => spans.filter((s) => s.traceId === traceId);
  return inTrace(await collector.waitFor((all) => {
    const t = inTrace(all);
    return names.every((n) => t.some((s) => s.name === n)) && t.filter((s) => s.name === 'ledger append').length >= ledgerAppends;
  }, timeoutMs));
}

/**
 * Asserts the parent links between the proxy span `proxyName`, 'policy decide' and, when `ledger`
 * is set, the 'ledger append' of each event given; returns the proxy and policy spans and a lookup of
 * the 'ledger append' span of an event.
 */
export function assertSpanLinks(spans: ReceivedSpan[], proxyName: string, events: { command: Traced; verdict: Traced; response?: Traced }, opts: { ledger?: boolean } = {}): { proxy: ReceivedSpan; policy: ReceivedSpan; appendOf: (e: Traced) => ReceivedSpan | undefined } {
  const onCommand = parseTraceParent(events.command.trace_parent);
  const onVerdict = parseTraceParent(events.verdict.trace_parent);
  assert.ok(onCommand, `the Command carries a trace context (${events.command.trace_parent})`);
  assert.ok(onVerdict, `the Verdict carries a trace context (${events.verdict.trace_parent})`);
  const proxy = spans.find((s) => s.name === proxyName);
  const policy = spans.find((s) => s.name === 'policy decide');
  assert.ok(proxy, `a '${proxyName}' span in the trace`);
  assert.ok(policy, 'a \'policy decide\' span in the trace');
  assert.is(proxy.spanId, onCommand.spanId, 'the Command carries the proxy span\'s context');
  assert.is(policy.parentId, proxy.spanId, 'policy decides inside the proxy\'s span');
  assert.is(policy.spanId, onVerdict.spanId, 'the Verdict carries the policy span\'s context');
  const appendOf = (e: Traced) => spans.find((s) => s.name === 'ledger append' && s.attributes['agate.event_id'] === e.event_id);
  if (opts.ledger === true) {
    assert.is(appendOf(events.command)?.parentId, proxy.spanId, 'the ledger records the Command inside the proxy\'s span');
    assert.is(appendOf(events.verdict)?.parentId, policy.spanId, 'the ledger records the Verdict inside the policy span');
    if (events.response !== undefined) assert.is(appendOf(events.response)?.parentId, proxy.spanId, 'the ledger records the Response inside the proxy\'s span');
  }
  return { proxy, policy, appendOf };
}

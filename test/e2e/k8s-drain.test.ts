// SIGTERM drains the Kubernetes proxy: `agate start` in front of a real kube-apiserver, the real
// kubectl through it. A watch in flight ends cleanly (its stream terminated, recorded as ended by
// Agate), a held delete still waiting for its approver finishes once approved during the drain,
// a new connection is refused, and Agate exits 0 after the delete, having cut nothing off.
import { suite } from '../harness/suite.js';
import * as assert from 'uvu/assert';
import { readFileSync } from 'node:fs';
import { connect } from 'node:net';
import { agentKubectl, commandsWhere, events, responsesOf, startKubeAgate, stopKubeAgate, type KubeAgate } from './kube-agate.js';
import { until } from '../harness/until.js';

const DRAIN_MS = 30_000;
const drain = suite<KubeAgate>('kubernetes proxy drain');

drain.before(async (ctx) => {
  Object.assign(ctx, await startKubeAgate(`policy:
  default: allow
  rules:
    - id: hold-deletes
      action: hold
      match: { kubernetes: { verbs: [delete], resources: [configmaps], namespaces: [drain] } }
      approval: { timeout_s: 60 }
ops:
  listen: 127.0.0.1:0
  drain_timeout_ms: ${DRAIN_MS}
`));
});
drain.after(async (ctx) => stopKubeAgate(ctx));

drain('SIGTERM: a watch ends cleanly, a held request in flight finishes, new connections are refused, exit 0', async (ctx) => {
  for (const args of [['create', 'namespace', 'drain'], ['-n', 'drain', 'create', 'configmap', 'keep', '--from-literal=a=b']]) {
    const r = await ctx.kube.kubectl(args);
    assert.is(r.code, 0, r.stderr);
  }
  const port = Number(/server: https:\/\/127\.0\.0\.1:(\d+)/.exec(readFileSync(ctx.kubeconfig, 'utf8'))![1]);
  const order: string[] = [];
  const watch = agentKubectl(ctx, ['-n', 'drain', 'get', 'configmaps', '--watch', '--request-timeout=0']).then((r) => (order.push('watch'), r));
  const deletion = agentKubectl(ctx, ['-n', 'drain', 'delete', 'configmap', 'keep', '--wait=false', '--request-timeout=90s']).then((r) => (order.push('delete'), r));
  const auditor = await ctx.issuer.mint({ sub: 'auditor', agate_role: 'auditor' });
  const pending = await until('the approval request', async () => {
    const res = await fetch(`${ctx.agate.apiUrl}/v1/approvals?status=pending`, { headers: { authorization: `Bearer ${auditor}` } });
    const body = (await res.json()) as { approvals?: { approval_id: string; text: string }[] };
    return body.approvals?.find((a) => a.text.includes('/configmaps/keep'));
  }, 30_000);
  const isWatch = (x: { text: string }) => x.text.startsWith('GET /api/v1/namespaces/drain/configmaps') && x.text.includes('watch=true');
  const watchCommand = await until('the watch to be allowed', () => {
    const evs = events(ctx);
    const c = commandsWhere(evs, isWatch)[0];
    return c !== undefined && evs.some((e) => e.type === 'Verdict' && e.command_id === c.event_id) ? c : undefined;
  }, 30_000);
  // A change the watch delivers (and records) shows its stream is open through Agate.
  const created = await ctx.kube.kubectl(['-n', 'drain', 'create', 'configmap', 'seen', '--from-literal=a=b']);
  assert.is(created.code, 0, created.stderr);
  await until('the watch to deliver the change', () => responsesOf(events(ctx), watchCommand).find((r) => r.command_tag === 'watch ADDED'));

  const stopped = ctx.agate.stop(DRAIN_MS + 15_000).then((exit) => (order.push('agate'), exit));
  // Until the signal is handled a connection is still accepted (one caught in the accept queue
  // as the listener closes is reset); then every new one is refused.
  await until('new connections to be refused', () => new Promise<true | undefined>((resolve) => {
    const s = connect(port, '127.0.0.1');
    s.on('connect', () => (s.destroy(), resolve(undefined)));
    s.on('error', (err: NodeJS.ErrnoException) => resolve(err.code === 'ECONNREFUSED' ? true : undefined));
  }), 10_000);
  const watched = await watch;
  assert.not.match(watched.stderr, /unexpected EOF|connection reset|broken pipe|INTERNAL_ERROR/i, 'the watch stream was terminated properly');
  assert.match(watched.stdout, /keep[\s\S]*seen/, 'kubectl printed the list, then the watched change');
  // A cleanly ended watch: kubectl either ends (exit 0, nothing on stderr) or takes it as one to
  // start again and connects anew, to this proxy, which no longer listens (behind a Service it
  // reaches another one). Never a broken stream.
  const clean = (watched.code === 0 && watched.stderr.trim() === '') || /^The connection to the server 127\.0\.0\.1:\d+ was refused/m.test(watched.stderr);
  assert.ok(clean, `kubectl get --watch: exit ${watched.code}, ${watched.stderr}`);
  const watchEnd = await until('the watch end in the log', () => responsesOf(events(ctx), watchCommand).find((r) => r.command_tag?.startsWith('200 watch ended')));
  assert.is(watchEnd.command_tag, '200 watch ended by Agate (shutting down)');
  assert.is(watchEnd.status, 'ok');
  assert.ok(ctx.agate.running, 'agate waits for the held delete');
  assert.equal(order, ['watch']);

  const alice = await ctx.issuer.mint({ sub: 'alice', agate_role: 'approver' });
  const ok = await ctx.agate.cli(['approve', pending.approval_id, '--config', ctx.agate.configPath, '--token', alice]);
  assert.is(ok.code, 0, ok.stdout + ok.stderr);
  const deleted = await deletion;
  assert.is(deleted.code, 0, deleted.stderr);
  assert.match(deleted.stdout, /configmap "keep" deleted/);
  assert.equal(await stopped, { code: 0, signal: null }, ctx.agate.stderr());
  assert.equal(order, ['watch', 'delete', 'agate'], 'agate exits after the request in flight finished');
  assert.ok(ctx.agate.logs().some((l) => l.msg === 'drained' && l.requests_cut_off === 0), 'nothing was cut off');
  const evs = events(ctx);
  const del = commandsWhere(evs, (x) => x.text.startsWith('DELETE /api/v1/namespaces/drain/configmaps/keep'))[0]!;
  assert.is(responsesOf(evs, del)[0]?.status, 'ok', 'the delete that ran during the drain is recorded with its result');
  const opened = evs.filter((e) => e.type === 'SessionOpened' && e.protocol === 'kubernetes').map((e) => e.session_id);
  const closed = new Set(evs.filter((e) => e.type === 'SessionClosed').map((e) => e.session_id));
  assert.ok(opened.length >= 2 && opened.every((id) => closed.has(id)), 'every session is recorded as closed');
});

drain.run();

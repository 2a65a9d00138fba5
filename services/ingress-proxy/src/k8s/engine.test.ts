import { suite } from '../../../../test/harness/suite.js';
import * as assert from 'uvu/assert';
import { randomUUID } from 'node:crypto';
import { mkdtempSync, rmSync } from 'node:fs';
import type { IncomingHttpHeaders } from 'node:http';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { Bus } from '../../../../core/src/bus/bus.js';
import { LocalBus } from '../../../../core/src/bus/local-bus.js';
import { BUILTIN_MASK_SET, parseConfig } from '../../../../core/src/config.js';
import { AgateError, ErrorCode } from '../../../../core/src/errors.js';
import { silentLogger } from '../../../../core/src/log.js';
import { nowMicros, PROXY_DECIDED_ATTRIBUTE, type AgateEvent, type ApprovalRequested, type Command, type Response, type Verdict } from '../../../../schemas/src/events.js';
import { SAMPLES } from '../../../../schemas/src/samples.js';
import { CompiledPolicy, loadParsers } from '../../../policy/src/engine.js';
import { PolicyService } from '../../../policy/src/service.js';
import { Masker } from '../masking/masker.js';
import { UNASKED_RULE } from '../decide.js';
import { UNRECORDABLE_RULE } from '../session-events.js';
import { DISCOVERY_RULE, IMPERSONATION_RULE, KubeEngine, type Forward, type Plan } from './engine.js';
import { KubeSession } from './session.js';

/*
 * The engine with no socket: requests go in as method, target, headers and body; plans come out.
 * Behind it, the real parts: the embedded bus (its log in a temporary directory) and the policy
 * service deciding with this policy.
 */
const policy = new CompiledPolicy(parseConfig(`
identity: { dev_issuer: { enabled: true } }
policy:
  default: allow
  rules:
    - id: held-deletes
      action: hold
      match: { kubernetes: { verbs: [delete], resources: [configmaps], namespaces: [held] } }
      approval: { approvers: { claims: { team: sre } }, timeout_s: 30 }
    - id: no-configmap-delete
      action: deny
      message: deleting configmaps needs a human
      match: { kubernetes: { verbs: [delete], resources: [configmaps] } }
    - id: no-exec-in-kube-system
      action: deny
      message: no shells in kube-system
      match: { kubernetes: { resources: [pods/exec], namespaces: [kube-system] } }
`, 'engine.yaml').policy);

const CREDENTIAL = { Authorization: 'Bearer agate-own-credential' };
const CLIENT_TOKEN = 'Bearer the-agents-oidc-token';

interface Ctx { dir: string; bus: LocalBus; service: PolicyService; engine: KubeEngine; session: KubeSession; recorded: AgateEvent[] }
const k = suite<Ctx>('KubeEngine');

k.before.each(async (ctx) => {
  await loadParsers();
  ctx.dir = mkdtempSync(join(tmpdir(), 'agate-k8s-engine-'));
  ctx.bus = new LocalBus({ dir: ctx.dir, fsync: false, logger: silentLogger });
  ctx.recorded = [];
  await ctx.bus.subscribe({ group: 'record', types: ['Command', 'Verdict', 'Response', 'ApprovalRequested'], handler: async (b) => void ctx.recorded.push(...b) });
  ctx.service = new PolicyService({ bus: ctx.bus, policy, logger: silentLogger, staleAfterMs: 5_000 });
  await ctx.service.start();
  const audit = new Masker('default', BUILTIN_MASK_SET);
  ctx.engine = new KubeEngine({
    bus: ctx.bus, verdictTimeoutMs: 5_000, log: silentLogger,
    target: { name: 'cluster', recording: { sampleRows: 5, valueChars: 200, audit, fields: [] }, maskers: new Map([['default', audit]]), maskClient: undefined, maxBodyBytes: 1024, allowDiscovery: true },
    upstream: { host: 'kube.internal:6443', credential: async () => CREDENTIAL },
  });
  ctx.session = new KubeSession({ token: 't', identity: SAMPLES.Command.identity, expiresAt: Date.now() / 1000 + 600, bus: ctx.bus, proxyId: 'proxy-a', target: 'cluster', log: silentLogger });
});
k.after.each(async (ctx) => {
  await ctx.service.stop();
  await ctx.bus.close().catch(() => undefined);
  rmSync(ctx.dir, { recursive: true, force: true });
});

const headers = (extra: IncomingHttpHeaders = {}): IncomingHttpHeaders => ({ authorization: CLIENT_TOKEN, 'user-agent': 'kubectl/v1.37', accept: 'application/json', ...extra });

function forwarded(plan: Plan): Forward {
  if (plan.kind !== 'forward') throw new Error(`expected a forward, got a refusal: ${plan.status.message}`);
  return plan;
}

/** The events recorded for `command`, once the session's queue and the subscriber have caught up. */
async function recordOf(ctx: Ctx, command: string, count: number): Promise<AgateEvent[]> {
  await ctx.session.events.drained();
  const of = () => ctx.recorded.filter((e) => (e.type === 'Command' ? e.event_id : 'command_id' in e ? e.command_id : undefined) === command);
  for (let i = 0; i < 200 && of().length < count; i++) await new Promise((r) => setTimeout(r, 10));
  return of();
}

/** The command recorded with `text`, once the subscriber has it. */
async function recordedCommand(ctx: Ctx, text: string): Promise<Command> {
  const find = () => ctx.recorded.find((e): e is Command => e.type === 'Command' && e.text === text);
  for (let i = 0; i < 200 && find() === undefined; i++) await new Promise((r) => setTimeout(r, 10));
  const command = find();
  assert.ok(command, `the command "${text}" was recorded`);
  return command!;
}

k('an allowed get: recorded before it is forwarded, with the client token replaced by Agate\'s credential', async (ctx) => {
  const plan = forwarded(await ctx.engine.request(ctx.session, {
    method: 'GET', target: '/api/v1/namespaces/app/configmaps/settings', body: Buffer.alloc(0),
    headers: headers({ 'accept-encoding': 'gzip', accept: 'application/vnd.kubernetes.protobuf, application/json' }),
  }));
  assert.is(plan.path, '/api/v1/namespaces/app/configmaps/settings');
  assert.is(plan.watch, false);
  assert.is(plan.client, undefined);
  assert.is(plan.headers.authorization, CREDENTIAL.Authorization);
  assert.is(plan.headers['accept-encoding'], undefined); // Agate reads every body
  assert.is(plan.headers.accept, 'application/json'); // protobuf cannot be recorded or masked
  const command = plan.command;
  assert.is(command.text, 'GET /api/v1/namespaces/app/configmaps/settings');
  assert.equal([command.attributes.verb, command.attributes.resource, command.attributes.namespace, command.attributes.name], ['get', 'configmaps', 'app', 'settings']);
  // Write-ahead: the command and its verdict are durable by the time the plan exists.
  const record = await recordOf(ctx, command.event_id, 2);
  assert.equal(record.map((e) => e.type), ['Command', 'Verdict']);
  assert.is(record[1]!.type === 'Verdict' && record[1]!.decision, 'allow');
});

k('a denied delete: a Forbidden Status naming the rule, and the refusal recorded', async (ctx) => {
  const plan = await ctx.engine.request(ctx.session, { method: 'DELETE', target: '/api/v1/namespaces/app/configmaps/settings', body: Buffer.alloc(0), headers: headers() });
  assert.is(plan.kind, 'refuse');
  if (plan.kind !== 'refuse') return;
  assert.equal([plan.status.code, plan.status.reason], [403, 'Forbidden']);
  assert.match(plan.status.message, 'rule "no-configmap-delete": deleting configmaps needs a human');
  assert.equal(plan.status.details, { kind: 'configmaps', name: 'settings' });
  // The subscriber hears of a commit after the request goes on: it is waited for.
  const command = await recordedCommand(ctx, 'DELETE /api/v1/namespaces/app/configmaps/settings');
  const record = await recordOf(ctx, command.event_id, 3);
  assert.equal(record.map((e) => e.type), ['Command', 'Verdict', 'Response']);
  const response = record[2] as Response;
  assert.equal([response.status, response.error_code], ['refused', 'POLICY_DENIED']);
});

k('a held delete waits for the approver, then is forwarded', async (ctx) => {
  let settled = false;
  const pending = ctx.engine.request(ctx.session, { method: 'DELETE', target: '/api/v1/namespaces/held/configmaps/settings', body: Buffer.alloc(0), headers: headers() });
  void pending.then(() => (settled = true));
  let request: ApprovalRequested | undefined;
  for (let i = 0; i < 300 && request === undefined; i++) {
    await new Promise((r) => setTimeout(r, 10));
    request = ctx.recorded.find((e): e is ApprovalRequested => e.type === 'ApprovalRequested');
  }
  assert.ok(request, 'an approval was requested');
  await new Promise((r) => setTimeout(r, 100));
  assert.is(settled, false, 'nothing is forwarded while the request is held');
  await ctx.bus.publish({
    ...SAMPLES.ApprovalDecision, event_id: randomUUID(), time: nowMicros(), session_id: ctx.session.id, approval_id: request!.approval_id, command_id: request!.command_id,
    decision: 'approve', approver_issuer: 'https://idp.example.com', approver_subject: 'oncall', approver_claims: { team: 'sre' },
  });
  const plan = forwarded(await pending);
  assert.is(plan.method, 'DELETE');
  assert.is(plan.command.event_id, request!.command_id);
  // The command, its approval request and its two verdicts.
  const verdicts = (await recordOf(ctx, plan.command.event_id, 4)).filter((e) => e.type === 'Verdict').map((e) => e.type === 'Verdict' && e.decision);
  assert.equal(verdicts, ['hold', 'allow']);
});

k('impersonation headers: refused whatever policy says, and recorded', async (ctx) => {
  const plan = await ctx.engine.request(ctx.session, {
    method: 'GET', target: '/api/v1/namespaces/app/secrets', body: Buffer.alloc(0), headers: headers({ 'impersonate-user': 'system:admin', 'impersonate-group': 'system:masters' }),
  });
  assert.is(plan.kind, 'refuse');
  if (plan.kind !== 'refuse') return;
  assert.is(plan.status.code, 403);
  assert.match(plan.status.message, 'impersonation headers (kubectl --as) are not allowed');
  const command = ctx.recorded.find((e): e is Command => e.type === 'Command')!;
  assert.is(command.attributes.impersonate, 'refused');
  assert.match(command.attributes.privilege ?? '', 'impersonate');
  assert.is(command.attributes[PROXY_DECIDED_ATTRIBUTE], IMPERSONATION_RULE);
  const record = await recordOf(ctx, command.event_id, 3);
  assert.equal(record.map((e) => e.type), ['Command', 'Verdict', 'Response']);
  assert.is((record[2] as Response).error_code, 'IMPERSONATION_REFUSED');
  // Refused whatever policy says (it allows everything here), by the built-in rule: policy adds no verdict.
  await new Promise((r) => setTimeout(r, 50));
  const verdicts = ctx.recorded.filter((e): e is Verdict => e.type === 'Verdict' && e.command_id === command.event_id);
  assert.equal(verdicts.map((v) => [v.decision, v.rule_id, v.policy_revision]), [['deny', IMPERSONATION_RULE, 'builtin']]);
});

k('a watch is forwarded as a watch; exec is decided as create, and its upgrade head carries only Agate\'s credential', async (ctx) => {
  const watch = forwarded(await ctx.engine.request(ctx.session, { method: 'GET', target: '/api/v1/namespaces/app/configmaps?watch=true&resourceVersion=1', body: Buffer.alloc(0), headers: headers() }));
  assert.is(watch.watch, true);
  assert.is(watch.command.attributes.verb, 'watch');
  const raw = ['Authorization', CLIENT_TOKEN, 'Upgrade', 'websocket', 'Connection', 'Upgrade', 'Sec-WebSocket-Protocol', 'v5.channel.k8s.io', 'Host', 'agate.local'];
  const exec = { method: 'GET', headers: headers({ upgrade: 'websocket' }), rawHeaders: raw, body: Buffer.alloc(0) };
  const ran = await ctx.engine.upgrade(ctx.session, { ...exec, target: '/api/v1/namespaces/app/pods/web/exec?command=ls&stdout=true' });
  assert.is(ran.kind, 'upgrade');
  if (ran.kind !== 'upgrade') return;
  assert.equal([ran.command.attributes.verb, ran.command.attributes.subresource, ran.command.attributes.upgrade], ['create', 'exec', 'websocket']);
  assert.ok(ran.head.startsWith('GET /api/v1/namespaces/app/pods/web/exec?command=ls&stdout=true HTTP/1.1\r\nHost: kube.internal:6443\r\n'));
  assert.ok(ran.head.includes(`Authorization: ${CREDENTIAL.Authorization}\r\n`));
  assert.not.ok(ran.head.includes('the-agents-oidc-token'));
  assert.ok(ran.head.endsWith('\r\n\r\n'));
  const refused = await ctx.engine.upgrade(ctx.session, { ...exec, target: '/api/v1/namespaces/kube-system/pods/etcd/exec?command=sh' });
  assert.is(refused.kind, 'refuse');
  if (refused.kind === 'refuse') assert.match(refused.status.message, 'rule "no-exec-in-kube-system"');
});

k('an upgrade whose input reaches a process or a port is marked input: unrecorded, as the API server reads stdin; the default does not open it', async (ctx) => {
  const raw = ['Authorization', CLIENT_TOKEN, 'Upgrade', 'websocket', 'Connection', 'Upgrade'];
  const up = (method: string, target: string) => ctx.engine.upgrade(ctx.session, { method, target, headers: headers({ upgrade: 'websocket' }), rawHeaders: raw, body: Buffer.alloc(0) });
  const pod = '/api/v1/namespaces/app/pods/web';
  const marked = [
    `${pod}/exec?command=sh&stdin=true`, `${pod}/exec?command=sh&stdin`, `${pod}/exec?command=sh&stdin=`, `${pod}/exec?command=sh&%73tdin=1`, `${pod}/exec?command=sh&STDIN=yes`,
    `${pod}/exec?command=sh&stdin=false&stdin=1`, `${pod}/attach?stdin=1`, `${pod}/portforward?ports=80`, `${pod}:80/proxy/`,
    '/api/v1/namespaces/app/services/web/proxy/ws', '/api/v1/nodes/n1/proxy/exec/app/web/c', '/api/v1/proxy/namespaces/app/pods/web/', '/metrics',
  ];
  for (const target of marked) {
    const plan = await up('GET', target);
    assert.is(plan.kind, 'refuse', target);
    // (A node's proxy is a kubelet's exec in any namespace: the rule on kube-system refuses it first.)
    if (plan.kind === 'refuse') assert.match(plan.status.message, target.startsWith('/api/v1/nodes/') ? 'no-exec-in-kube-system' : 'agate.unrecorded-input', target);
  }
  for (const target of [`${pod}/exec?command=ls&stdout=1`, `${pod}/exec?command=ls&stdin=0`, `${pod}/exec?command=ls&stdin=False`, `${pod}/attach?stdout=1`, `${pod}/log?follow=1`, '/api/v1/namespaces/app/configmaps?watch=1']) {
    const plan = await up('GET', target);
    assert.is(plan.kind, 'upgrade', target);
    if (plan.kind === 'upgrade') assert.is(plan.command.attributes.input, undefined, target);
  }
  await ctx.session.events.drained();
  const inputs = () => ctx.recorded.filter((e) => e.type === 'Command' && e.attributes.input === 'unrecorded').length;
  for (let i = 0; i < 200 && inputs() < marked.length; i++) await new Promise((r) => setTimeout(r, 10));
  assert.is(inputs(), marked.length);
});

k('bodies Agate cannot record or that would store a mask are refused, fail closed, whatever policy says', async (ctx) => {
  const target = '/api/v1/namespaces/app/configmaps';
  const tooLarge = await ctx.engine.request(ctx.session, { method: 'POST', target, body: undefined, headers: headers({ 'content-type': 'application/json' }) });
  assert.is(tooLarge.kind === 'refuse' && tooLarge.status.code, 413);
  // Not JSON although it says so: unreadable, so searched as bytes; it carries the mask marker.
  const malformed = Buffer.from('{"data": {"password": "[masked]"');
  const marked = await ctx.engine.request(ctx.session, { method: 'POST', target, body: malformed, headers: headers({ 'content-type': 'application/json' }) });
  assert.is(marked.kind === 'refuse' && marked.status.code, 422);
  await ctx.session.events.drained();
  const commands = ctx.recorded.filter((e): e is Command => e.type === 'Command');
  assert.is(commands.length, 2);
  assert.is(commands[0]!.attributes.body_bytes, '>1024');
  assert.equal(commands[1]!.parameters, [`[${malformed.length} bytes of invalid JSON, not recorded]`]);
  const codes = [];
  for (const c of commands) codes.push(((await recordOf(ctx, c.event_id, 3)).find((e) => e.type === 'Response') as Response).error_code);
  assert.equal(codes, [ErrorCode.PROTOCOL_FRAME_TOO_LARGE, ErrorCode.MASKED_VALUE_WRITE]);
  // Refused whatever policy says (it allows everything here), each by the built-in rule alone:
  // policy, which would allow the first, gives neither a verdict.
  assert.is(commands[1]!.attributes.body, 'unreadable');
  assert.equal(ctx.recorded.filter((e) => e.type === 'Verdict').map((e) => e.type === 'Verdict' && [e.command_id, e.decision, e.rule_id]), commands.map((c) => [c.event_id, 'deny', UNASKED_RULE]));
});

k('a resource request by a method with no Kubernetes verb is refused (405) and recorded, never left to the policy default', async (ctx) => {
  const plan = await ctx.engine.request(ctx.session, { method: 'PROPFIND', target: '/api/v1/namespaces/app/configmaps/c', body: Buffer.alloc(0), headers: headers() });
  assert.is(plan.kind === 'refuse' && plan.status.code, 405);
  const upgrade = await ctx.engine.upgrade(ctx.session, { method: 'OPTIONS', target: '/api/v1/namespaces/app/pods/web/exec?command=id', body: Buffer.alloc(0), headers: headers({ upgrade: 'websocket' }), rawHeaders: [] });
  assert.is(upgrade.kind === 'refuse' && upgrade.status.code, 405);
  await ctx.session.events.drained();
  const commands = ctx.recorded.filter((e): e is Command => e.type === 'Command');
  assert.equal(commands.map((c) => c.text), ['PROPFIND /api/v1/namespaces/app/configmaps/c', 'OPTIONS /api/v1/namespaces/app/pods/web/exec?command=id']);
  const codes = [];
  for (const c of commands) {
    const record = await recordOf(ctx, c.event_id, 3);
    assert.equal(record.map((e) => e.type === 'Verdict' ? `${e.decision} ${e.rule_id}` : e.type), ['Command', `deny ${UNASKED_RULE}`, 'Response']);
    codes.push((record[2] as Response).error_code);
  }
  assert.equal(codes, [ErrorCode.PROTOCOL_VIOLATION, ErrorCode.PROTOCOL_VIOLATION]);
});

k('a path the API server would not interpret is a BadRequest, recorded as refused (an agent probing spellings is seen), never decided by policy', async (ctx) => {
  for (const [i, target] of ['/api/v1/watch', '/api/v1/namespaces/x/secrets/%zz'].entries()) {
    const plan = await ctx.engine.request(ctx.session, { method: 'GET', target, body: Buffer.alloc(0), headers: headers() });
    assert.is(plan.kind === 'refuse' && plan.status.code, 400, target);
    const command = await recordedCommand(ctx, `GET ${target}`);
    assert.is(command.attributes.invalid_request, 'path', target);
    const record = await recordOf(ctx, command.event_id, 3);
    assert.equal(record.map((e) => e.type === 'Verdict' ? `${e.decision} ${e.rule_id}` : e.type), ['Command', `deny ${UNASKED_RULE}`, 'Response'], target);
    assert.is((record[2] as Response).error_code, ErrorCode.PROTOCOL_VIOLATION);
    assert.is(ctx.recorded.filter((e) => e.type === 'Command').length, i + 1);
  }
  // An upgrade to a path that cannot be read is refused and recorded the same way.
  const up = await ctx.engine.upgrade(ctx.session, { method: 'GET', target: '/api/v1/namespaces/x/pods/%zz/exec', body: Buffer.alloc(0), headers: headers({ upgrade: 'websocket', connection: 'Upgrade' }), rawHeaders: [] });
  assert.is(up.kind === 'refuse' && up.status.code, 400);
  const upCommand = await recordedCommand(ctx, 'GET /api/v1/namespaces/x/pods/%zz/exec');
  assert.is(upCommand.attributes.invalid_request, 'path');
});

k('discovery: the command and the built-in verdict are both in the log before the request is forwarded', async (ctx) => {
  // What the log holds at each moment: an observer hears each event once it is durable.
  const durable: { event: AgateEvent }[] = [];
  ctx.bus.observe((event) => void durable.push({ event }));
  const plan = forwarded(await ctx.engine.request(ctx.session, { method: 'GET', target: '/api', headers: headers(), body: Buffer.alloc(0) }));
  const of = durable.filter((d) => (d.event.type === 'Command' ? d.event.event_id : 'command_id' in d.event ? d.event.command_id : undefined) === plan.command.event_id);
  assert.is(of[0]?.event.type, 'Command');
  // The built-in rule's verdict, the only one: the policy service leaves the command to it.
  assert.equal(of.filter((d) => d.event.type === 'Verdict').map((d) => d.event.type === 'Verdict' && [d.event.decision, d.event.rule_id]), [['allow', DISCOVERY_RULE]]);
  assert.is(plan.command.attributes[PROXY_DECIDED_ATTRIBUTE], DISCOVERY_RULE);
  assert.is(plan.client, undefined);
});


k('discovery: a command the log cannot take is refused (503), never forwarded', async (ctx) => {
  await ctx.service.stop();
  await ctx.bus.close();
  const plan = await ctx.engine.request(ctx.session, { method: 'GET', target: '/apis', headers: headers(), body: Buffer.alloc(0) });
  assert.is(plan.kind, 'refuse');
  assert.is(plan.kind === 'refuse' && plan.status.code, 503);
});


k('discovery on a bus where each publish is its own send (Kafka): a command that fails leaves no allow in the record', async (ctx) => {
  // The real log behind a bus without an inline decider, whose first Command publish fails (a broker away).
  let first = true;
  const bus: Bus = {
    publish: (event) => {
      if (event.type !== 'Command' || !first) return ctx.bus.publish(event);
      first = false;
      return Promise.reject(new AgateError(ErrorCode.BUS_WRITE_FAILED, 'broker away', { retriable: true }));
    },
    requestVerdict: (command, deadlineMs, options) => ctx.bus.requestVerdict(command, deadlineMs, options),
    subscribe: (options) => ctx.bus.subscribe(options),
    close: () => ctx.bus.close(),
  };
  const engine = new KubeEngine({
    bus, verdictTimeoutMs: 50, log: silentLogger, upstream: { host: 'kube.internal:6443', credential: async () => CREDENTIAL },
    target: { name: 'cluster', recording: { sampleRows: 5, valueChars: 200, audit: new Masker('default', BUILTIN_MASK_SET), fields: [] }, maskers: new Map(), maskClient: undefined, maxBodyBytes: 1024, allowDiscovery: true },
  });
  const plan = await engine.request(ctx.session, { method: 'GET', target: '/version', headers: headers(), body: Buffer.alloc(0) });
  assert.is(plan.kind === 'refuse' && plan.status.code, 503);
  const command = plan.kind === 'refuse' ? undefined : plan.command;
  assert.is(command, undefined);
  // The command is recorded once the bus takes it, with the deny that says why it did not run.
  const verdicts = async () => {
    await ctx.session.events.drained();
    return ctx.recorded.filter((e): e is Verdict => e.type === 'Verdict' && e.session_id === ctx.session.id);
  };
  for (let i = 0; i < 200 && !(await verdicts()).some((v) => v.rule_id === UNRECORDABLE_RULE); i++) await new Promise((r) => setTimeout(r, 10));
  const rules = (await verdicts()).map((v) => `${v.decision}:${v.rule_id}`);
  assert.ok(rules.includes(`deny:${UNRECORDABLE_RULE}`), rules.join(', '));
  assert.not.ok(rules.includes(`allow:${DISCOVERY_RULE}`), rules.join(', '));
});

k.run();

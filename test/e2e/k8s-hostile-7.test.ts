// A hostile agent with a valid token against the Kubernetes proxy, tenth pass: representations of
// an answer other than the object itself. Real kube-apiserver (its audit log the witness), real
// Agate process, real kubectl and raw HTTPS clients.
import { suite } from '../harness/suite.js';
import * as assert from 'uvu/assert';
import { agentKubectl, busLog, stopKubeAgate, startKubeAgate, type KubeAgate } from './kube-agate.js';
import { admin, raw } from './kube-raw.js';

const test = suite<KubeAgate>('e2e/kubernetes hostile agent, tenth pass');

const POLICY = `policy:
  default: allow
`;
/** Every answer to the agent is masked, with a field rule beyond Secret data. */
const TARGET = `    mask_client: true
    mask_fields: ["Event:message", "Lease:spec.holderIdentity"]
`;

/** Values that must never reach the agent (nor the record). */
const MESSAGE = 'event-message-canary';
const HOLDER = 'lease-holder-canary';

test.before(async (ctx) => {
  try {
    Object.assign(ctx, await startKubeAgate(POLICY, TARGET, '', { auditLog: true }));
    await admin(ctx, ['create', '-f', '-'], JSON.stringify({
      apiVersion: 'v1', kind: 'Event', metadata: { name: 'probe.1', namespace: 'default' },
      involvedObject: { kind: 'Pod', name: 'worker', namespace: 'default' }, reason: 'Probe', message: MESSAGE, type: 'Normal',
    }));
    await admin(ctx, ['create', '-f', '-'], JSON.stringify({
      apiVersion: 'coordination.k8s.io/v1', kind: 'Lease', metadata: { name: 'leader', namespace: 'default' }, spec: { holderIdentity: HOLDER },
    }));
  } catch (err) {
    console.error('setup failed:', err);
    throw err;
  }
});

test.after((ctx) => stopKubeAgate(ctx));

const TABLE = 'application/json;as=Table;v=v1;g=meta.k8s.io';

test('a masked field shown in a Table\'s cells (kubectl get, any includeObject, a watch of tables) never shows the value', async (ctx) => {
  const forms: Array<[string, Record<string, string>]> = [
    ['/api/v1/namespaces/default/events', { accept: TABLE }],
    ['/api/v1/namespaces/default/events?includeObject=None', { accept: TABLE }],
    ['/api/v1/namespaces/default/events?includeObject=Object', { accept: TABLE }],
    ['/api/v1/namespaces/default/events/probe.1', { accept: TABLE }],
    ['/api/v1/events?watch=1&timeoutSeconds=1', { accept: TABLE }],
    ['/apis/coordination.k8s.io/v1/namespaces/default/leases?includeObject=None', { accept: TABLE }],
    ['/api/v1/namespaces/default/events/probe.1', {}],
  ];
  const seen: string[] = [];
  for (const [path, headers] of forms) {
    const r = await raw(ctx, 'GET', path, headers);
    const leaked = r.body.includes(MESSAGE) || r.body.includes(HOLDER);
    seen.push(`${path} ${headers.accept === undefined ? 'json' : 'table'}: ${r.status} ${leaked ? 'LEAKED' : 'masked'}`);
  }
  for (const args of [['get', 'events'], ['get', 'leases'], ['get', 'events', '-o', 'wide']]) {
    const k = await agentKubectl(ctx, ['-n', 'default', ...args]);
    seen.push(`kubectl ${args.join(' ')}: ${k.code} ${k.stdout.includes(MESSAGE) || k.stdout.includes(HOLDER) ? 'LEAKED' : 'masked'}`);
  }
  // (Before: every one of the Table forms above, and kubectl get events and leases, showed the value.)
  assert.equal(seen.filter((s) => !/ 200 masked$| 0 masked$/.test(s)), [], seen.join('\n'));
  const events = await agentKubectl(ctx, ['-n', 'default', 'get', 'events']);
  assert.match(events.stdout, '[masked]');
  // A kind no field rule names is printed as it was.
  await admin(ctx, ['-n', 'default', 'create', 'configmap', 'plain', '--from-literal=a=1']);
  const maps = await agentKubectl(ctx, ['-n', 'default', 'get', 'configmap', 'plain']);
  assert.match(maps.stdout, /plain\s+1\s+\d+s/);
  const log = busLog(ctx);
  assert.not.ok(log.includes(MESSAGE) || log.includes(HOLDER), 'the value is in the bus log');
});

test('a secret in a list of strings (a container\'s args, a Table cell) is found by the detectors: masked in the record and the masked answer', async (ctx) => {
  const key = 'AKIAPOIUYTREWQLKJHGF';
  const run = await agentKubectl(ctx, ['-n', 'default', 'run', 'leaky', '--image=registry.invalid/none', '--restart=Never', '--', 'sh', '-c', `export KEY=${key}; sleep 1`]);
  assert.is(run.code, 0, run.stderr);
  // The API server stored it as sent (its own copy, read by the administrator).
  const stored = await ctx.kube.kubectl(['-n', 'default', 'get', 'pod', 'leaky', '-o', 'jsonpath={.spec.containers[0].args}']);
  assert.match(stored.stdout, key);
  const got = await agentKubectl(ctx, ['-n', 'default', 'get', 'pod', 'leaky', '-o', 'json']);
  assert.is(got.code, 0, got.stderr);
  // (Before: the args came back and were recorded as sent: only strings under a key were looked at.)
  assert.not.match(got.stdout, key);
  assert.match(got.stdout, 'export KEY=[masked:cloud_access_key]');
  assert.not.ok(busLog(ctx).includes(key), 'the key is in the bus log');
});

test.run();

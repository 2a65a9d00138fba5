// Secret values through the Kubernetes proxy, with the real kubectl and kube-apiserver: every way
// kubectl writes a Secret leaves its values out of the bus log and the store; a rule that masks
// Secret reads masks every response that carries a Secret; a masked read sent back is refused.
import { suite } from '../harness/suite.js';
import * as assert from 'uvu/assert';
import { agentKubectl, busLog, commandsWhere, events, responsesOf, sql, startKubeAgate, stopKubeAgate, type KubeAgate } from './kube-agate.js';
import { until } from '../harness/until.js';

const MASKED_B64 = Buffer.from('[masked]').toString('base64');
const b64 = (s: string) => Buffer.from(s).toString('base64');

const test = suite<KubeAgate>('e2e/kubernetes Secret values');

test.before(async (ctx) => {
  try {
    Object.assign(ctx, await startKubeAgate(`policy:
  default: allow
  rules:
    - id: secrets-masked
      action: allow
      mask_client: true
      match: { kubernetes: { verbs: [get, list, watch], resources: [secrets] } }`));
  } catch (err) {
    console.error('setup failed:', err);
    throw err;
  }
});

test.after((ctx) => stopKubeAgate(ctx));

const ok = (r: { code: number | null; stdout: string; stderr: string }, what: string) => assert.is(r.code, 0, `${what}: ${r.stderr}`);

test('every write of a Secret (each patch type, apply client- and server-side, replace, create) leaves no value in the bus log or the store', async (ctx) => {
  // One canary per way in: a leak names the path it took.
  const canary = (name: string) => `canary-${name}-${Math.random().toString(36).slice(2, 10)}`;
  const c = {
    mergeStringData: canary('merge-sd'), mergeData: canary('merge-data'), strategic: canary('smp'), jsonAdd: canary('json-add'),
    jsonReplace: canary('json-replace'), jsonTest: canary('json-test'), serverApply: canary('ssa'), clientApply1: canary('csa1'), clientApply2: canary('csa2'),
    replace: canary('replace'), create: canary('create'),
  };
  ok(await agentKubectl(ctx, ['create', 'secret', 'generic', 's1', '--from-literal=seed=seed-value']), 'create s1');
  ok(await agentKubectl(ctx, ['patch', 'secret', 's1', '--type', 'merge', '-p', JSON.stringify({ stringData: { pw2: c.mergeStringData } })]), 'merge stringData');
  ok(await agentKubectl(ctx, ['patch', 'secret', 's1', '--type', 'merge', '-p', JSON.stringify({ data: { 'tls.key': b64(c.mergeData) } })]), 'merge data');
  ok(await agentKubectl(ctx, ['patch', 'secret', 's1', '-p', JSON.stringify({ data: { k3: b64(c.strategic) } })]), 'strategic');
  ok(await agentKubectl(ctx, ['patch', 'secret', 's1', '--type', 'json', '-p', JSON.stringify([{ op: 'add', path: '/data/k4', value: b64(c.jsonAdd) }])]), 'json add');
  ok(await agentKubectl(ctx, ['patch', 'secret', 's1', '--type', 'json', '-p', JSON.stringify([{ op: 'add', path: '/stringData', value: { k5: c.jsonReplace } }])]), 'json add map');
  // A test op (a guess at a masked value) is refused, its value still recorded, masked.
  const failed = await agentKubectl(ctx, ['patch', 'secret', 's1', '--type', 'json', '-p', JSON.stringify([{ op: 'test', path: '/data/k4', value: b64(c.jsonTest) }])]);
  assert.is.not(failed.code, 0);
  assert.match(failed.stderr, 'Agate refused the JSON patch');
  const secret = (name: string, data: Record<string, string>) => JSON.stringify({ apiVersion: 'v1', kind: 'Secret', metadata: { name, namespace: 'default' }, stringData: data });
  ok(await agentKubectl(ctx, ['apply', '--server-side', '-f', '-'], { input: `apiVersion: v1\nkind: Secret\nmetadata: {name: s2, namespace: default}\nstringData:\n  k6: ${c.serverApply}\n` }), 'server-side apply');
  ok(await agentKubectl(ctx, ['apply', '-f', '-'], { input: secret('s3', { username: c.clientApply1 }) }), 'client-side apply (create)');
  ok(await agentKubectl(ctx, ['apply', '-f', '-'], { input: secret('s3', { username: c.clientApply2 }) }), 'client-side apply (patch)');
  ok(await agentKubectl(ctx, ['create', '-f', '-'], { input: secret('s4', { k8: c.create }) }), 'create -f');
  ok(await agentKubectl(ctx, ['replace', '-f', '-'], { input: secret('s4', { k7: c.replace }) }), 'replace');

  // The writes reached the API server: every canary not overwritten later (or refused) is stored there.
  const stored = await ctx.kube.kubectl(['get', 'secrets', '-n', 'default', '-o', 'json']);
  const values = (JSON.parse(stored.stdout).items as { data?: Record<string, string> }[]).flatMap((s) => Object.values(s.data ?? {}).map((v) => Buffer.from(v, 'base64').toString()));
  for (const [name, value] of Object.entries(c)) if (!['jsonTest', 'clientApply1', 'create'].includes(name)) assert.ok(values.includes(value), `${name} stored on the API server`);

  const patches = await until('every write recorded with its response', () => {
    const e = events(ctx);
    const writes = commandsWhere(e, (x) => x.attributes.resource === 'secrets' && ['create', 'update', 'patch'].includes(x.attributes.verb ?? ''));
    return writes.length >= 12 && writes.every((w) => responsesOf(e, w).length > 0) ? writes : undefined;
  });
  // The record still says what was written: the keys, with their values masked.
  const merge = patches.find((x) => (x.parameters[0] ?? '').includes('pw2'));
  assert.is(merge?.parameters[0], '{"stringData":{"pw2":"[masked]"}}');
  const json = patches.find((x) => (x.parameters[0] ?? '').includes('/data/k4') && (x.parameters[0] ?? '').includes('"add"'));
  assert.is(json?.parameters[0], `[{"op":"add","path":"/data/k4","value":"${MASKED_B64}"}]`);
  assert.match(patches.find((x) => x.attributes.content_type === 'application/apply-patch+yaml')?.parameters[0] ?? '', '"k6":"[masked]"');

  const bus = busLog(ctx);
  for (const [name, value] of Object.entries(c)) {
    for (const needle of [value, b64(value)]) {
      assert.is(bus.indexOf(needle), -1, `${name} (${needle}) in the bus log`);
      assert.not.ok(ctx.agate.stderr().includes(needle), `${name} in Agate's log`);
    }
  }
  const needles = Object.values(c).flatMap((v) => [v, b64(v)]);
  const leaks = await until('the store to hold every write', async () => {
    const seen = await sql<{ n: string }>(ctx, `SELECT count() AS n FROM agate.commands WHERE protocol = 'kubernetes' AND text LIKE '%secrets%' AND text NOT LIKE 'GET%'`);
    if (Number(seen[0]?.n ?? 0) < 12) return undefined;
    const seenResponses = await sql<{ n: string }>(ctx, `SELECT count() AS n FROM agate.responses`);
    if (Number(seenResponses[0]?.n ?? 0) < 12) return undefined;
    // Every column of every view analysts can read (the ledger's own table is not one of them;
    // the raw bus log above holds every event's bytes).
    const views = ['commands', 'responses', 'verdicts', 'sessions', 'session_index', 'approvals', 'approval_requests', 'auth_failures'];
    const hit = needles.map((n) => `position(toString(tuple(*)), '${n}') > 0`).join(' OR ');
    return sql<{ v: string; n: string }>(ctx, views.map((v) => `SELECT '${v}' AS v, count() AS n FROM agate.${v} WHERE ${hit}`).join(' UNION ALL '));
  }, 30_000);
  assert.equal(leaks.filter((r) => Number(r.n) > 0), [], 'a canary is in the store');
});

test('mask_client on Secret reads holds for every response that carries a Secret: patch, JSON patch, label, replace, create', async (ctx) => {
  const value = 'real-apikey-value-8086';
  ok(await ctx.kube.kubectl(['create', 'secret', 'generic', 'api', `--from-literal=apikey=${value}`]), 'create directly');
  const patched = await agentKubectl(ctx, ['patch', 'secret', 'api', '-p', '{"metadata":{"annotations":{"p":"2"}}}', '-o', 'jsonpath={.data.apikey}']);
  ok(patched, 'patch');
  assert.is(patched.stdout, MASKED_B64);
  const json = await agentKubectl(ctx, ['patch', 'secret', 'api', '--type', 'json', '-p', '[{"op":"add","path":"/metadata/labels","value":{"a":"b"}}]', '-o', 'jsonpath={.data.apikey}']);
  ok(json, 'json patch');
  assert.is(json.stdout, MASKED_B64);
  const labelled = await agentKubectl(ctx, ['label', 'secret', 'api', 'x=y', '-o', 'json']);
  ok(labelled, 'label');
  assert.is(JSON.parse(labelled.stdout).data.apikey, MASKED_B64);
  const created = await agentKubectl(ctx, ['create', 'secret', 'generic', 'fresh', `--from-literal=k=${value}`, '-o', 'json']);
  ok(created, 'create');
  assert.is(JSON.parse(created.stdout).data.k, MASKED_B64);
  const replaced = await agentKubectl(ctx, ['replace', '-o', 'json', '-f', '-'], { input: JSON.stringify({ apiVersion: 'v1', kind: 'Secret', metadata: { name: 'fresh', namespace: 'default' }, stringData: { k: value } }) });
  ok(replaced, 'replace');
  assert.is(JSON.parse(replaced.stdout).data.k, MASKED_B64);
  for (const r of [patched, json, labelled, created, replaced]) assert.not.ok(r.stdout.includes(b64(value)), 'the real value reached kubectl');
  const direct = await ctx.kube.kubectl(['get', 'secret', 'api', '-o', 'jsonpath={.data.apikey}']);
  assert.is(direct.stdout, b64(value), 'the API server keeps the real value');
});

test('a masked Secret sent back (get -o yaml | replace -f -) is refused with a Status that says why; the real value stays', async (ctx) => {
  const value = 'round-trip-value-2718';
  ok(await ctx.kube.kubectl(['create', 'secret', 'generic', 'rt', `--from-literal=apikey=${value}`]), 'create directly');
  const yaml = await agentKubectl(ctx, ['get', 'secret', 'rt', '-o', 'yaml']);
  ok(yaml, 'get');
  assert.match(yaml.stdout, `apikey: ${MASKED_B64}`);
  const replaced = await agentKubectl(ctx, ['replace', '-f', '-'], { input: yaml.stdout });
  assert.is.not(replaced.code, 0);
  assert.match(replaced.stderr, 'The secrets "rt" is invalid');
  assert.match(replaced.stderr, 'data.apikey: Agate refused the write');
  assert.match(replaced.stderr, 'holds the value Agate masked when it was read, not the real one');
  const applied = await agentKubectl(ctx, ['apply', '-f', '-'], { input: yaml.stdout });
  assert.is.not(applied.code, 0, 'apply of the masked copy');
  assert.match(applied.stderr, 'holds the value Agate masked when it was read');
  const direct = await ctx.kube.kubectl(['get', 'secret', 'rt', '-o', 'jsonpath={.data.apikey}']);
  assert.is(direct.stdout, b64(value), 'the API server keeps the real value');
  const refused = await until('the refusal recorded', () => {
    const e = events(ctx);
    const put = commandsWhere(e, (x) => x.attributes.verb === 'update' && x.attributes.name === 'rt')[0];
    return put !== undefined ? responsesOf(e, put)[0] : undefined;
  });
  assert.equal([refused.status, refused.error_code], ['refused', 'MASKED_VALUE_WRITE']);
});

test.run();

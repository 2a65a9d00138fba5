// Exactness of the record for Kubernetes dry runs: a write the API server runs as a dry run
// (nothing stored) must be recorded as one, and a write that only looks like one in its text
// must not. The kube-apiserver's audit log and the objects it stores, read with the
// administrator's credential, witness what was done. Real kube-apiserver, real Agate, raw HTTPS.
import { suite } from '../harness/suite.js';
import * as assert from 'uvu/assert';
import { commandsWhere, events, responsesOf, sql, stopKubeAgate, type KubeAgate } from './kube-agate.js';
import { admin, audited, raw, startAuditedKube } from './kube-raw.js';
import { until } from '../harness/until.js';

const test = suite<KubeAgate>('e2e/kubernetes: dry runs in the record');

test.before((ctx) => startAuditedKube(ctx, 'policy:\n  default: allow\n  rules: []\n', async () => {
  for (const name of ['kept-1', 'kept-2', 'gone-1', 'gone-2']) await admin(ctx, ['-n', 'default', 'create', 'configmap', name, '--from-literal=a=1']);
}));

test.after((ctx) => stopKubeAgate(ctx));

const JSON_TYPE = { 'content-type': 'application/json' };
const cm = (name: string) => JSON.stringify({ apiVersion: 'v1', kind: 'ConfigMap', metadata: { name, namespace: 'default' }, data: { a: '2' } });

test('a dry run is recorded as one (attributes.dry_run, shown by agate.activity); a write that only reads like one is not', async (ctx) => {
  const path = '/api/v1/namespaces/default/configmaps';
  const tries: Array<[string, string, Record<string, string>, string | undefined, boolean]> = [
    // [method, path, headers, body, the API server runs it as a dry run]
    ['POST', `${path}?dryRun=All`, JSON_TYPE, cm('dry-create'), true],
    ['DELETE', `${path}/kept-1?dryRun=All`, {}, undefined, true],
    // DeleteOptions in the body: the API server reads them there, and the query's dryRun not at all.
    ['DELETE', `${path}/kept-2`, JSON_TYPE, '{"dryRun":["All"]}', true],
    ['DELETE', `${path}/gone-1?dryRun=All`, JSON_TYPE, '{}', false],
    // Not the parameter's name: an ordinary create.
    ['POST', `${path}?dryrun=All`, JSON_TYPE, cm('real-create'), false],
    ['DELETE', `${path}/gone-2?dryRun=All&dryRun=`, {}, undefined, false],
  ];
  for (const [method, p, headers, body] of tries) await raw(ctx, method, p, headers, body);
  // The oracle: what the API server stored.
  const stored = (await ctx.kube.kubectl(['-n', 'default', 'get', 'configmaps', '-o', 'name'])).stdout.split('\n').filter(Boolean).sort();
  assert.ok(stored.includes('configmap/kept-1') && stored.includes('configmap/kept-2') && !stored.includes('configmap/gone-1') && stored.includes('configmap/real-create') && !stored.includes('configmap/dry-create'), stored.join(' '));
  const served = await audited(ctx, (e) => e.objectRef?.namespace === 'default' && e.objectRef.resource === 'configmaps' && e.user?.username !== 'admin' && ['create', 'delete'].includes(e.verb));
  assert.ok(served.length >= 5, served.map((e) => e.requestURI).join('\n'));

  const e = await until('every request recorded with its response', () => {
    const evs = events(ctx);
    const cs = commandsWhere(evs, (c) => c.attributes.namespace === 'default' && c.attributes.resource === 'configmaps' && ['create', 'delete'].includes(c.attributes.verb ?? ''));
    return cs.length === tries.length && cs.every((c) => responsesOf(evs, c).length > 0) ? { evs, cs } : undefined;
  });
  const recorded = e.cs.map((c) => `${c.text}: ${c.attributes.dry_run ?? 'not a dry run'}`);
  const gone2 = (await ctx.kube.kubectl(['-n', 'default', 'get', 'configmap', 'gone-2'])).code;
  assert.equal(recorded, tries.map(([method, p, , , dry]) => `${method} ${p}: ${dry ? 'All' : 'not a dry run'}`), recorded.join('\n'));
  assert.is(gone2, 0, 'dryRun= with an empty value is refused by the API server (422), nothing deleted');
  // What an analyst reads.
  const shown = await until('agate.activity shows them', async () => {
    const rows = await sql<{ text: string; dry: string }>(ctx, "SELECT text, attributes['dry_run'] AS dry FROM agate.activity WHERE protocol = 'kubernetes' AND attributes['resource'] = 'configmaps' AND attributes['verb'] IN ('create', 'delete') ORDER BY time");
    return rows.length === tries.length ? rows : undefined;
  });
  assert.equal(shown.map((r) => `${r.text}: ${r.dry || 'not a dry run'}`), tries.map(([method, p, , , dry]) => `${method} ${p}: ${dry ? 'All' : 'not a dry run'}`));
});

test.run();

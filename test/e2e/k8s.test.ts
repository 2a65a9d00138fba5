// The Kubernetes API proxy end to end: `agate start` with a kubernetes target in front of a real
// kube-apiserver (with etcd), and the real kubectl pointed at Agate through the kubeconfig that
// `agate kubeconfig` prints. What Agate recorded is read back from its bus log and, through the
// query API, from the store. There is no kubelet, so pods never run: exec is tested at the
// protocol level (decided by policy, then answered by the API server itself).
import { suite } from '../harness/suite.js';
import { ocsfErrors } from '../harness/ocsf-validator.js';
import * as assert from 'uvu/assert';
import { spawn } from 'node:child_process';
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import type { AuthenticationFailed, Verdict } from '../../schemas/src/events.js';
import { startKubeApiServer, type KubeApiServer } from '../harness/kube-apiserver.js';
import { startOidcIssuer, type OidcIssuer } from '../harness/oidc-issuer.js';
import { findFreePort } from '../harness/postgres.js';
import { run, type RunResult } from '../harness/proc.js';
import { cleanEnv, startAgateProcess, type AgateProcess } from './agate-process.js';
import { busLog, commandsWhere, events, kubeAgateConfig, kubeTargetYaml, responsesOf, sql, verdictOf } from './kube-agate.js';
import { until } from '../harness/until.js';

interface Ctx {
  kube: KubeApiServer;
  issuer: OidcIssuer;
  agate: AgateProcess;
  /** kubeconfig files printed by `agate kubeconfig` for the two targets. */
  kubeconfig: string;
  imposterKubeconfig: string;
  cacheDir: string;
}

const SECRET_VALUE = 'S3cret-Value-Nobody-May-See-4711';
const SECRET_B64 = Buffer.from(SECRET_VALUE).toString('base64');

const k8s = suite<Ctx>('e2e/kubernetes proxy');

k8s.before(async (ctx) => {
  try {
    await setup(ctx);
  } catch (err) {
    // uvu reports a failed hook only as failed tests; say why.
    console.error('setup failed:', err);
    throw err;
  }
});

async function setup(ctx: Ctx): Promise<void> {
  const [kube, issuer] = await Promise.all([startKubeApiServer(), startOidcIssuer({ audience: 'agate' })]);
  ctx.kube = kube;
  ctx.issuer = issuer;
  const [port, imposterPort] = [await findFreePort(), await findFreePort()];
  // Agate's upstream credential for `imposter` trusts the wrong CA: every request must fail.
  const wrongCa = await kube.writeKubeconfig({ caFile: kube.otherCaFile, path: join(kube.dir, 'wrong-ca.kubeconfig') });
  ctx.agate = await startAgateProcess({
    configYaml: kubeAgateConfig(issuer, kubeTargetYaml(kube, 'cluster', port) + kubeTargetYaml(kube, 'imposter', imposterPort, wrongCa), `policy:
  default: allow
  rules:
    - id: hold-held-deletes
      action: hold
      message: deleting in namespace held needs a human
      match: { kubernetes: { verbs: [delete], resources: [configmaps], namespaces: [held] } }
      approval: { timeout_s: 60 }
    - id: no-namespace-delete
      action: deny
      message: deleting a namespace needs a human
      match: { kubernetes: { verbs: [delete, deletecollection], resources: [namespaces] } }
    - id: no-exec-in-kube-system
      action: deny
      message: no shells in kube-system
      match: { kubernetes: { resources: [pods/exec], namespaces: [kube-system] } }
    - id: secrets-masked
      action: allow
      mask_client: true
      match: { kubernetes: { verbs: [get, list, watch], resources: [secrets] } }`),
  });
  ctx.cacheDir = join(ctx.agate.dir, 'kube-cache');
  for (const [target, file, p] of [['cluster', 'agent.kubeconfig', port], ['imposter', 'imposter.kubeconfig', imposterPort]] as const) {
    const r = await ctx.agate.cli(['kubeconfig', '--config', ctx.agate.configPath, '--target', target, '--server', `https://127.0.0.1:${p}`]);
    assert.is(r.code, 0, r.stderr);
    writeFileSync(join(ctx.agate.dir, file), r.stdout);
  }
  ctx.kubeconfig = join(ctx.agate.dir, 'agent.kubeconfig');
  ctx.imposterKubeconfig = join(ctx.agate.dir, 'imposter.kubeconfig');
}

k8s.after(async (ctx) => {
  await ctx.agate?.dispose();
  await ctx.issuer?.close();
  await ctx.kube?.stop();
});

/** kubectl through Agate, the agent's token in AGATE_TOKEN (read by the kubeconfig's exec plugin). */
async function kubectl(ctx: Ctx, args: string[], opts: { token?: string; input?: string; kubeconfig?: string } = {}): Promise<RunResult> {
  const token = opts.token ?? (await ctx.issuer.mint(ctx.issuer.githubActionsClaims()));
  return run(ctx.kube.kubectlPath, ['--kubeconfig', opts.kubeconfig ?? ctx.kubeconfig, '--cache-dir', ctx.cacheDir, ...args], {
    env: cleanEnv({ AGATE_TOKEN: token }), input: opts.input, timeoutMs: 60_000,
  });
}

const CONFIGMAP = (name: string) => `apiVersion: v1
kind: ConfigMap
metadata: { name: ${name}, namespace: default }
data: { greeting: hello }
`;

k8s('kubectl get, apply, delete through Agate: decided, forwarded and recorded in the store', async (ctx) => {
  const ns = await kubectl(ctx, ['get', 'namespaces']);
  assert.is(ns.code, 0, ns.stderr);
  assert.match(ns.stdout, /^default\s+Active/m);

  const applied = await kubectl(ctx, ['apply', '-f', '-'], { input: CONFIGMAP('agate-cm') });
  assert.is(applied.code, 0, applied.stderr);
  assert.match(applied.stdout, /configmap\/agate-cm created/);
  const direct = await ctx.kube.kubectl(['get', 'configmap', 'agate-cm', '-o', 'jsonpath={.data.greeting}']);
  assert.is(direct.stdout, 'hello', 'the object reached the real API server');

  const got = await kubectl(ctx, ['get', 'configmap', 'agate-cm', '-o', 'json']);
  assert.is(got.code, 0, got.stderr);
  assert.is(JSON.parse(got.stdout).data.greeting, 'hello');

  const deleted = await kubectl(ctx, ['delete', 'configmap', 'agate-cm']);
  assert.is(deleted.code, 0, deleted.stderr);
  assert.match(deleted.stdout, /configmap "agate-cm" deleted/);

  const evs = await until('the delete response', () => {
    const e = events(ctx);
    const del = commandsWhere(e, (c) => c.attributes.verb === 'delete' && c.attributes.name === 'agate-cm')[0];
    return del !== undefined && responsesOf(e, del).length > 0 ? e : undefined;
  });
  const create = commandsWhere(evs, (c) => c.attributes.verb === 'create' && c.attributes.resource === 'configmaps')[0]!;
  assert.ok(create, 'the apply was recorded as a create');
  assert.is(create.attributes.namespace, 'default');
  assert.match(create.parameters[0] ?? '', /"greeting":"hello"/, 'the request body sample is recorded');
  assert.match(create.attributes.body_digest ?? '', /^sha256:[0-9a-f]{64}$/);
  assert.is(verdictOf(evs, create)?.decision, 'allow');
  const createResponse = responsesOf(evs, create)[0]!;
  assert.is(createResponse.command_tag, '201 ConfigMap');
  assert.equal(createResponse.sample[0]?.slice(0, 3), ['ConfigMap', 'default', 'agate-cm']);
  const list = commandsWhere(evs, (c) => c.attributes.verb === 'list' && c.attributes.resource === 'namespaces')[0]!;
  const listResponse = responsesOf(evs, list)[0]!;
  assert.ok(listResponse.rows >= 4, `namespaces listed: ${listResponse.rows}`);
  assert.match(listResponse.digest ?? '', /^sha256:/);
  assert.ok(listResponse.bytes > 0);

  const rows = await until('the commands in the store', async () => {
    const r = await sql<{ text: string; decision: string; status: string; command_tag: string }>(ctx,
      `SELECT c.text AS text, v.decision AS decision, r.status AS status, r.command_tag AS command_tag FROM agate.commands c
       JOIN agate.verdicts v ON v.command_id = c.command_id JOIN agate.responses r ON r.command_id = c.command_id
       WHERE c.protocol = 'kubernetes' AND c.text LIKE '%configmaps%agate-cm%' ORDER BY c.time`);
    return r.some((x) => x.text.startsWith('DELETE')) ? r : undefined;
  });
  const del = rows.find((r) => r.text === 'DELETE /api/v1/namespaces/default/configmaps/agate-cm')!;
  assert.ok(del, JSON.stringify(rows));
  assert.equal([del.decision, del.status, del.command_tag], ['allow', 'ok', '200 Status']);
});

k8s('kubectl get -w: the watch streams through Agate and each event is recorded', async (ctx) => {
  // No controller-manager runs, so a namespace starts empty: a first object gives the list a line.
  const seed = await ctx.kube.kubectl(['apply', '-f', '-'], { input: CONFIGMAP('watch-seed') });
  assert.is(seed.code, 0, seed.stderr);
  const token = await ctx.issuer.mint(ctx.issuer.githubActionsClaims());
  const watch = spawn(ctx.kube.kubectlPath, ['--kubeconfig', ctx.kubeconfig, '--cache-dir', ctx.cacheDir, 'get', 'configmaps', '-n', 'default', '-w', '--no-headers'], {
    env: cleanEnv({ AGATE_TOKEN: token }), stdio: ['ignore', 'pipe', 'pipe'],
  });
  let out = '';
  let err = '';
  watch.stdout.on('data', (d: Buffer) => (out += d.toString()));
  watch.stderr.on('data', (d: Buffer) => (err += d.toString()));
  try {
    await until('the watch to list', () => (out.includes('watch-seed') ? true : undefined), 30_000).catch((e) => {
      throw new Error(`${(e as Error).message}\nstdout: ${out}\nstderr: ${err}`);
    });
    const made = await ctx.kube.kubectl(['apply', '-f', '-'], { input: CONFIGMAP('watched-cm') });
    assert.is(made.code, 0, made.stderr);
    await until('the watch event in kubectl', () => (out.includes('watched-cm') ? true : undefined), 30_000);
  } finally {
    watch.kill('SIGTERM');
  }
  await new Promise((r) => watch.once('exit', r));
  const evs = await until('the end of the watch recorded', () => {
    const e = events(ctx);
    const w = commandsWhere(e, (c) => c.attributes.verb === 'watch' && c.attributes.resource === 'configmaps')[0];
    return w !== undefined && responsesOf(e, w).some((r) => /watch ended/.test(r.command_tag ?? '')) ? e : undefined;
  });
  const w = commandsWhere(evs, (c) => c.attributes.verb === 'watch' && c.attributes.resource === 'configmaps')[0]!;
  const rs = responsesOf(evs, w);
  const added = rs.find((r) => r.command_tag === 'watch ADDED' && r.sample[0]?.[3] === 'watched-cm');
  assert.ok(added, `watch events recorded: ${rs.map((r) => `${r.command_tag} ${r.sample[0]?.[3]}`).join(', ')}`);
  // kubectl watches as a Table: its rows carry metadata only (the resource is in the command).
  assert.equal(added!.sample[0]!.slice(0, 4), ['ADDED', 'PartialObjectMetadata', 'default', 'watched-cm']);
  assert.is(w.attributes.resource, 'configmaps');
  const end = rs.find((r) => /watch ended/.test(r.command_tag ?? ''))!;
  assert.ok(end.rows >= 1);
  assert.match(end.digest ?? '', /^sha256:/);
});

k8s('deleting a namespace is refused with a readable message when the policy denies it', async (ctx) => {
  const made = await ctx.kube.kubectl(['create', 'namespace', 'doomed']);
  assert.is(made.code, 0, made.stderr);
  const r = await kubectl(ctx, ['delete', 'namespace', 'doomed']);
  assert.is.not(r.code, 0);
  assert.match(r.stderr, 'Error from server (Forbidden): Agate refused delete namespaces "doomed" by rule "no-namespace-delete": deleting a namespace needs a human');
  const still = await ctx.kube.kubectl(['get', 'namespace', 'doomed', '-o', 'jsonpath={.status.phase}']);
  assert.is(still.stdout, 'Active', 'the namespace was not deleted');
  const evs = await until('the refusal recorded', () => {
    const e = events(ctx);
    const c = commandsWhere(e, (x) => x.text === 'DELETE /api/v1/namespaces/doomed')[0];
    return c !== undefined && responsesOf(e, c).length > 0 ? e : undefined;
  });
  const c = commandsWhere(evs, (x) => x.text === 'DELETE /api/v1/namespaces/doomed')[0]!;
  assert.equal([verdictOf(evs, c)?.decision, verdictOf(evs, c)?.rule_id], ['deny', 'no-namespace-delete']);
  assert.equal([responsesOf(evs, c)[0]?.status, responsesOf(evs, c)[0]?.error_code], ['refused', 'POLICY_DENIED']);
});

k8s('a held delete waits for an approver, then runs; kubectl sees only the delay', async (ctx) => {
  for (const args of [['create', 'namespace', 'held'], ['-n', 'held', 'create', 'configmap', 'precious', '--from-literal=a=b']]) {
    const r = await ctx.kube.kubectl(args);
    assert.is(r.code, 0, r.stderr);
  }
  let settled = false;
  const deletion = kubectl(ctx, ['delete', 'configmap', 'precious', '-n', 'held', '--request-timeout=90s']).finally(() => (settled = true));
  const analyst = await ctx.issuer.mint({ sub: 'auditor', agate_role: 'auditor' });
  const pending = await until('the approval request', async () => {
    const res = await fetch(`${ctx.agate.apiUrl}/v1/approvals?status=pending`, { headers: { authorization: `Bearer ${analyst}` } });
    const body = (await res.json()) as { approvals?: { approval_id: string; text: string }[] };
    return body.approvals?.find((a) => a.text.includes('/configmaps/precious'));
  }, 30_000);
  const still = await ctx.kube.kubectl(['-n', 'held', 'get', 'configmap', 'precious', '-o', 'name']);
  assert.is(still.stdout.trim(), 'configmap/precious', 'nothing ran while held');
  assert.not.ok(settled, 'kubectl still waits');
  const alice = await ctx.issuer.mint({ sub: 'alice', agate_role: 'approver' });
  const ok = await ctx.agate.cli(['approve', pending.approval_id, '--config', ctx.agate.configPath, '--token', alice]);
  assert.is(ok.code, 0, ok.stdout + ok.stderr);
  const r = await deletion;
  assert.is(r.code, 0, r.stderr);
  assert.match(r.stdout, /configmap "precious" deleted/);
  const evs = await until('both verdicts', () => {
    const e = events(ctx);
    const c = commandsWhere(e, (x) => x.text.startsWith('DELETE /api/v1/namespaces/held/configmaps/precious'))[0];
    return c !== undefined && e.filter((v) => v.type === 'Verdict' && v.command_id === c.event_id).length === 2 && responsesOf(e, c).length > 0 ? { e, c } : undefined;
  });
  assert.equal(evs.e.filter((v): v is Verdict => v.type === 'Verdict' && v.command_id === evs.c.event_id).map((v) => v.decision), ['hold', 'allow']);
  assert.is(responsesOf(evs.e, evs.c)[0]?.status, 'ok');
});

k8s('a Secret read through Agate comes back masked; its value is nowhere in the bus, the store or the logs', async (ctx) => {
  const made = await kubectl(ctx, ['create', 'secret', 'generic', 'db-cred', '-n', 'default', `--from-literal=password=${SECRET_VALUE}`]);
  assert.is(made.code, 0, made.stderr);
  const direct = await ctx.kube.kubectl(['get', 'secret', 'db-cred', '-o', 'jsonpath={.data.password}']);
  assert.is(direct.stdout, SECRET_B64, 'the API server holds the real value');

  const got = await kubectl(ctx, ['get', 'secret', 'db-cred', '-o', 'json']);
  assert.is(got.code, 0, got.stderr);
  const secret = JSON.parse(got.stdout);
  assert.is(Buffer.from(secret.data.password, 'base64').toString(), '[masked]');
  const listed = await kubectl(ctx, ['get', 'secrets', '-n', 'default', '-o', 'json']);
  assert.is(listed.code, 0, listed.stderr);
  assert.not.match(listed.stdout, SECRET_B64);
  assert.match(listed.stdout, /db-cred/);

  const evs = await until('the secret reads recorded', () => {
    const e = events(ctx);
    const c = commandsWhere(e, (x) => x.attributes.verb === 'list' && x.attributes.resource === 'secrets')[0];
    return c !== undefined && responsesOf(e, c).length > 0 ? e : undefined;
  });
  const get = commandsWhere(evs, (x) => x.attributes.verb === 'get' && x.attributes.resource === 'secrets' && x.attributes.name === 'db-cred')[0]!;
  assert.equal([verdictOf(evs, get)?.decision, verdictOf(evs, get)?.rule_id], ['mask', 'secrets-masked']);
  assert.ok(responsesOf(evs, get)[0]!.masked_values >= 1);
  const create = commandsWhere(evs, (x) => x.attributes.verb === 'create' && x.attributes.resource === 'secrets')[0]!;
  // kubectl sends typed objects as protobuf, which Agate cannot mask: digested, never copied.
  assert.match(create.parameters[0] ?? '', /^\[\d+ bytes of application\/vnd\.kubernetes\.protobuf, not recorded\]$/, String(create.parameters[0]));
  assert.match(create.attributes.body_digest ?? '', /^sha256:/);

  // A watch on the Secret: the change made directly on the API server arrives masked too.
  const token = await ctx.issuer.mint(ctx.issuer.githubActionsClaims());
  const watch = spawn(ctx.kube.kubectlPath, ['--kubeconfig', ctx.kubeconfig, '--cache-dir', ctx.cacheDir, 'get', 'secret', 'db-cred', '-n', 'default', '-w', '-o', 'json'], {
    env: cleanEnv({ AGATE_TOKEN: token }), stdio: ['ignore', 'pipe', 'pipe'],
  });
  let out = '';
  watch.stdout.on('data', (d: Buffer) => (out += d.toString()));
  try {
    await until('the watched secret listed', () => (out.includes('db-cred') ? true : undefined), 30_000);
    const changed = await ctx.kube.kubectl(['label', 'secret', 'db-cred', 'changed=yes']);
    assert.is(changed.code, 0, changed.stderr);
    await until('the MODIFIED event', () => (out.includes('"changed": "yes"') ? true : undefined), 30_000);
  } finally {
    watch.kill('SIGTERM');
  }
  await new Promise((r) => watch.once('exit', r));
  assert.not.ok(out.includes(SECRET_B64), 'the watch delivered the secret value');
  assert.match(out, /W21hc2tlZF0=/);
  await until('the watch events recorded', () => {
    const e = events(ctx);
    const c = commandsWhere(e, (x) => x.attributes.verb === 'watch' && x.attributes.resource === 'secrets')[0];
    return c !== undefined && responsesOf(e, c).some((r) => r.command_tag === 'watch MODIFIED' && r.masked_values >= 1) ? true : undefined;
  });

  for (const needle of [SECRET_VALUE, SECRET_B64]) {
    const bus = busLog(ctx);
    assert.is(bus.indexOf(needle), -1, `${needle} in the bus log`);
    assert.not.ok(ctx.agate.stderr().includes(needle), `${needle} in Agate's log`);
  }
  const leaks = await until('the ledger to hold the secret reads', async () => {
    const seen = await sql<{ n: string }>(ctx, `SELECT count() AS n FROM agate.commands WHERE protocol = 'kubernetes' AND text LIKE '%secrets%'`);
    if (Number(seen[0]?.n ?? 0) < 3) return undefined;
    // Every column of every view analysts can read (the ledger's own table is not one of them).
    const views = ['commands', 'responses', 'verdicts', 'sessions', 'session_index', 'approvals', 'approval_requests', 'auth_failures'];
    return sql<{ n: string }>(ctx, views.map((v) => `SELECT count() AS n FROM agate.${v} WHERE position(toString(tuple(*)), '${SECRET_VALUE}') > 0 OR position(toString(tuple(*)), '${SECRET_B64}') > 0`).join(' UNION ALL '));
  });
  assert.equal(leaks.map((r) => Number(r.n)), [0, 0, 0, 0, 0, 0, 0, 0], 'the secret value is in the store');
});

k8s('exec is decided as create pods/exec: refused by policy, or forwarded and answered by the API server itself', async (ctx) => {
  // Pods can be stored but never run (no kubelet): the API server answers an exec it receives
  // with "does not have a host assigned". A namespace needs its default service account first.
  for (const ns of ['default', 'kube-system']) {
    await ctx.kube.kubectl(['-n', ns, 'create', 'serviceaccount', 'default']);
    const pod = await ctx.kube.kubectl(['-n', ns, 'run', 'idle', '--image=busybox', '--restart=Never', '--overrides={"spec":{"automountServiceAccountToken":false}}']);
    assert.is(pod.code, 0, pod.stderr);
  }
  const refused = await kubectl(ctx, ['exec', '-n', 'kube-system', 'idle', '--', 'sh']);
  assert.is.not(refused.code, 0);
  assert.match(refused.stderr, 'Agate refused create pods/exec "idle" in namespace "kube-system" by rule "no-exec-in-kube-system": no shells in kube-system', refused.stderr);
  const forwarded = await kubectl(ctx, ['exec', '-n', 'default', 'idle', '--', 'true']);
  assert.is.not(forwarded.code, 0);
  assert.match(forwarded.stderr, /pod idle does not have a host assigned/, forwarded.stderr);
  const evs = await until('the exec commands recorded', () => {
    const e = events(ctx);
    const cs = commandsWhere(e, (c) => c.attributes.subresource === 'exec');
    return cs.length >= 2 && cs.every((c) => responsesOf(e, c).length > 0) ? e : undefined;
  });
  const cs = commandsWhere(evs, (c) => c.attributes.subresource === 'exec');
  assert.ok(cs.every((c) => c.attributes.verb === 'create'), cs.map((c) => c.attributes.verb).join());
  const inDefault = cs.find((c) => c.attributes.namespace === 'default')!;
  assert.is(verdictOf(evs, inDefault)?.decision, 'allow');
  const answer = responsesOf(evs, inDefault)[0]!;
  assert.is(answer.status, 'error');
  assert.match(answer.command_tag ?? '', /^400 upgrade, \d+ bytes up, \d+ bytes down$/);
  assert.match(answer.digest ?? '', /^sha256:/);
  const inSystem = cs.find((c) => c.attributes.namespace === 'kube-system')!;
  assert.equal([verdictOf(evs, inSystem)?.rule_id, responsesOf(evs, inSystem)[0]?.status], ['no-exec-in-kube-system', 'refused']);
});

k8s('a masked read asked over a WebSocket is refused: an upgraded connection cannot be masked', async (ctx) => {
  const { default: WebSocket } = await import('ws');
  const token = await ctx.issuer.mint(ctx.issuer.githubActionsClaims());
  const server = /server: (\S+)/.exec(readFileSync(ctx.kubeconfig, 'utf8'))![1]!.replace('https:', 'wss:');
  const ws = new WebSocket(`${server}/api/v1/namespaces/default/secrets?watch=true`, ['v4.channel.k8s.io'], {
    ca: readFileSync(ctx.kube.other.caFile), headers: { authorization: `Bearer ${token}` },
  });
  const answer = await new Promise<{ code: number; body: string }>((resolve, reject) => {
    ws.once('open', () => reject(new Error('the upgrade was accepted')));
    ws.once('error', reject);
    ws.once('unexpected-response', (_req, res) => {
      let body = '';
      res.setEncoding('utf8').on('data', (d: string) => (body += d));
      res.on('end', () => resolve({ code: res.statusCode ?? 0, body }));
    });
  });
  assert.is(answer.code, 403);
  assert.match(JSON.parse(answer.body).message, 'cannot do over an upgraded (WebSocket or SPDY) connection');
});

k8s('an invalid token and a token for another audience are refused clearly and recorded', async (ctx) => {
  const garbage = await kubectl(ctx, ['get', 'pods'], { token: 'not-a-token' });
  assert.is.not(garbage.code, 0);
  assert.match(garbage.stderr, /Agate authentication failed \(AUTH_TOKEN_MALFORMED\)/);
  const other = await kubectl(ctx, ['get', 'pods'], { token: await ctx.issuer.mint(ctx.issuer.githubActionsClaims(), { audience: 'someone-else' }) });
  assert.is.not(other.code, 0);
  assert.match(other.stderr, /Agate authentication failed \(AUTH_AUDIENCE_MISMATCH\): the token was issued for another audience/);
  const expired = await kubectl(ctx, ['get', 'pods'], { token: await ctx.issuer.mintExpired(ctx.issuer.githubActionsClaims()) });
  assert.match(expired.stderr, /AUTH_TOKEN_EXPIRED/);
  const evs = await until('the failures recorded', () => {
    const e = events(ctx).filter((x): x is AuthenticationFailed => x.type === 'AuthenticationFailed' && x.protocol === 'kubernetes');
    return e.some((x) => x.reason_code === 'AUTH_AUDIENCE_MISMATCH') && e.some((x) => x.reason_code === 'AUTH_TOKEN_EXPIRED') ? e : undefined;
  });
  assert.ok(evs.some((x) => x.reason_code === 'AUTH_TOKEN_MALFORMED' && x.target === 'cluster'));
});

k8s('an API server whose certificate does not match the kubeconfig CA is refused with a clear 502', async (ctx) => {
  // (Quoted once more, with escaped quotes, when kubectl prints a discovery error.)
  const message = /Agate refused the API server of target \\?"imposter\\?": its TLS certificate does not verify against the kubeconfig's certificate authority/;
  const r = await kubectl(ctx, ['get', '--raw', '/api/v1/namespaces/default/configmaps'], { kubeconfig: ctx.imposterKubeconfig });
  assert.is.not(r.code, 0);
  assert.match(r.stderr, message, r.stderr);
  // Discovery fails first in a plain `get`; its error quotes Agate's text.
  const get = await kubectl(ctx, ['get', 'configmaps'], { kubeconfig: ctx.imposterKubeconfig });
  assert.is.not(get.code, 0);
  assert.match(get.stderr, message, get.stderr);
  const evs = await until('the failure recorded', () => {
    const e = events(ctx);
    const c = commandsWhere(e, (x) => x.target === 'imposter' && x.attributes.resource === 'configmaps')[0];
    return c !== undefined && responsesOf(e, c).length > 0 ? e : undefined;
  });
  const c = commandsWhere(evs, (x) => x.target === 'imposter' && x.attributes.resource === 'configmaps')[0]!;
  assert.equal([responsesOf(evs, c)[0]?.status, responsesOf(evs, c)[0]?.error_code], ['error', 'UPSTREAM_UNREACHABLE']);
});

k8s('the OCSF export of this traffic (API Activity, logins) validates against OCSF 1.3.0; the held delete exports who approved it', async (ctx) => {
  const analyst = await ctx.issuer.mint({ sub: 'auditor', agate_role: 'analyst' });
  const exported = await until('API Activity in the OCSF export', async () => {
    const res = await fetch(`${ctx.agate.apiUrl}/v1/export/ocsf?after=0&limit=5000`, { headers: { authorization: `Bearer ${analyst}` } });
    const all = (await res.text()).trim().split('\n').filter(Boolean).map((l) => JSON.parse(l) as Record<string, any>);
    return all.some((e) => e.class_uid === 6003 && String(e.unmapped?.agate?.decision?.decided_by) === 'approver') ? all : undefined;
  });
  assert.equal(await ocsfErrors(exported), {}, 'every exported event is valid OCSF 1.3.0');
  const api = exported.filter((e) => e.class_uid === 6003);
  assert.ok(api.length > 10, `${api.length} API Activity events`);
  const held = api.find((e) => e.unmapped.agate.decision.decided_by === 'approver')!;
  assert.match(held.api.request.uid, /./);
  assert.equal(held.unmapped.agate.decision.approvers.map((a: { approver_subject: string }) => a.approver_subject), ['alice']);
  assert.is(held.activity_id, 4, 'a DELETE is Delete');
  assert.ok(api.some((e) => e.status === 'Failure' && e.unmapped.agate.decision?.decision === 'deny'), 'a refused request is a Failure with its deny');
});

k8s.run();

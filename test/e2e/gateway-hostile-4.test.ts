// A hostile client of the gateway's own surface, tenth pass: a Kubernetes watch that outlives
// its token. Real kube-apiserver and Agate process, a raw HTTPS watch; the objects the
// administrator creates after the token's exp are the witness.
import { suite } from '../harness/suite.js';
import * as assert from 'uvu/assert';
import { readFileSync } from 'node:fs';
import { request } from 'node:https';
import { setTimeout as sleep } from 'node:timers/promises';
import { commandsWhere, events, responsesOf, stopKubeAgate, type KubeAgate } from './kube-agate.js';
import { admin, startAuditedKube } from './kube-raw.js';
import { until } from '../harness/until.js';

const test = suite<KubeAgate>('e2e/gateway hostile client: a Kubernetes watch and token expiry');

test.before((ctx) => startAuditedKube(ctx, 'policy:\n  default: allow\n', async () => {
  await admin(ctx, ['-n', 'default', 'create', 'configmap', 'before-expiry', '--from-literal=a=1']);
}));
test.after((ctx) => stopKubeAgate(ctx));

test('a watch ends when its token expires: objects made after that are not delivered', async (ctx) => {
  const token = await ctx.issuer.mint(ctx.issuer.githubActionsClaims({ sub: 'watch-short-lived' }), { expiresIn: 4 });
  let received = '';
  let ended = false;
  const req = request({ host: '127.0.0.1', port: ctx.port, method: 'GET', path: '/api/v1/namespaces/default/configmaps?watch=1', ca: readFileSync(ctx.kube.other.caFile), agent: false, headers: { authorization: `Bearer ${token}` } }, (res) => {
    res.setEncoding('utf8').on('data', (d: string) => (received += d));
    res.on('end', () => (ended = true)).on('close', () => (ended = true)).on('error', () => undefined);
  });
  req.on('error', () => (ended = true));
  req.end();
  try {
    await until(() => `the first watch event (${received.length} bytes so far)`, () => (received.includes('before-expiry') ? true : undefined));
    await sleep(5_000);
    await admin(ctx, ['-n', 'default', 'create', 'configmap', 'after-expiry', '--from-literal=a=1']);
    await sleep(1_000);
    // Before: the watch went on as long as the client kept it, delivering what came after the token's exp.
    assert.not.ok(received.includes('after-expiry'));
    assert.ok(ended, 'the watch is still open');
  } finally {
    req.destroy();
  }
  const watch = commandsWhere(events(ctx), (c) => c.identity.subject === 'watch-short-lived' && c.text.includes('watch'))[0]!;
  const end = await until(() => 'the watch end', () => responsesOf(events(ctx), watch).find((r) => r.command_tag?.startsWith('200 watch')));
  assert.is(end.command_tag, '200 watch ended by Agate (token expired)');
});

test.run();

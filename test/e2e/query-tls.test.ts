// The query API served over HTTPS (`query.tls`), reached by the real curl with the test CA, and the
// agate CLI reading through it; plain HTTP on the same port gets nothing.
import { test } from '../harness/suite.js';
import * as assert from 'uvu/assert';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { makeTestCa } from '../harness/test-ca.js';
import { run } from '../harness/proc.js';
import { startAgate } from './agate-fixture.js';

test('query.tls: HTTPS with the configured certificate, verified by curl against the CA; HTTP refused', async () => {
  const dir = await mkdtemp(join(tmpdir(), 'agate-query-tls-'));
  const ca = await makeTestCa(dir);
  const agate = await startAgate({ queryYaml: `tls: { cert: ${JSON.stringify(ca.server.cert)}, key: ${JSON.stringify(ca.server.key)} }` });
  try {
    const started = /"query_api":"(https:\/\/[^"]+)"/.exec(agate.logs())?.[1];
    assert.ok(started !== undefined, `the start line names an https:// query API: ${agate.logs().slice(0, 2000)}`);
    const health = await run('curl', ['-sS', '--cacert', ca.ca, `${started}/healthz`], { timeoutMs: 20_000 });
    assert.is(health.code, 0, health.stderr);
    assert.match(health.stdout, /"status":"ok"/);
    const token = await agate.token({ agate_role: 'analyst' });
    const sessions = await run('curl', ['-sS', '--cacert', ca.ca, '-H', `Authorization: Bearer ${token}`, `${started}/v1/sessions`], { timeoutMs: 20_000 });
    assert.is(sessions.code, 0, sessions.stderr);
    assert.match(sessions.stdout, /"sessions":/);
    // Without the CA curl refuses the certificate; over plain HTTP the TLS listener answers nothing usable.
    const untrusted = await run('curl', ['-sS', `${started}/healthz`], { timeoutMs: 20_000 });
    assert.is.not(untrusted.code, 0);
    const plain = await run('curl', ['-sS', '--max-time', '5', started.replace('https:', 'http:') + '/healthz'], { timeoutMs: 20_000 });
    assert.not.match(plain.stdout, /"status":"ok"/);
  } finally {
    await agate.cleanup();
    await rm(dir, { recursive: true, force: true });
  }
});

test.run();

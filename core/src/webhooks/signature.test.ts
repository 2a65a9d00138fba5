import { suite } from '../../../test/harness/suite.js';
import * as assert from 'uvu/assert';
import { createHmac } from 'node:crypto';
import { signWebhook, verifyWebhook } from './signature.js';

const sign = suite('webhooks/signWebhook');
const verify = suite('webhooks/verifyWebhook');
const body = '{"type":"approval.requested"}';

sign('t=…,v1=HMAC-SHA256(secret, "t.body") in hex', () => {
  const expected = createHmac('sha256', 's3cret').update(`1700000000.${body}`).digest('hex');
  assert.is(signWebhook('s3cret', body, 1_700_000_000), `t=1700000000,v1=${expected}`);
});

verify('accepts its own signature, and one of several v1 entries', () => {
  const h = signWebhook('s3cret', body, 1000);
  assert.equal(verifyWebhook('s3cret', h, body, { nowS: 1010 }), { ok: true, timestamp: 1000 });
  assert.equal(verifyWebhook('s3cret', `${h},v1=${'0'.repeat(64)}`, Buffer.from(body), { nowS: 1010 }).ok, true);
});

verify('refuses a changed body, another secret, an old timestamp, a malformed header', () => {
  const h = signWebhook('s3cret', body, 1000);
  assert.equal(verifyWebhook('s3cret', h, body + ' ', { nowS: 1000 }), { ok: false, reason: 'mismatch' });
  assert.equal(verifyWebhook('other', h, body, { nowS: 1000 }), { ok: false, reason: 'mismatch' });
  assert.equal(verifyWebhook('s3cret', h, body, { nowS: 1000 + 301 }), { ok: false, reason: 'too_old' });
  assert.equal(verifyWebhook('s3cret', h.replace('t=1000', 't=1001'), body, { nowS: 1000 }), { ok: false, reason: 'mismatch' });
  for (const bad of [undefined, '', 'v1=abc', 't=1000', 't=x,v1=' + 'a'.repeat(64)]) assert.equal(verifyWebhook('s3cret', bad, body, { nowS: 1000 }), { ok: false, reason: 'malformed' }, String(bad));
});

sign.run();
verify.run();

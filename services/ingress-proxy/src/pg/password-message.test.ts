import { suite } from '../../../../test/harness/suite.js';
import * as assert from 'uvu/assert';
import type { PasswordMessage } from './messages.js';
import { decodePassword, decodeSASLInitialResponse, decodeSASLResponse } from './password-message.js';

const msg = (body: Buffer): PasswordMessage => ({ type: 'password', body, raw: body });
const violation = (e: unknown): boolean => (e as { code?: string }).code === 'PROTOCOL_VIOLATION';

const password = suite('decodePassword');
password('reads the NUL-terminated password', () => {
  assert.is(decodePassword(msg(Buffer.from('pässword\0'))), 'pässword');
});
password('missing NUL or trailing bytes are violations that do not echo the secret', () => {
  for (const body of ['secret', 'secret\0x']) {
    try { decodePassword(msg(Buffer.from(body))); assert.unreachable(); } catch (e) {
      assert.ok(violation(e));
      assert.not.match((e as Error).message, /secret/);
    }
  }
});
password.run();

const initial = suite('decodeSASLInitialResponse');
initial('mechanism plus length-prefixed data, or -1 for none', () => {
  const withData = Buffer.concat([Buffer.from('SCRAM-SHA-256\0'), Buffer.from([0, 0, 0, 3]), Buffer.from('abc')]);
  const d = decodeSASLInitialResponse(msg(withData));
  assert.equal([d.mechanism, d.data?.toString()], ['SCRAM-SHA-256', 'abc']);
  const none = decodeSASLInitialResponse(msg(Buffer.concat([Buffer.from('X\0'), Buffer.from([0xff, 0xff, 0xff, 0xff])])));
  assert.equal(none, { mechanism: 'X', data: null });
});
initial('bad lengths are violations', () => {
  for (const len of [[0xff, 0xff, 0xff, 0xfe], [0, 0, 0, 9], [0, 0, 0, 1]]) {
    const body = Buffer.concat([Buffer.from('M\0'), Buffer.from(len), Buffer.from('ab')]);
    assert.throws(() => decodeSASLInitialResponse(msg(body)), violation);
  }
});
initial.run();

const response = suite('decodeSASLResponse');
response('the whole body is mechanism data', () => {
  assert.is(decodeSASLResponse(msg(Buffer.from('c=biws,r=x,p=y'))).toString(), 'c=biws,r=x,p=y');
});
response.run();

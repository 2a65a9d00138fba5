import { suite } from '../../../../test/harness/suite.js';
import * as assert from 'uvu/assert';
import { parameterTexts } from './extended-state.js';
import { Masker } from '../masking/masker.js';
import { hidesSecret, valueText } from './value-text.js';

const values = suite('valueText');
values('a secret printed as hex (bytea, binary bytes of an unknown type) is found by the audit detectors', () => {
  const audit = new Masker('t', { columns: [], detectors: ['cloud_access_key'] });
  const key = 'AKIAIOSFODNN7EXAMPLQ';
  const recorded = valueText(Buffer.from(`deploy key ${key}`), 1, 0);
  assert.is(recorded, `\\x${Buffer.from(`deploy key ${key}`).toString('hex')}`);
  assert.is(audit.maskText(recorded).count, 0, 'hex hides it from the detectors');
  assert.ok(hidesSecret(recorded, audit));
  assert.not.ok(hidesSecret(valueText(Buffer.from('nothing here'), 1, 0), audit));
  assert.not.ok(hidesSecret('\\xzz', audit));
  assert.not.ok(hidesSecret(key, audit), 'plain text is the detectors\' own business');
});

values('binary values of common types decode by OID; others print as hex', () => {
  const i8 = Buffer.alloc(8);
  i8.writeBigInt64BE(-42n);
  assert.is(valueText(Buffer.from([0, 0, 0, 7]), 1, 23), '7');
  assert.is(valueText(i8, 1, 20), '-42');
  assert.is(valueText(Buffer.from([1]), 1, 16), 't');
  assert.is(valueText(Buffer.from('héllo'), 1, 25), 'héllo');
  assert.is(valueText(Buffer.from('00112233445566778899aabbccddeeff', 'hex'), 1, 2950), '00112233-4455-6677-8899-aabbccddeeff');
  assert.is(valueText(Buffer.from([0, 0, 0, 0]), 1, 1082), '2000-01-01');
  assert.is(valueText(Buffer.from([0xde, 0xad]), 1, 0), '\\xdead');
  assert.is(valueText(Buffer.from([1, 2, 3]), 1, 23), '\\x010203'); // wrong size: faithful hex
  assert.is(valueText(Buffer.from('42'), 0, 23), '42');
});
values('parameter formats: none means text, one applies to all, else one each', () => {
  const statement = { text: 'x', paramTypes: [23, 25] };
  const params = [Buffer.from([0, 0, 0, 5]), Buffer.from('five')];
  assert.equal(parameterTexts({ statement, params, paramFormats: [1], described: false }), ['5', 'five']);
  assert.equal(parameterTexts({ statement, params: [Buffer.from('5'), null], paramFormats: [], described: false }), ['5', null]);
  assert.equal(parameterTexts({ statement, params, paramFormats: [1, 0], described: false }), ['5', 'five']);
});
values.run();

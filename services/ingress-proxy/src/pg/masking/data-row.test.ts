import { suite } from '../../../../../test/harness/suite.js';
import * as assert from 'uvu/assert';
import { BUILTIN_MASK_SET } from '../../../../../core/src/config.js';
import type { Column } from '../backend-decode.js';
import { decodeDataRow } from '../backend-decode.js';
import { serialize } from '../backend-serializer.js';
import { Masker } from '../../masking/masker.js';
import { maskDataRow, MaskingError } from './data-row.js';

const all = new Masker('default', BUILTIN_MASK_SET);

const rows = suite('maskDataRow');
const col = (name: string, typeOid = 25, format = 0): Column => ({ name, tableOid: 0, columnAttr: 0, typeOid, typeSize: -1, typeModifier: -1, format });
rows('masks by column name and by detector, rebuilding every length', () => {
  const frame = serialize.dataRow([Buffer.from('7'), Buffer.from('s3cr3t'), Buffer.from('hi ops@example.com'), null]);
  const out = maskDataRow(frame, [col('id', 23), col('api_token'), col('note'), col('x')], all);
  assert.is(out.masked, 2);
  assert.equal(decodeDataRow(out.frame).map((v) => v?.toString() ?? null), ['7', '[masked]', 'hi [masked:email]', null]);
  assert.is(out.frame.readInt32BE(1), out.frame.length - 1);
});
rows('a masked non-text column becomes NULL; an untouched row is passed through as is', () => {
  const frame = serialize.dataRow([Buffer.from('4111111111111111')]);
  assert.equal(decodeDataRow(maskDataRow(frame, [col('card_number', 20)], all).frame), [null]);
  const plain = serialize.dataRow([Buffer.from('hello')]);
  assert.is(maskDataRow(plain, [col('greeting')], all).frame, plain);
});
rows('fails closed: a row that does not match its description, or unknown columns with column rules', () => {
  const frame = serialize.dataRow([Buffer.from('a'), Buffer.from('b')]);
  assert.throws(() => maskDataRow(frame, [col('one')], all), (e: unknown) => e instanceof MaskingError);
  assert.throws(() => maskDataRow(frame, undefined, all), (e: unknown) => e instanceof MaskingError);
  assert.throws(() => maskDataRow(frame.subarray(0, 9), [col('a'), col('b')], all), (e: unknown) => e instanceof MaskingError);
});
rows.run();

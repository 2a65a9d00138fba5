import { suite } from '../../../../../test/harness/suite.js';
import * as assert from 'uvu/assert';
import { BUILTIN_MASK_SET, type MaskSetConfig } from '../../../../../core/src/config.js';
import { ErrorCode } from '../../../../../core/src/errors.js';
import { serialize } from '../backend-serializer.js';
import { MaskingError } from './data-row.js';
import { maskErrorFields } from './error-fields.js';
import { Masker } from '../../masking/masker.js';

const all = new Masker('default', BUILTIN_MASK_SET);
const key = 'AKIAABCDEFGHIJKLMNOP';

/** Field type letter → value, in wire order. */
function fields(frame: Buffer): [string, string][] {
  const out: [string, string][] = [];
  let at = 5;
  while (frame[at] !== 0) {
    const end = frame.indexOf(0, at + 1);
    out.push([String.fromCharCode(frame[at]!), frame.toString('utf8', at + 1, end)]);
    at = end + 1;
  }
  return out;
}

const errors = suite('maskErrorFields');

errors('masks a value echoed in the message and the detail, keeps code, severity and position', () => {
  const frame = serialize.errorResponse({
    severity: 'ERROR', code: '22P02', message: `invalid input syntax for type integer: "${key}"`,
    detail: `Key (k)=(${key}) already exists.`, hint: 'no secret here', position: '8',
  });
  const out = maskErrorFields(frame, all);
  assert.is(out.masked, 2);
  assert.is(out.frame[0], 0x45); // still an ErrorResponse
  assert.is(out.frame.readInt32BE(1), out.frame.length - 1); // length rebuilt
  const f = Object.fromEntries(fields(out.frame));
  assert.is(f.M, 'invalid input syntax for type integer: "[masked:cloud_access_key]"');
  assert.is(f.D, 'Key (k)=([masked:cloud_access_key]) already exists.');
  assert.is(f.C, '22P02');
  assert.is(f.S, 'ERROR');
  assert.is(f.P, '8');
  assert.is(f.H, 'no secret here');
});

errors('a row or key quoted in the detail is masked by the column rules, though no column is named', () => {
  const detail = (d: string, m: Masker = all) => Object.fromEntries(fields(maskErrorFields(serialize.errorResponse({ severity: 'ERROR', code: '23502', message: 'm', detail: d }), m).frame)).D;
  // The row of the whole table, in column order, names no column: masked whole.
  assert.is(detail('Failing row contains (null, tok1234, x).'), 'Failing row contains ([masked]).');
  assert.is(detail('Failing row contains (1, ")."), ).'), 'Failing row contains ([masked]).');
  // A key over a masked column, plain, quoted or in an index expression: masked whole.
  assert.is(detail('Key (api_token)=(tok1234) already exists.'), '[masked]');
  assert.is(detail('Key (id, "Api_Token")=(1, tok1234) is not present in table "t".'), '[masked]');
  assert.is(detail('Key (lower(trim(api_token)))=(tok1234) is duplicated.'), '[masked]');
  assert.is(detail('Key (id)=(1) conflicts with existing key (secret_ref)=(tok1234).'), '[masked]');
  assert.is(detail('Partition key of the failing row contains (password)=(hunter2).'), '[masked]');
  // A key over other columns keeps its values.
  assert.is(detail('Key (id)=(2) already exists.'), 'Key (id)=(2) already exists.');
  // A mask set with no column rules leaves the row to its detectors.
  const detectorsOnly = new Masker('d', { ...BUILTIN_MASK_SET, columns: [] });
  assert.is(detail('Failing row contains (null, tok1234).', detectorsOnly), 'Failing row contains (null, tok1234).');
});

errors('returns the very frame when nothing is masked', () => {
  const frame = serialize.noticeResponse({ severity: 'NOTICE', code: '00000', message: 'table "t" does not exist, skipping' });
  const out = maskErrorFields(frame, all);
  assert.is(out.masked, 0);
  assert.is(out.frame, frame);
});

errors('a NoticeResponse stays a NoticeResponse', () => {
  const out = maskErrorFields(serialize.noticeResponse({ severity: 'NOTICE', code: '00000', message: `raised ${key}` }), all);
  assert.is(out.frame[0], 0x4e);
  assert.equal(fields(out.frame).find(([t]) => t === 'M'), ['M', 'raised [masked:cloud_access_key]']);
});

errors('a truncated frame is a MaskingError (withheld, never passed on)', () => {
  const frame = serialize.errorResponse({ severity: 'ERROR', code: '22P02', message: `bad "${key}"` });
  const cut = frame.subarray(0, frame.length - 4);
  try {
    maskErrorFields(cut, new Masker('none', { columns: [], detectors: [] } as MaskSetConfig));
    assert.unreachable('should have thrown');
  } catch (err) {
    assert.instance(err, MaskingError);
    assert.is((err as MaskingError).code, ErrorCode.MASKING_FAILED);
  }
});

errors.run();

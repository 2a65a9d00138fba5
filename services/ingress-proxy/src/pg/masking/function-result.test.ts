import { test } from '../../../../../test/harness/suite.js';
import * as assert from 'uvu/assert';
import { BUILTIN_MASK_SET } from '../../../../../core/src/config.js';
import { Masker } from '../../masking/masker.js';
import { MaskingError } from './data-row.js';
import { maskFunctionResult } from './function-result.js';

const masker = new Masker('default', BUILTIN_MASK_SET);

/** A FunctionCallResponse frame carrying `value` (null: NULL). */
function frame(value: string | null): Buffer {
  const bytes = value === null ? Buffer.alloc(0) : Buffer.from(value);
  const out = Buffer.alloc(9 + bytes.length);
  out[0] = 0x56;
  out.writeInt32BE(8 + bytes.length, 1);
  out.writeInt32BE(value === null ? -1 : bytes.length, 5);
  bytes.copy(out, 9);
  return out;
}

test('a statement masked whole masks the value, keeping the frame well formed', () => {
  const out = maskFunctionResult(frame('<vault><api_token>tok123</api_token></vault>'), Masker.whole(masker), 'table_to_xml');
  assert.equal(out.frame, frame('[masked]'));
  assert.is(out.masked, 1);
});

test('other values and NULL pass unchanged', () => {
  const f = frame('\x00\x01binary');
  assert.is(maskFunctionResult(f, masker, 'loread').frame, f);
  assert.is(maskFunctionResult(frame(null), Masker.whole(masker), 'table_to_xml').masked, 0);
});

test('a frame whose lengths disagree is refused, not passed', () => {
  const bad = frame('abc');
  bad.writeInt32BE(10, 5);
  assert.throws(() => maskFunctionResult(bad, masker, 'f'), (e: unknown) => e instanceof MaskingError);
  assert.throws(() => maskFunctionResult(Buffer.from([0x56, 0, 0, 0, 4]), masker, 'f'), (e: unknown) => e instanceof MaskingError);
});

test.run();

import { suite } from '../../../../../test/harness/suite.js';
import * as assert from 'uvu/assert';
import { BUILTIN_MASK_SET } from '../../../../../core/src/config.js';
import { ErrorCode } from '../../../../../core/src/errors.js';
import { BufferWriter } from '../buffer-writer.js';
import { MaskingError } from './data-row.js';
import { maskNotification } from './notification.js';
import { Masker } from '../../masking/masker.js';

const all = new Masker('default', BUILTIN_MASK_SET);
const key = 'AKIAABCDEFGHIJKLMNOP';
const notification = (pid: number, channel: string, payload: string) => new BufferWriter().addInt32(pid).addCString(channel).addCString(payload).flush(0x41);

const test = suite('maskNotification');

test('masks a secret in the payload, keeps the sender and the channel', () => {
  const { frame, masked } = maskNotification(notification(4242, 'jobs', `done: ${key}`), all);
  assert.is(masked, 1);
  assert.is(frame[0], 0x41);
  assert.is(frame.readInt32BE(1), frame.length - 1);
  assert.is(frame.readInt32BE(5), 4242);
  assert.not.ok(frame.toString('latin1').includes(key));
  assert.ok(frame.toString('latin1').includes('jobs\0done: '));
});

test('a notification with nothing to mask is passed on as it came', () => {
  const raw = notification(1, 'jobs', 'done');
  assert.is(maskNotification(raw, all).frame, raw);
});

test('a frame it cannot read is a MaskingError (withheld)', () => {
  const cut = notification(1, 'jobs', 'done').subarray(0, 12);
  try {
    maskNotification(cut, all);
    assert.unreachable('read a cut frame');
  } catch (err) {
    assert.instance(err, MaskingError);
    assert.is((err as MaskingError).code, ErrorCode.MASKING_FAILED);
  }
});

test.run();

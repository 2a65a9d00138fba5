import { suite } from '../../test/harness/suite.js';
import * as assert from 'uvu/assert';
import { AgateError, ErrorCode } from './errors.js';
import { isOutOfSpace } from './disk-space.js';

const test = suite('isOutOfSpace');

test('an ENOSPC from the system, however deep in the causes, and ClickHouse\'s NOT_ENOUGH_SPACE', () => {
  const enospc = Object.assign(new Error('ENOSPC: no space left on device, write'), { code: 'ENOSPC' });
  assert.ok(isOutOfSpace(enospc));
  assert.ok(isOutOfSpace(new AgateError(ErrorCode.BUS_WRITE_FAILED, 'cannot append to the local event log', { cause: enospc })));
  assert.ok(isOutOfSpace(new AgateError(ErrorCode.STORE_FAILED, 'store operation failed (INSERT INTO agate.ledger …): Code: 243. DB::Exception: Cannot reserve 1.00 MiB, not enough space. (NOT_ENOUGH_SPACE)')));
});

test('other failures are not', () => {
  assert.not.ok(isOutOfSpace(new AgateError(ErrorCode.STORE_FAILED, 'ClickHouse at x does not answer: ECONNREFUSED')));
  assert.not.ok(isOutOfSpace(Object.assign(new Error('EIO: i/o error'), { code: 'EIO' })));
  assert.not.ok(isOutOfSpace('ENOSPC'));
});

test.run();

import { suite } from '../../../../../test/harness/suite.js';
import * as assert from 'uvu/assert';
import { Outbox } from './outbox.js';

const test = suite('ssh/sftp Outbox');

test('views side by side in one buffer go out as one write; others, and anything after a flush, apart', () => {
  const writes: Buffer[] = [];
  const out = new Outbox((b) => void writes.push(b));
  const chunk = Buffer.from('0123456789');
  out.add(chunk.subarray(0, 3));
  out.add(chunk.subarray(3, 7));
  out.add(Buffer.from('xy')); // elsewhere in memory
  out.add(chunk.subarray(7));
  assert.is(writes.length, 2, 'nothing after the last gap is written before a flush');
  out.flush();
  out.flush();
  assert.equal(writes.map(String), ['0123456', 'xy', '789']);
  out.add(chunk.subarray(0, 2));
  out.flush();
  out.add(chunk.subarray(2, 4));
  out.flush();
  assert.equal(writes.slice(3).map(String), ['01', '23']);
});

test.run();

import { suite } from '../../../test/harness/suite.js';
import * as assert from 'uvu/assert';
import type { Checkpoint } from './checkpoint.js';
import { CheckpointQueue } from './verify-checkpoints.js';

const h = (b: number) => Buffer.alloc(32, b);
const cp = (size: number, root = h(size), chainHead: Buffer | undefined = h(100 + size)): Checkpoint => ({ origin: 'o', size, root, chainHead });

const test = suite('ledger/CheckpointQueue');

test('sorted by size; those inside the starting prefix count as checked', () => {
  const checked: number[] = [];
  const q = new CheckpointQueue([cp(30), cp(10), cp(20)], 10, checked);
  assert.equal(checked, [10]);
  assert.is(q.peek(() => true)?.size, 20);
  assert.is(q.peek((size) => size < 20), undefined, 'not due yet');
});

test('a matching root and head takes the checkpoint off the queue', () => {
  const checked: number[] = [];
  const q = new CheckpointQueue([cp(5), cp(9)], 0, checked);
  assert.is(q.check(q.peek(() => true)!, h(5), h(105)), null);
  assert.equal(checked, [5]);
  assert.is(q.peek(() => true)?.size, 9);
  assert.is(q.check({ origin: 'o', size: 9, root: h(9) }, h(9), undefined), null, 'a checkpoint without a chain head is matched on its root');
});

test('a differing root or head is a rewrite, reported from the last matched checkpoint', () => {
  const checked: number[] = [];
  const q = new CheckpointQueue([cp(5), cp(9)], 0, checked);
  q.check(cp(5), h(5), h(105));
  assert.equal(q.check(cp(9), h(0), h(109)), { kind: 'rewritten', seq: 9, event_id: '', problem: 'records 6..9 do not match the signed checkpoint of size 9 (Merkle root differs): rewritten along with their link hashes' });
  assert.match(q.check(cp(9), h(9), h(0))!.problem, /\(chain head differs\)/);
  assert.match(q.check(cp(9), h(9), undefined)!.problem, /\(chain head differs\)/, 'no record at the size: the head cannot match');
  assert.equal(checked, [5]);
});

test('beyond: a checkpoint larger than what the store holds', () => {
  const q = new CheckpointQueue([cp(5), cp(9)], 0, []);
  assert.is(q.beyond(9), undefined);
  assert.is(q.beyond(6)?.size, 9);
});

test.run();

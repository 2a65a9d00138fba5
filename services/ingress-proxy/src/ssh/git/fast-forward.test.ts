import { suite } from '../../../../../test/harness/suite.js';
import * as assert from 'uvu/assert';
import { forcedUpdate, type AncestryCheck } from './fast-forward.js';
import type { RefCommand } from './push-request.js';

const oid = (c: string) => c.repeat(40);
const update = (old: string, next: string): RefCommand => ({ old: oid(old), new: oid(next), ref: 'refs/heads/main', action: 'update' });
/** The target's history: old is an ancestor of each listed tip. */
const target = (answers: Record<string, 'yes' | 'no' | 'unknown'>): AncestryCheck & { asked: string[][] } => {
  const asked: string[][] = [];
  const check = async (_old: string, tips: string[]) => {
    asked.push(tips);
    return tips.some((t) => answers[t] === 'yes') ? 'yes' : tips.every((t) => answers[t] === 'no') ? 'no' : 'unknown';
  };
  return Object.assign(check, { asked });
};

const test = suite('ssh/git/fast-forward');

test('the walk through the pack meets old: fast-forward without asking the target', async () => {
  const t = target({});
  assert.is(await forcedUpdate(update('a', 'c'), new Map([[oid('c'), [oid('b')]], [oid('b'), [oid('a')]]]), t), 'false');
  assert.equal(t.asked, []);
});

test('where the walk leaves the pack, the target answers for the commits it reaches', async () => {
  const pack = new Map([[oid('c'), [oid('b'), oid('d')]]]);
  assert.is(await forcedUpdate(update('a', 'c'), pack, target({ [oid('b')]: 'no', [oid('d')]: 'yes' })), 'false');
  assert.is(await forcedUpdate(update('a', 'c'), pack, target({ [oid('b')]: 'no', [oid('d')]: 'no' })), 'true');
  assert.is(await forcedUpdate(update('a', 'c'), pack, target({ [oid('b')]: 'no', [oid('d')]: 'unknown' })), 'unknown');
  // A new tip already on the target (a rewind): the target is asked about it directly.
  const t = target({ [oid('e')]: 'no' });
  assert.is(await forcedUpdate(update('a', 'e'), new Map(), t), 'true');
  assert.equal(t.asked, [[oid('e')]]);
});

test('a new root commit rewrites history; creates and deletes are never forced', async () => {
  assert.is(await forcedUpdate(update('a', 'c'), new Map([[oid('c'), []]]), target({})), 'true');
  assert.is(await forcedUpdate({ ...update('0', 'c'), action: 'create' }, new Map(), target({})), 'false');
});

test.run();

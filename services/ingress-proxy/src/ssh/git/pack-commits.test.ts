import { suite } from '../../../../../test/harness/suite.js';
import * as assert from 'uvu/assert';
import { execFileSync } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { applyDelta, PackCommits } from './pack-commits.js';

/** A real repository whose commits git stores as deltas of each other (long, similar messages). */
function repository(): { dir: string; pack: Buffer; parents: Map<string, string[]> } {
  const dir = mkdtempSync(join(tmpdir(), 'agate-pack-'));
  const git = (...args: string[]) => execFileSync('git', ['-C', dir, '-c', 'user.name=a', '-c', 'user.email=a@example.invalid', ...args], { encoding: 'buffer' });
  git('init', '-q', '-b', 'main');
  for (let i = 0; i < 12; i += 1) {
    writeFileSync(join(dir, 'f'), `${i}\n`.repeat(2000));
    git('add', 'f');
    git('commit', '-q', '-m', `${'a long and repetitive message '.repeat(80)}${i}`);
    if (i === 6) git('checkout', '-q', '-b', 'side');
  }
  git('checkout', '-q', 'main');
  git('merge', '-q', '--no-ff', '-m', 'merge side', 'side');
  const pack = execFileSync('git', ['-C', dir, 'pack-objects', '--revs', '--stdout', '--window=50', '--depth=50'], { input: 'main\n', stdio: ['pipe', 'pipe', 'ignore'] });
  const parents = new Map<string, string[]>();
  for (const line of git('rev-list', '--parents', 'main').toString().trim().split('\n')) {
    const [oid, ...rest] = line.split(' ');
    parents.set(oid!, rest);
  }
  return { dir, pack, parents };
}

const test = suite('ssh/git/pack-commits');

test('reads every commit and its parents from a real pack, deltified commits included, in any chunking', () => {
  const { dir, pack, parents } = repository();
  try {
    for (const size of [pack.length, 1, 7, 100, 4096]) {
      const reader = new PackCommits();
      let complete = false;
      for (let at = 0; at < pack.length; at += size) complete = reader.update(pack.subarray(0, Math.min(pack.length, at + size)));
      assert.ok(complete, `chunks of ${size}: complete`);
      assert.is(reader.end, pack.length);
      assert.equal(new Map([...reader.parents].sort()), new Map([...parents].sort()), `chunks of ${size}`);
    }
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test('a pack cut short is not complete; what it read so far stands', () => {
  const { dir, pack } = repository();
  try {
    const reader = new PackCommits();
    assert.is(reader.update(pack.subarray(0, pack.length - 30)), false);
    assert.is(reader.complete, false);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test('bytes that are not a pack stop the reader with a reason', () => {
  const reader = new PackCommits();
  assert.is(reader.update(Buffer.from('NOTAPACK0000000000000000')), false);
  assert.is(reader.stopped, 'not a version 2 pack');
});

test('applyDelta: copies and inserts; a delta for another base is refused', () => {
  const base = Buffer.from('hello world');
  // source size 11, target size 11; copy 6 bytes from 0, insert "there"
  const delta = Buffer.from([11, 11, 0x80 | 0x10, 6, 5, ...Buffer.from('there')]);
  assert.is(applyDelta(base, delta)?.toString(), 'hello there');
  assert.is(applyDelta(Buffer.from('short'), delta), undefined);
});

test.run();

import { suite } from '../../../test/harness/suite.js';
import * as assert from 'uvu/assert';
import { leafHash } from './merkle.js';
import { naiveMth } from './reference-mth.js';
import { consistencyRanges, inclusionRanges, verifyConsistency, verifyInclusion } from './proofs.js';

const data = Array.from({ length: 40 }, (_, i) => Buffer.from(`event-${i}`));
const mth = (lo: number, hi: number) => naiveMth(data.slice(lo, hi));
const flip = (b: Buffer, i = 0) => {
  const c = Buffer.from(b);
  c[i % c.length]! ^= 0x01;
  return c;
};

const inclusion = suite('inclusion proofs');

inclusion('every leaf of every tree size 1..40 is proven, and no other leaf position is', () => {
  for (let n = 1; n <= 40; n++) {
    const root = mth(0, n);
    for (let m = 0; m < n; m++) {
      const proof = inclusionRanges(m, n).map(([lo, hi]) => mth(lo, hi));
      assert.ok(verifyInclusion(m, n, leafHash(data[m]!), proof, root), `leaf ${m} of ${n}`);
      if (n > 1) assert.not.ok(verifyInclusion((m + 1) % n, n, leafHash(data[m]!), proof, root), `leaf ${m} at the wrong index`);
    }
  }
});

inclusion('a single changed byte in the proof, the leaf or the root is refused', () => {
  const n = 21;
  const m = 13;
  const root = mth(0, n);
  const leaf = leafHash(data[m]!);
  const proof = inclusionRanges(m, n).map(([lo, hi]) => mth(lo, hi));
  for (let i = 0; i < proof.length; i++) {
    const bad = proof.slice();
    bad[i] = flip(bad[i]!, 7);
    assert.not.ok(verifyInclusion(m, n, leaf, bad, root), `proof element ${i}`);
  }
  assert.not.ok(verifyInclusion(m, n, leafHash(flip(data[m]!)), proof, root));
  assert.not.ok(verifyInclusion(m, n, leaf, proof, flip(root, 31)));
  assert.not.ok(verifyInclusion(m, n, leaf, proof.slice(1), root), 'a shortened proof');
  assert.not.ok(verifyInclusion(m, n, leaf, [...proof, proof[0]!], root), 'a padded proof');
});

inclusion('the path of leaf 0 in 7 leaves names the RFC 9162 subtrees', () => {
  // PATH(0, D[7]) = PATH(0, D[0:4]) : MTH(D[4:7]) = [ {1}, {2,3}, {4..6} ]
  assert.equal(inclusionRanges(0, 7), [[1, 2], [2, 4], [4, 7]]);
});

const consistency = suite('consistency proofs');

consistency('every pair of sizes 1 <= m <= n <= 40 is consistent, and a wrong old root is not', () => {
  for (let n = 1; n <= 40; n++) {
    for (let m = 1; m <= n; m++) {
      const proof = consistencyRanges(m, n).map(([lo, hi]) => mth(lo, hi));
      assert.ok(verifyConsistency(m, n, mth(0, m), mth(0, n), proof), `${m} -> ${n}`);
      if (m < n) assert.not.ok(verifyConsistency(m, n, mth(1, m + 1), mth(0, n), proof), `${m} -> ${n} with another old tree`);
    }
  }
});

consistency('a single changed byte in the proof or either root is refused', () => {
  const [m, n] = [6, 29];
  const proof = consistencyRanges(m, n).map(([lo, hi]) => mth(lo, hi));
  for (let i = 0; i < proof.length; i++) {
    const bad = proof.slice();
    bad[i] = flip(bad[i]!, 3);
    assert.not.ok(verifyConsistency(m, n, mth(0, m), mth(0, n), bad), `proof element ${i}`);
  }
  assert.not.ok(verifyConsistency(m, n, flip(mth(0, m)), mth(0, n), proof));
  assert.not.ok(verifyConsistency(m, n, mth(0, m), flip(mth(0, n)), proof));
});

consistency('the RFC 9162 example: from 3 to 7 leaves', () => {
  // PROOF(3, D[7]) = [c, d, g, l] in the RFC's figure: {2}, {3}, {0,1}, {4..6}
  assert.equal(consistencyRanges(3, 7), [[2, 3], [3, 4], [0, 2], [4, 7]]);
  assert.equal(consistencyRanges(4, 7), [[4, 7]]);
});

inclusion.run();
consistency.run();

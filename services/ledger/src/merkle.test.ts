import { suite } from '../../../test/harness/suite.js';
import * as assert from 'uvu/assert';
import { CompactRange } from './compact-range.js';
import { EMPTY_ROOT, hashBytes, hashText, leafHash, nodeHash, nodeHashText, rootFromLeafHashes, sha256Text } from './merkle.js';
import { naiveMth } from './reference-mth.js';

/*
 * Vectors: the eight-leaf tree published with the Certificate Transparency reference code
 * (RFC 6962 test data), plus an independent top-down MTH (reference-mth.ts).
 */
const CT_LEAVES = ['', '00', '10', '2021', '3031', '40414243', '5051525354555657', '606162636465666768696a6b6c6d6e6f'].map((h) => Buffer.from(h, 'hex'));
const CT_ROOTS = [
  '6e340b9cffb37a989ca544e6bb780a2c78901d3fb33738768511a30617afa01d',
  'fac54203e7cc696cf0dfcb42c92a1d9dbaf70ad9e621f4bd8d98662f00e3c125',
  'aeb6bcfe274b70a14fb067a5e5578264db0fa9b51af5e0ba159158f329e06e77',
  'd37ee418976dd95753c1c73862b9398fa2a2cf9b4ff0fdfe8b30cd95209614b7',
  '4e3bbb1f7b478dcfe71fb631631519a3bca12c9aefca1612bfce4c13a86264d4',
  '76e67dadbcdf1e10e1b74ddc608abd2f98dfb16fbce75277b5232a127f2087ef',
  'ddb89be403809e325750d3d263cd78929c2942b7942a34b77e122c9594a74c8c',
  '5dc9da79a70659a9ad559cb701ded9a2ab9d823aad2f4960cfe370eff4604328',
];

const tree = suite('merkle');

tree('the CT reference roots for 1..8 leaves', () => {
  for (let n = 1; n <= 8; n++) {
    assert.is(rootFromLeafHashes(CT_LEAVES.slice(0, n).map(leafHash)).toString('hex'), CT_ROOTS[n - 1], `size ${n}`);
    assert.is(naiveMth(CT_LEAVES.slice(0, n)).toString('hex'), CT_ROOTS[n - 1], `naive size ${n}`);
  }
});

tree('the empty tree hashes to SHA-256 of nothing', () => {
  assert.is(EMPTY_ROOT.toString('hex'), 'e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855');
  assert.is(new CompactRange().root().toString('hex'), EMPTY_ROOT.toString('hex'));
});

tree('leaf and node hashes are domain-separated', () => {
  const a = Buffer.alloc(32, 1);
  assert.is.not(leafHash(Buffer.concat([a, a])).toString('hex'), nodeHash(a, a).toString('hex'));
});

const range = suite('CompactRange');

range('its root equals the top-down MTH after every append, 1..130 leaves', () => {
  const data = Array.from({ length: 130 }, (_, i) => Buffer.from(`leaf-${i}`));
  const cr = new CompactRange();
  data.forEach((d, i) => {
    cr.push(leafHash(d));
    assert.is(cr.root().toString('hex'), naiveMth(data.slice(0, i + 1)).toString('hex'), `size ${i + 1}`);
    assert.ok(cr.subtrees.length <= Math.ceil(Math.log2(i + 2)));
  });
});

range('whole aligned subtrees and a partial tail give the same root as leaf by leaf', () => {
  const data = Array.from({ length: 45 }, (_, i) => Buffer.from(`e${i}`));
  const cr = new CompactRange();
  for (let p = 0; p + 16 <= 32; p += 16) cr.pushSubtree(naiveMth(data.slice(p, p + 16)), 16);
  assert.is(cr.root(naiveMth(data.slice(32))).toString('hex'), naiveMth(data).toString('hex'));
  assert.throws(() => cr.pushSubtree(Buffer.alloc(32), 64), RangeError);
});

range('survives a JSON round trip and refuses a frontier that is not one', () => {
  const cr = new CompactRange();
  for (let i = 0; i < 11; i++) cr.push(leafHash(Buffer.of(i)));
  const back = CompactRange.fromJSON(cr.toJSON());
  assert.is(back.size, 11);
  assert.is(back.root().toString('hex'), cr.root().toString('hex'));
  assert.throws(() => CompactRange.fromJSON([{ size: 2, hash: '00'.repeat(32) }, { size: 4, hash: '00'.repeat(32) }]), RangeError);
});

range('hashes held as text keep every byte value, and hash as the Buffer functions do', () => {
  const bytes = Buffer.from(Array.from({ length: 256 }, (_, i) => i));
  for (let at = 0; at < 256; at += 32) {
    const h = bytes.subarray(at, at + 32);
    assert.equal(hashBytes(hashText(h)), h);
  }
  const [a, b] = [leafHash(CT_LEAVES[6]!), leafHash(CT_LEAVES[7]!)];
  assert.equal(hashBytes(nodeHashText(hashText(a), hashText(b))), nodeHash(a, b));
  assert.equal(hashBytes(sha256Text(Buffer.concat([Buffer.of(0), CT_LEAVES[7]!]))), b);
  assert.throws(() => hashText(Buffer.alloc(31)), RangeError);
});

tree.run();
range.run();

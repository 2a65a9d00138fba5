import { suite } from '../../../test/harness/suite.js';
import * as assert from 'uvu/assert';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { EmbeddedStore } from '../../../core/src/store/embedded.js';
import { leafHash } from './merkle.js';
import { consistencyRanges, inclusionRanges, verifyInclusion } from './proofs.js';
import { migrate } from './schema.js';
import { leafHashes, rangeRoot, subtreeRoots } from './tree-sql.js';
import { CompactRange } from './compact-range.js';
import { persistTiles, tiledRangeRoot } from './tree-tiles.js';

/*
 * Stored subtree nodes against the leaves they summarise: every proof range folded from stored
 * nodes equals the same range hashed leaf by leaf, proofs made from nodes verify against the
 * root, and a changed node yields a proof the verifier refuses.
 */
const N = 70_000; // 273 nodes of 256 leaves, 1 of 65,536, and a partial tail
const dir = mkdtempSync(join(tmpdir(), 'agate-tiles-'));
const store = EmbeddedStore.open(join(dir, 'store'));
const tiles = suite('tree tiles');
tiles.before(async () => {
  await migrate(store);
  // Leaves only need their payload; the chain columns play no part in the tree.
  await store.exec(`INSERT INTO agate.ledger (chain_id, seq, payload) SELECT 't', number + 1, concat('leaf-', toString(number)) FROM numbers(${N})`);
});
tiles.after(async () => {
  await store.close();
  rmSync(dir, { recursive: true, force: true });
});

const count = async (level: number) => Number((await store.query<{ n: string }>(`SELECT count() AS n FROM agate.tree_nodes FINAL WHERE chain_id = 't' AND level = ${level}`))[0]!.n);

tiles('nodes are stored once per complete subtree, incrementally', async () => {
  await persistTiles(store, 't', 1000);
  assert.is(await count(8), 3);
  await persistTiles(store, 't', N);
  await persistTiles(store, 't', N); // nothing new
  assert.is(await count(8), Math.floor(N / 256));
  assert.is(await count(16), 1);
  assert.is(await count(24), 0);
});

tiles('proof ranges from nodes equal the same ranges from leaves', async () => {
  for (const size of [N, 65_536, 65_537, 40_000, 513, 256]) {
    const ranges = [...inclusionRanges(0, size), ...inclusionRanges(size - 1, size), ...inclusionRanges(Math.floor(size / 3), size), ...consistencyRanges(Math.max(1, size - 300), size), [0, size] as const];
    for (const [lo, hi] of ranges) assert.ok((await tiledRangeRoot(store, 't', lo, hi)).equals(await rangeRoot(store, 't', lo, hi)), `[${lo}, ${hi}) at size ${size}`);
  }
});

tiles('an inclusion proof from nodes verifies; one from a changed node does not', async () => {
  const index = 12_345;
  const root = await rangeRoot(store, 't', 0, N);
  const leaf = leafHash(Buffer.from(`leaf-${index}`));
  const proof = async () => Promise.all(inclusionRanges(index, N).map(([lo, hi]) => tiledRangeRoot(store, 't', lo, hi)));
  assert.ok(verifyInclusion(index, N, leaf, await proof(), root));
  await store.exec("ALTER TABLE agate.tree_nodes UPDATE hash = toFixedString(repeat('x', 32), 32) WHERE chain_id = 't' AND level = 8 AND node = 200 SETTINGS mutations_sync = 2");
  assert.not.ok(verifyInclusion(index, N, leaf, await proof(), root));
});

tiles('the engine folds whole subtrees exactly as leaf-by-leaf hashing does', async () => {
  for (const [lo, hi] of [[0, 256], [0, 257], [256, 1024], [300, 5_000], [512, 1_000], [0, N]] as const) {
    const tree = new CompactRange();
    for (const leaf of await leafHashes(store, 't', lo, hi)) tree.push(leaf);
    assert.ok((await rangeRoot(store, 't', lo, hi)).equals(tree.root()), `[${lo}, ${hi})`);
  }
});

tiles('a subtree with a missing or duplicated record yields no roots', async () => {
  await store.exec("INSERT INTO agate.ledger (chain_id, seq, payload) SELECT 'gaps', number + 1, concat('leaf-', toString(number)) FROM numbers(1024)");
  assert.is((await subtreeRoots(store, 'gaps', 0, 1024)).length, 4);
  await store.exec("ALTER TABLE agate.ledger DELETE WHERE chain_id = 'gaps' AND seq = 600 SETTINGS mutations_sync = 2");
  assert.equal(await subtreeRoots(store, 'gaps', 0, 1024), []);
  assert.is((await subtreeRoots(store, 'gaps', 0, 512)).length, 2, 'subtrees before the gap are whole');
  await store.exec("INSERT INTO agate.ledger (chain_id, seq, payload) VALUES ('gaps', 601, 'again')");
  await store.exec("INSERT INTO agate.ledger (chain_id, seq, payload) VALUES ('gaps', 599, 'twice')");
  assert.equal(await subtreeRoots(store, 'gaps', 512, 768), [], 'one record doubled, one missing: 256 rows but not 256 sequence numbers');
});

tiles.run();

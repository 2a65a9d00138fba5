import { suite } from '../../../test/harness/suite.js';
import * as assert from 'uvu/assert';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { EmbeddedStore } from '../../../core/src/store/embedded.js';
import { expireBlocks } from './retention.js';
import { BLOCK_SIZE, migrate } from './schema.js';

/*
 * Retention drops whole blocks (partitions) only: complete, older than the retention, not the
 * chain's last, and ending at a stored checkpoint, oldest first. Rows are generated in the
 * engine; the chain columns play no part here.
 */
const dir = mkdtempSync(join(tmpdir(), 'agate-retention-'));
const store = EmbeddedStore.open(join(dir, 'store'));
const NOW = Date.UTC(2026, 10, 25);
const DAY = 86_400_000;
const retention = suite('expireBlocks');
retention.after(async () => {
  await store.close();
  rmSync(dir, { recursive: true, force: true });
});

/** Records 1..n of a chain, each block's records `ageDays(block)` days old. */
async function chain(id: string, n: number, ageDays: (block: number) => number): Promise<void> {
  const ages = [0, 1, 2, 3].map(ageDays);
  await store.exec(`INSERT INTO agate.ledger (chain_id, seq, time) SELECT '${id}', number + 1,
    fromUnixTimestamp64Milli(toInt64(${NOW} - arrayElement([${ages.join(', ')}], intDiv(number, ${BLOCK_SIZE}) + 1) * ${DAY}), 'UTC') FROM numbers(${n})`);
}
const checkpoint = (id: string, size: number) => store.exec(`INSERT INTO agate.checkpoints (chain_id, size, origin, note, frontier) VALUES ('${id}', ${size}, 'o', '', '[]')`);
const stored = async (id: string) => {
  const r = (await store.query<{ lo: string; hi: string }>(`SELECT min(seq) AS lo, max(seq) AS hi FROM agate.ledger WHERE chain_id = '${id}'`))[0]!;
  return { lo: Number(r.lo), hi: Number(r.hi) };
};

retention('old complete blocks ending at a checkpoint go, oldest first; the rest stays', async () => {
  await migrate(store);
  // a: blocks 0 and 1 old, block 2 (the head) old too; checkpoints at the end of blocks 0 and 2 only.
  await chain('a', 2 * BLOCK_SIZE + 10, () => 100);
  await checkpoint('a', BLOCK_SIZE);
  await checkpoint('a', 3 * BLOCK_SIZE);
  // b: block 0 is recent, block 1 holds the head.
  await chain('b', BLOCK_SIZE + 5, () => 1);
  await checkpoint('b', BLOCK_SIZE);
  const dropped = await expireBlocks(store, 30, NOW);
  assert.equal(dropped, [{ chainId: 'a', from: 0, to: BLOCK_SIZE }]);
  assert.equal(await stored('a'), { lo: BLOCK_SIZE + 1, hi: 2 * BLOCK_SIZE + 10 }, 'block 1 has no checkpoint at its end, so it stays');
  assert.equal(await stored('b'), { lo: 1, hi: BLOCK_SIZE + 5 });
  await checkpoint('a', 2 * BLOCK_SIZE);
  assert.equal(await expireBlocks(store, 30, NOW), [{ chainId: 'a', from: BLOCK_SIZE, to: 2 * BLOCK_SIZE }]);
  assert.equal(await expireBlocks(store, 30, NOW), [], 'the block holding the head never expires');
  assert.equal(await stored('a'), { lo: 2 * BLOCK_SIZE + 1, hi: 2 * BLOCK_SIZE + 10 });
});

retention('an existing row TTL from an earlier version is removed by the migration', async () => {
  await store.exec('ALTER TABLE agate.ledger MODIFY TTL toDateTime(time) + INTERVAL 30 DAY');
  await migrate(store);
  const [t] = await store.query<{ engine_full: string }>("SELECT engine_full FROM system.tables WHERE database = 'agate' AND name = 'ledger'");
  assert.not.match(t!.engine_full, /\bTTL\b/);
});

retention.run();

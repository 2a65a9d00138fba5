import type { Logger } from '../../../core/src/log.js';
import type { Store } from '../../../core/src/store/store.js';
import { BLOCK_SIZE } from './schema.js';

interface ExpiredBlock {
  chainId: string;
  /** Records (from, to] were dropped. */
  from: number;
  to: number;
}

/**
 * Retention by whole partitions: drops each block of BLOCK_SIZE records (one partition) whose
 * newest record is older than `retentionDays`, oldest first, when the block is complete, is not
 * the chain's last, and a checkpoint signed at its end is stored. Verification then starts from
 * that checkpoint (verify.ts), so the chain still verifies after expiry. A row-level TTL could
 * instead drop part of a block, leaving a start that no checkpoint covers.
 */
export async function expireBlocks(store: Store, retentionDays: number, nowMs = Date.now(), logger?: Logger): Promise<ExpiredBlock[]> {
  const cutoffMicros = Math.floor((nowMs - retentionDays * 86_400_000) * 1000);
  const blocks = await store.query<{ chain_id: string; block: string; n: string; top: string; newest: string; last_block: string; checkpointed: number }>(
    `SELECT b.chain_id AS chain_id, b.block AS block, b.n AS n, b.top AS top, b.newest AS newest, h.last_block AS last_block,
       (b.chain_id, (b.block + 1) * ${BLOCK_SIZE}) IN (SELECT chain_id, size FROM agate.checkpoints) AS checkpointed
     FROM (SELECT chain_id, intDiv(seq - 1, ${BLOCK_SIZE}) AS block, count() AS n, max(seq) AS top, toUnixTimestamp64Micro(max(time)) AS newest
           FROM agate.ledger GROUP BY chain_id, block) AS b
     INNER JOIN (SELECT chain_id, intDiv(max(seq) - 1, ${BLOCK_SIZE}) AS last_block FROM agate.ledger GROUP BY chain_id) AS h ON h.chain_id = b.chain_id
     ORDER BY chain_id, block`,
  );
  const dropped: ExpiredBlock[] = [];
  const stopped = new Set<string>();
  for (const b of blocks) {
    const block = Number(b.block);
    const complete = Number(b.n) === BLOCK_SIZE && Number(b.top) === (block + 1) * BLOCK_SIZE;
    // Oldest first: a chain's blocks expire in order, so the stored records stay one run.
    if (stopped.has(b.chain_id) || !complete || block >= Number(b.last_block) || Number(b.newest) >= cutoffMicros || Number(b.checkpointed) !== 1) {
      stopped.add(b.chain_id);
      continue;
    }
    await store.exec(`ALTER TABLE agate.ledger DROP PARTITION tuple('${b.chain_id.replace(/[\\']/g, (c) => '\\' + c)}', ${block})`);
    dropped.push({ chainId: b.chain_id, from: block * BLOCK_SIZE, to: (block + 1) * BLOCK_SIZE });
    logger?.info('ledger block expired by retention', { chain: b.chain_id, from: block * BLOCK_SIZE + 1, to: (block + 1) * BLOCK_SIZE });
  }
  return dropped;
}

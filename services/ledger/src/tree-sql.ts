import type { Store } from '../../../core/src/store/store.js';
import { LEAF_SQL } from './chain.js';
import { EMPTY_ROOT } from './merkle.js';

/**
 * The RFC 9162 root of leaves [lo, hi) of a chain, computed inside ClickHouse: leaf hashes,
 * then one GROUP BY per tree level pairing neighbours (an odd last node moves up unchanged,
 * which gives the same tree as the RFC's top-down split; see merkle.ts). The engine hashes
 * in native code on every core, so proofs and verification never pull leaves into JS.
 */
export async function rangeRoot(store: Store, chainId: string, lo: number, hi: number): Promise<Buffer> {
  if (hi <= lo) return EMPTY_ROOT;
  const levels = Math.ceil(Math.log2(hi - lo));
  let sql = `SELECT seq - 1 - {lo:UInt64} AS i0, ${LEAF_SQL} AS h0 FROM agate.ledger WHERE chain_id = {chain:String} AND seq > {lo:UInt64} AND seq <= {hi:UInt64}`;
  for (let k = 1; k <= levels; k++) {
    const [i, h, pi, ph] = [`i${k}`, `h${k}`, `i${k - 1}`, `h${k - 1}`];
    sql = `SELECT intDiv(${pi}, 2) AS ${i}, if(count() = 2, SHA256(concat(unhex('01'), argMin(${ph}, ${pi}), argMax(${ph}, ${pi}))), any(${ph})) AS ${h} FROM (${sql}) GROUP BY ${i}`;
  }
  const bytes = await store.queryRowBinary(`SELECT h${levels} FROM (${sql})`, { chain: chainId, lo, hi });
  if (bytes.length !== 32) throw new RangeError(`leaves ${lo}..${hi} of chain ${chainId} do not form one tree (${bytes.length / 32} roots)`);
  return bytes;
}

/** Leaf hashes of records (from, to] in seq order, 32 bytes each. */
export async function leafHashes(store: Store, chainId: string, from: number, to: number): Promise<Buffer[]> {
  const bytes = await store.queryRowBinary(`SELECT ${LEAF_SQL} FROM agate.ledger WHERE chain_id = {chain:String} AND seq > {from:UInt64} AND seq <= {to:UInt64} ORDER BY seq`, { chain: chainId, from, to });
  const out: Buffer[] = [];
  for (let i = 0; i + 32 <= bytes.length; i += 32) out.push(bytes.subarray(i, i + 32));
  return out;
}

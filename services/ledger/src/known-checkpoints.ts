import { readdir, readFile } from 'node:fs/promises';
import { join } from 'node:path';
import type { Store } from '../../../core/src/store/store.js';
import { openCheckpoint, type Checkpoint } from './checkpoint.js';
import type { NoteVerifier } from './note.js';

/*
 * The signed checkpoints plain verification finds by itself: the newest in the store's own
 * table and the newest in each checkpoint directory (directorySink's layout, DIR/<chain>/).
 * The newest checkpoint commits to every record before it, so one per place is enough to catch
 * a truncated tail, a dropped part, a rolled-back store and a re-linked chain, whichever place
 * an attacker forgot to rewrite; two places that signed different roots for one size are a fork.
 */

export interface CheckpointSources {
  /** Keys whose signatures count (the ledger's own). */
  verifiers: readonly NoteVerifier[];
  /** Checkpoint directories (ledger.checkpoint.dir). */
  dirs: readonly string[];
}

interface FoundCheckpoints {
  /** Distinct checkpoints by size, smallest first. */
  checkpoints: Checkpoint[];
  /** Where each came from, for the report. */
  where: string[];
  /** Checkpoint notes that were found but did not open with the given keys, and why. */
  ignored: string[];
  /** Two signed checkpoints of one size with different roots. */
  fork: string | undefined;
}

/** The newest signed checkpoint of `chainId` in each place (see above). */
export async function findCheckpoints(store: Store, chainId: string, sources: CheckpointSources): Promise<FoundCheckpoints> {
  const out: FoundCheckpoints = { checkpoints: [], where: [], ignored: [], fork: undefined };
  const take = (note: string, where: string): boolean => {
    let cp: Checkpoint;
    try {
      cp = openCheckpoint(note, sources.verifiers);
    } catch (err) {
      out.ignored.push(`${where}: ${(err as Error).message}`);
      return false;
    }
    if (!cp.origin.endsWith(`/${chainId}`)) {
      out.ignored.push(`${where}: a checkpoint of ${cp.origin}, not of chain ${chainId}`);
      return false;
    }
    const same = out.checkpoints.findIndex((c) => c.size === cp.size);
    if (same < 0) {
      out.checkpoints.push(cp);
      out.where.push(where);
    } else if (!out.checkpoints[same]!.root.equals(cp.root)) {
      out.fork ??= `${where} and ${out.where[same]} hold different signed checkpoints of size ${cp.size}: the signed log has forked`;
    }
    return true;
  };
  const rows = await store.query<{ note: string; size: string }>('SELECT note, size FROM agate.checkpoints FINAL WHERE chain_id = {chain:String} ORDER BY size DESC LIMIT 16', { chain: chainId });
  for (const row of rows) if (take(row.note, `the store's checkpoint of size ${row.size}`)) break;
  for (const dir of sources.dirs) {
    const chainDir = join(dir, chainId);
    const names = await readdir(chainDir).catch(() => [] as string[]);
    const sized = names.map((n) => /^(0|[1-9][0-9]*)\.checkpoint$/.exec(n)).filter((m) => m !== null).map((m) => Number(m[1])).sort((a, b) => b - a);
    // The newest size file that opens; latest.checkpoint too, which must agree with its size file.
    for (const size of sized) {
      const file = join(chainDir, `${size}.checkpoint`);
      if (take(await readFile(file, 'utf8'), file)) break;
    }
    if (names.includes('latest.checkpoint')) take(await readFile(join(chainDir, 'latest.checkpoint'), 'utf8'), join(chainDir, 'latest.checkpoint'));
  }
  const order = out.checkpoints.map((c, i) => [c, out.where[i]!] as const).sort((a, b) => a[0].size - b[0].size);
  out.checkpoints = order.map(([c]) => c);
  out.where = order.map(([, w]) => w);
  return out;
}

/** Chains named by the checkpoint directories (a store emptied entirely still has them). */
export async function checkpointChains(dirs: readonly string[]): Promise<string[]> {
  const out = new Set<string>();
  for (const dir of dirs) {
    for (const e of await readdir(dir, { withFileTypes: true }).catch(() => [])) if (e.isDirectory()) out.add(e.name);
  }
  return [...out];
}

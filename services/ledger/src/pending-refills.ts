import { existsSync, mkdirSync, readFileSync } from 'node:fs';
import { dirname } from 'node:path';
import { replaceFileSynced } from '../../../core/src/durable-file.js';
import { AgateError, ErrorCode } from '../../../core/src/errors.js';

/** Records `from..to` of a chain that an insert stored without the rows the views derive from them. */
export interface RefillRange {
  from: number;
  to: number;
}

/**
 * The ranges of records waiting for their session rows (LedgerService #refill), kept in a file
 * so a restart does not forget them: once the ledger has read its head back, those records are
 * "already recorded", no insert runs for them again, and nothing else would derive their rows.
 * Written whole and durably (temporary file, fsync, rename) whenever the set changes; without a
 * file (tests, a ledger with no data directory) the set lives in memory only.
 */
export class PendingRefills {
  constructor(private readonly file: string | undefined) {}

  /** The ranges a previous run left. A file that does not parse is an error naming it: silently dropping it would lose rows. */
  load(): Map<string, RefillRange> {
    if (this.file === undefined || !existsSync(this.file)) return new Map();
    try {
      const parsed = JSON.parse(readFileSync(this.file, 'utf8')) as { chains: Record<string, RefillRange> };
      const out = new Map<string, RefillRange>();
      for (const [chain, r] of Object.entries(parsed.chains)) {
        if (!Number.isSafeInteger(r.from) || !Number.isSafeInteger(r.to) || r.from < 1 || r.to < r.from) throw new Error(`chain ${chain}: ${JSON.stringify(r)} is not a range of records`);
        out.set(chain, { from: r.from, to: r.to });
      }
      return out;
    } catch (cause) {
      throw new AgateError(ErrorCode.CONFIG_INVALID, `${this.file} (the ledger's records waiting for their session rows) cannot be read: ${(cause as Error).message}; fix or remove it, then run agate verify --offline --repair-sessions`, { cause });
    }
  }

  /** Replaces the file with `ranges` (removes none: an empty set is written as such). */
  async save(ranges: ReadonlyMap<string, RefillRange>): Promise<void> {
    if (this.file === undefined) return;
    mkdirSync(dirname(this.file), { recursive: true, mode: 0o700 });
    await replaceFileSynced(this.file, JSON.stringify({ chains: Object.fromEntries(ranges) }) + '\n', 0o600);
  }
}

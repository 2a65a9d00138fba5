import { mkdir, readFile } from 'node:fs/promises';
import { dirname } from 'node:path';
import { replaceFileSynced } from '../../../../core/src/durable-file.js';
import { AgateError, ErrorCode } from '../../../../core/src/errors.js';
import type { PositionStore } from './types.js';

/**
 * The last acknowledged ledger position per chain, in a small JSON file replaced atomically
 * (write a temporary file, fsync it, rename over the old one, fsync the directory).
 */
export class PositionFile implements PositionStore {
  constructor(private readonly path: string) {}

  async load(): Promise<Record<string, number>> {
    let text: string;
    try {
      text = await readFile(this.path, 'utf8');
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code === 'ENOENT') return {};
      throw new AgateError(ErrorCode.EXPORT_STATE_INVALID, `cannot read the export position file ${this.path}`, { cause: err });
    }
    const parsed = safeParse(text);
    const chains = parsed?.chains;
    if (chains === null || typeof chains !== 'object' || !Object.values(chains).every((v) => Number.isSafeInteger(v) && (v as number) >= 0)) {
      throw new AgateError(ErrorCode.EXPORT_STATE_INVALID, `the export position file ${this.path} is not valid; remove it to export from the start`);
    }
    return { ...(chains as Record<string, number>) };
  }

  async save(positions: Record<string, number>): Promise<void> {
    await mkdir(dirname(this.path), { recursive: true });
    await replaceFileSynced(this.path, JSON.stringify({ version: 1, chains: positions }) + '\n', 0o600);
  }
}

function safeParse(text: string): { chains?: unknown } | undefined {
  try {
    return JSON.parse(text) as { chains?: unknown };
  } catch {
    return undefined;
  }
}

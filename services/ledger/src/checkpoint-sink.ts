import { mkdir, readdir, readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { createFileOnce, replaceFileSynced } from '../../../core/src/durable-file.js';
import { AgateError, ErrorCode, describeError } from '../../../core/src/errors.js';
import type { Logger } from '../../../core/src/log.js';

/** A signed checkpoint on its way out of the store, to where an outside party keeps it. */
interface PublishedCheckpoint {
  chainId: string;
  origin: string;
  size: number;
  note: string;
}

/** A signed checkpoint note read back from where it was published, with where it was found. */
export interface KeptNote {
  note: string;
  where: string;
}

export interface CheckpointSink {
  publish(cp: PublishedCheckpoint): Promise<void>;
  /**
   * The newest checkpoint this sink holds for a chain, when it can be read back (a webhook
   * cannot): the ledger checks the store against it at start, so a truncated or rolled-back
   * store is refused instead of signing a second history.
   */
  newest?(chainId: string): Promise<KeptNote | undefined>;
}

const LATEST = 'latest.checkpoint';
const SIZE_FILE = /^(0|[1-9][0-9]*)\.checkpoint$/;

/** The tree size a note states (its second line), without opening its signature. */
function noteSize(note: string): number {
  const line = note.split('\n', 2)[1] ?? '';
  return /^(0|[1-9][0-9]*)$/.test(line) ? Number(line) : NaN;
}

const fork = (file: string, size: number) => new AgateError(
  ErrorCode.LEDGER_CHECKPOINT_FORK,
  `${file} already holds a different signed checkpoint of size ${size}: it is kept as it is and nothing more is published, because the ledger's history no longer extends what it published (run agate verify)`,
);

/**
 * Writes `DIR/<chain>/<size>.checkpoint` once and moves `DIR/<chain>/latest.checkpoint`
 * forward. Meant for a directory outside the store (another disk, a mount an auditor syncs
 * elsewhere). A size file is never replaced: republishing the same note is a no-op, and a
 * different note for a size already published is refused (LEDGER_CHECKPOINT_FORK), so the
 * evidence of what was signed survives a truncated or rolled-back store. `latest.checkpoint`
 * only ever moves to a larger size. Every file and the directory are fsynced before `publish`
 * resolves.
 */
export function directorySink(dir: string): CheckpointSink {
  return {
    async publish(cp) {
      const chainDir = join(dir, cp.chainId);
      await mkdir(chainDir, { recursive: true });
      const file = join(chainDir, `${cp.size}.checkpoint`);
      const created = await createFileOnce(file, cp.note);
      if (typeof created === 'object') throw fork(file, cp.size);
      const latestFile = join(chainDir, LATEST);
      const latest = await readFile(latestFile, 'utf8').catch((err: NodeJS.ErrnoException) => (err.code === 'ENOENT' ? undefined : Promise.reject(err)));
      if (latest !== undefined) {
        const size = noteSize(latest);
        if (size > cp.size) return; // never backwards
        if (size === cp.size) {
          if (latest !== cp.note) throw fork(latestFile, cp.size);
          return;
        }
      }
      await replaceFileSynced(latestFile, cp.note);
    },

    async newest(chainId) {
      const chainDir = join(dir, chainId);
      let names: string[];
      try {
        names = await readdir(chainDir);
      } catch (err) {
        if ((err as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
        throw err;
      }
      let best: KeptNote | undefined;
      let bestSize = -1;
      for (const name of names) {
        const m = SIZE_FILE.exec(name);
        if (m !== null && Number(m[1]) > bestSize) [bestSize, best] = [Number(m[1]), { note: '', where: join(chainDir, name) }];
      }
      if (best !== undefined) best.note = await readFile(best.where, 'utf8');
      // latest.checkpoint is a copy of a size file; it counts too, should the size files be gone.
      const latest = await readFile(join(chainDir, LATEST), 'utf8').catch(() => undefined);
      if (latest !== undefined && !(noteSize(latest) <= bestSize)) best = { note: latest, where: join(chainDir, LATEST) };
      return best;
    },
  };
}

/** POSTs the note as text/plain. Failures are logged, never fatal: the store and files still hold it. */
export function webhookSink(url: string, logger: Logger, timeoutMs = 5000): CheckpointSink {
  return {
    async publish(cp) {
      try {
        const res = await fetch(url, {
          method: 'POST',
          headers: { 'content-type': 'text/plain; charset=utf-8', 'x-agate-checkpoint-origin': cp.origin, 'x-agate-checkpoint-size': String(cp.size) },
          body: cp.note,
          signal: AbortSignal.timeout(timeoutMs),
        });
        await res.arrayBuffer();
        if (!res.ok) logger.warn('checkpoint webhook refused the checkpoint', { status: res.status, size: cp.size });
      } catch (err) {
        logger.warn('checkpoint webhook unreachable', { error: describeError(err), size: cp.size });
      }
    },
  };
}

import { mkdir, open, rename } from 'node:fs/promises';
import { join } from 'node:path';
import { describeError } from '../../../core/src/errors.js';
import type { Logger } from '../../../core/src/log.js';

/** A signed checkpoint on its way out of the store, to where an outside party keeps it. */
export interface PublishedCheckpoint {
  chainId: string;
  origin: string;
  size: number;
  note: string;
}

export interface CheckpointSink {
  publish(cp: PublishedCheckpoint): Promise<void>;
}

/**
 * Writes `DIR/<chain>/<size>.checkpoint` and replaces `DIR/<chain>/latest.checkpoint`. Meant
 * for a directory outside the store (another disk, a mount an auditor syncs elsewhere). Each
 * file and the directory are fsynced before `publish` resolves: a checkpoint said to be
 * published survives a power cut, and `latest.checkpoint` is always a whole note.
 */
export function directorySink(dir: string): CheckpointSink {
  return {
    async publish(cp) {
      const chainDir = join(dir, cp.chainId);
      await mkdir(chainDir, { recursive: true });
      await writeSynced(join(chainDir, `${cp.size}.checkpoint`), cp.note);
      await writeSynced(join(chainDir, 'latest.checkpoint.tmp'), cp.note);
      await rename(join(chainDir, 'latest.checkpoint.tmp'), join(chainDir, 'latest.checkpoint'));
      await syncDirectory(chainDir);
    },
  };
}

async function writeSynced(path: string, text: string): Promise<void> {
  const file = await open(path, 'w');
  try {
    await file.writeFile(text);
    await file.sync();
  } finally {
    await file.close();
  }
}

/** fsyncs a directory, so the names written in it (a rename) are on disk too. */
async function syncDirectory(path: string): Promise<void> {
  const handle = await open(path, 'r');
  try {
    await handle.sync();
  } finally {
    await handle.close();
  }
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

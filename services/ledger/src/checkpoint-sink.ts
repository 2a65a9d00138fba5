import { mkdir } from 'node:fs/promises';
import { join } from 'node:path';
import { replaceFileSynced, writeFileSynced } from '../../../core/src/durable-file.js';
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
      await writeFileSynced(join(chainDir, `${cp.size}.checkpoint`), cp.note);
      await replaceFileSynced(join(chainDir, 'latest.checkpoint'), cp.note);
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

import { open, rename } from 'node:fs/promises';
import { dirname } from 'node:path';

/** Writes `text` to `path` and fsyncs it before resolving. */
export async function writeFileSynced(path: string, text: string, mode = 0o666): Promise<void> {
  const file = await open(path, 'w', mode);
  try {
    await file.writeFile(text);
    await file.sync();
  } finally {
    await file.close();
  }
}

/**
 * Replaces `path` with `text` atomically and durably: a temporary file written and fsynced,
 * renamed over the old one, then the directory fsynced so the rename survives a power cut too.
 * A reader sees the old file or the new one, never part of either.
 */
export async function replaceFileSynced(path: string, text: string, mode = 0o666): Promise<void> {
  const tmp = `${path}.tmp`;
  await writeFileSynced(tmp, text, mode);
  await rename(tmp, path);
  const dir = await open(dirname(path), 'r');
  try {
    await dir.sync();
  } finally {
    await dir.close();
  }
}

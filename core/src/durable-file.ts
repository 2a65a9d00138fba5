import { closeSync, fsyncSync, openSync, renameSync, writeFileSync } from 'node:fs';
import { link, open, readFile, rename, unlink } from 'node:fs/promises';
import { dirname } from 'node:path';
import { randomBytes } from 'node:crypto';

/** Writes `text` to `path` and fsyncs it before resolving. */
async function writeFileSynced(path: string, text: string | Uint8Array, mode = 0o666): Promise<void> {
  const file = await open(path, 'w', mode);
  try {
    await file.writeFile(text);
    await file.sync();
  } finally {
    await file.close();
  }
}

async function syncDir(path: string): Promise<void> {
  const dir = await open(dirname(path), 'r');
  try {
    await dir.sync();
  } finally {
    await dir.close();
  }
}

/**
 * Replaces `path` with `text` atomically and durably: a temporary file written and fsynced,
 * renamed over the old one, then the directory fsynced so the rename survives a power cut too.
 * A reader sees the old file or the new one, never part of either.
 */
export async function replaceFileSynced(path: string, text: string | Uint8Array, mode = 0o666): Promise<void> {
  const tmp = `${path}.tmp`;
  await writeFileSynced(tmp, text, mode);
  await rename(tmp, path);
  await syncDir(path);
}

/** `replaceFileSynced` without leaving the event loop, for code that runs before it serves (opening a log). */
export function replaceFileSyncedSync(path: string, bytes: string | Uint8Array, mode = 0o666): void {
  const tmp = `${path}.tmp`;
  writeFileSync(tmp, bytes, { mode, flush: true });
  renameSync(tmp, path);
  syncDirSync(dirname(path));
}

/** fsyncs the directory `dir`, so the names created, renamed or removed in it last. */
export function syncDirSync(dir: string): void {
  const fd = openSync(dir, 'r');
  try {
    fsyncSync(fd);
  } finally {
    closeSync(fd);
  }
}

/** What `createFileOnce` found: it made the file, or the file already held exactly `text`. */
type CreateOnceResult = 'created' | 'unchanged';

/**
 * Creates `path` holding `text`, durably, and never replaces it: the text is written and
 * fsynced under a temporary name and hard-linked to `path`, which fails when `path` exists, so
 * the file appears whole or not at all (a crash leaves no half-written file under its name). An
 * existing file with the same bytes is left as it is; one with other bytes is returned to the
 * caller as `{ existing }`, untouched, for it to refuse.
 */
export async function createFileOnce(path: string, text: string, mode = 0o666): Promise<CreateOnceResult | { existing: string }> {
  const tmp = `${path}.${randomBytes(6).toString('hex')}.tmp`;
  await writeFileSynced(tmp, text, mode);
  try {
    await link(tmp, path);
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== 'EEXIST') throw err;
    const existing = await readFile(path, 'utf8');
    return existing === text ? 'unchanged' : { existing };
  } finally {
    await unlink(tmp).catch(() => undefined);
  }
  await syncDir(path);
  return 'created';
}

import { chmodSync, lstatSync, mkdirSync, readFileSync, writeFileSync, type Stats } from 'node:fs';
import { dirname } from 'node:path';
import { AgateError, ErrorCode } from './errors.js';

/**
 * Keys and secrets Agate keeps on disk (the checkpoint signing key, the dev issuer's key, the SSH
 * proxy's host key) live in files only their owner can read (0600). Directories Agate creates for
 * them are 0700. A looser key file that this process owns is tightened to 0600; one it cannot
 * tighten (another owner), a symlink, or a directory others can write to (they could swap the key)
 * is refused, naming the path. An existing directory is otherwise left alone: the key paths are
 * configurable, and tightening /etc/ssh because a key lives there would break other things.
 */

/** Reads a secret file after making sure it is private. */
export function readSecretFile(path: string): Buffer {
  ensurePrivateDir(dirname(path));
  tighten(path, 0o600, (st) => st.isFile(), 'a regular file');
  return readFileSync(path);
}

/**
 * Creates a secret file with `content` (mode 0600 from the first byte, in a 0700 directory).
 * Returns false when it already exists (another process may have won the race); read it then.
 */
export function createSecretFile(path: string, content: string | Buffer): boolean {
  ensurePrivateDir(dirname(path));
  try {
    writeFileSync(path, content, { mode: 0o600, flag: 'wx' });
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'EEXIST') return false;
    throw err;
  }
  // The umask may have taken bits off, never added them; this makes the mode exact.
  chmodSync(path, 0o600);
  return true;
}

/** Creates the directory (and missing parents) as 0700; refuses an existing one others can write to. */
function ensurePrivateDir(dir: string): void {
  mkdirSync(dir, { recursive: true, mode: 0o700 });
  const st = lstatSync(dir);
  if (!st.isDirectory()) throw new AgateError(ErrorCode.SECRET_FILE_UNSAFE, `${dir} should be the directory holding a secret, but it is not a directory`);
  // Group or other write without the sticky bit lets someone else replace the file.
  if ((st.mode & 0o022) !== 0 && (st.mode & 0o1000) === 0) {
    throw new AgateError(ErrorCode.SECRET_FILE_UNSAFE, `${dir} holds a secret but others may write to it (mode ${(st.mode & 0o7777).toString(8)}); make it 0700`);
  }
}

function tighten(path: string, mode: number, kind: (st: Stats) => boolean, kindName: string): void {
  const st = lstatSync(path);
  if (!kind(st)) throw new AgateError(ErrorCode.SECRET_FILE_UNSAFE, `${path} holds a secret and must be ${kindName}, not a symlink or anything else`);
  if ((st.mode & 0o7777) === mode) return;
  if (typeof process.getuid === 'function' && st.uid !== process.getuid()) {
    throw new AgateError(ErrorCode.SECRET_FILE_UNSAFE, `${path} holds a secret and has mode ${(st.mode & 0o777).toString(8)}, but belongs to uid ${st.uid}, not this process (uid ${process.getuid()}); make it ${mode.toString(8)} and owned by Agate's user`);
  }
  chmodSync(path, mode);
}

import { posix } from 'node:path';
import type { Client, SFTPWrapper } from 'ssh2';

/**
 * Where a path a client names leads on the target. A rule on `/srv/locked/*` must hold for
 * `/srv/open/../locked/x`, `//srv/locked/x`, a relative path from the login's home, and a
 * symlink the agent made earlier (`ln -s /srv/locked door`, then `put f door/x`): Agate asks
 * the target itself, over its own sftp channel, with REALPATH (OpenSSH resolves every link and
 * accepts a last component that does not exist yet). A path whose parent does not exist either
 * is resolved as far as it exists. What Agate decides is the path at that moment; a link swapped
 * between the decision and the operation (by another channel racing) is not seen.
 */
export class TargetPaths {
  readonly #sftp: SFTPWrapper;
  readonly #home: string;

  private constructor(sftp: SFTPWrapper, home: string) {
    this.#sftp = sftp;
    this.#home = home;
  }

  /** Opens Agate's own sftp channel to the target and learns the login's home (`.`). */
  static async open(upstream: Client): Promise<TargetPaths> {
    const sftp = await new Promise<SFTPWrapper>((resolve, reject) => upstream.sftp((err, s) => (err ? reject(err) : resolve(s))));
    try {
      return new TargetPaths(sftp, await realpath(sftp, '.'));
    } catch (err) {
      sftp.end();
      throw err;
    }
  }

  /** The absolute path `path` names (relative ones from the home), with `.`, `..` and `//` removed; no link followed. */
  lexical(path: string, from = this.#home): string {
    return posix.resolve(from, path);
  }

  /** Where `path` leads on the target, every symlink followed. */
  async resolve(path: string, from = this.#home): Promise<string> {
    const lexical = this.lexical(path, from);
    let rest = '';
    for (let at = lexical; ; at = posix.dirname(at)) {
      try {
        const real = await realpath(this.#sftp, at);
        return rest === '' ? real : posix.join(real, rest);
      } catch {
        // Not there (yet): resolve its parent and keep the rest as named.
        if (at === '/') return lexical;
        rest = rest === '' ? posix.basename(at) : posix.join(posix.basename(at), rest);
      }
    }
  }

  /** Whether `path` (already resolved) is a directory on the target; false when it does not exist. */
  isDirectory(path: string): Promise<boolean> {
    return new Promise((resolve) => this.#sftp.stat(path, (err, stats) => resolve(!err && stats.isDirectory())));
  }

  close(): void {
    this.#sftp.end();
  }
}

function realpath(sftp: SFTPWrapper, path: string): Promise<string> {
  return new Promise((resolve, reject) => sftp.realpath(path, (err, abs) => (err ? reject(err) : resolve(abs))));
}

import { createHash, type Hash } from 'node:crypto';
import { shellWords } from './git/invocation.js';

/** One file an `scp` transfer carried. */
interface ScpFile {
  /** The file's name as sent (its directory comes from the command line and `D` records). */
  path: string;
  size: number;
  /** `sha256:<hex>` of its content; null when the stream ended inside it. */
  digest: string | null;
}

/** A control line longer than this is not scp (OpenSSH's own limit is 2 KiB + path). */
const MAX_CONTROL_LINE = 8192;

/**
 * Reads the source side of the legacy scp protocol (`scp -t` receives it on stdin, `scp -f`
 * sends it on stdout): control lines `C<mode> <size> <name>`, `D<mode> 0 <dir>`, `E`,
 * `T<times>`, each followed by the file's bytes and a NUL for `C`. Every file's name, size and
 * digest are collected; only one control line is ever buffered.
 */
export class ScpSourceReader {
  readonly files: ScpFile[] = [];
  /** Set when the stream stopped looking like scp; what was read until then stands. */
  broken = false;
  #line = '';
  #dirs: string[] = [];
  #file: { path: string; size: number; left: number; hash: Hash } | undefined;
  /** The NUL that follows a file's bytes. */
  #trailer = false;

  push(chunk: Buffer): void {
    let at = 0;
    while (at < chunk.length && !this.broken) {
      if (this.#file !== undefined) {
        const n = Math.min(this.#file.left, chunk.length - at);
        this.#file.hash.update(chunk.subarray(at, at + n));
        this.#file.left -= n;
        at += n;
        if (this.#file.left === 0) {
          this.files.push({ path: this.#file.path, size: this.#file.size, digest: `sha256:${this.#file.hash.digest('hex')}` });
          this.#file = undefined;
          this.#trailer = true;
        }
        continue;
      }
      if (this.#trailer) {
        this.#trailer = false;
        if (chunk[at] === 0) at += 1;
        continue;
      }
      const nl = chunk.indexOf(0x0a, at);
      const end = nl < 0 ? chunk.length : nl;
      this.#line += chunk.subarray(at, end).toString('utf8');
      at = end + (nl < 0 ? 0 : 1);
      if (this.#line.length > MAX_CONTROL_LINE) this.broken = true;
      else if (nl >= 0) this.#control(this.#line);
      if (nl >= 0) this.#line = '';
    }
  }

  /** Files cut short by the end of the stream. */
  end(): void {
    if (this.#file !== undefined) this.files.push({ path: this.#file.path, size: this.#file.size, digest: null });
    this.#file = undefined;
  }

  #control(line: string): void {
    const m = /^([CD])([0-7]{4}) (\d+) (.+)$/.exec(line);
    if (m !== null) {
      const path = [...this.#dirs, m[4]!].join('/');
      if (m[1] === 'D') return void this.#dirs.push(m[4]!);
      const size = Number(m[3]);
      if (size === 0) {
        // No bytes follow: the file is complete at once, then its NUL.
        this.files.push({ path, size, digest: `sha256:${createHash('sha256').digest('hex')}` });
        this.#trailer = true;
        return;
      }
      this.#file = { path, size, left: size, hash: createHash('sha256') };
      return;
    }
    if (line === 'E') return void this.#dirs.pop();
    if (/^T\d+ \d+ \d+ \d+$/.test(line)) return;
    this.broken = true;
  }
}

/** The direction of a legacy scp exec: `scp -t` receives files (upload), `scp -f` sends them. */
export function scpMode(command: string): 'sink' | 'source' | undefined {
  const m = /^\s*scp((?:\s+-[a-zA-Z]+)*)\s/.exec(command);
  if (m === null) return undefined;
  const flags = m[1]!;
  if (/-[a-zA-Z]*t/.test(flags)) return 'sink';
  if (/-[a-zA-Z]*f/.test(flags)) return 'source';
  return undefined;
}

/** A legacy scp exec read as a file transfer: what it writes (`sink`, `-t`) or reads (`source`, `-f`). */
export type ScpTransfer = { kind: 'scp'; mode: 'sink' | 'source'; path: string } | { kind: 'unclear'; reason: string };

/**
 * The transfer a legacy scp exec makes, decided as a file operation before it runs; undefined
 * when the line is not `scp … -t|-f …`. Only the plain form `scp [-options] -t|-f [--] PATH`
 * (what OpenSSH's scp sends) is read; any other line running scp's server side is `unclear`
 * and refused, since the path it would write or read cannot be known.
 */
export function scpTransfer(command: string): ScpTransfer | undefined {
  const words = shellWords(command);
  if (words === undefined) return /\bscp\b[^\n]*\s-[a-zA-Z]*[tf]\b/.test(command) ? { kind: 'unclear', reason: 'the command line runs scp\'s server side in a form other than `scp -t|-f PATH`' } : undefined;
  if (!/^(?:\S*\/)?scp$/.test(words[0] ?? '')) return undefined;
  let i = 1;
  let mode: 'sink' | 'source' | undefined;
  for (; i < words.length && words[i]!.startsWith('-') && words[i] !== '--'; i += 1) {
    if (/^-[a-zA-Z]*t[a-zA-Z]*$/.test(words[i]!)) mode = 'sink';
    else if (/^-[a-zA-Z]*f[a-zA-Z]*$/.test(words[i]!)) mode ??= 'source';
  }
  if (mode === undefined) return undefined;
  if (words[i] === '--') i += 1;
  if (words.length - i !== 1 || words[i] === '') return { kind: 'unclear', reason: 'legacy scp is decided one path at a time: `scp -t|-f PATH`' };
  return { kind: 'scp', mode, path: words[i]! };
}

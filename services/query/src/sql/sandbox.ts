import { spawn, type ChildProcessByStdio } from 'node:child_process';
import { accessSync, constants, mkdtempSync, realpathSync, rmSync } from 'node:fs';
import { readdir, readlink } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join, relative, resolve } from 'node:path';
import type { Readable, Writable } from 'node:stream';
import { fileURLToPath } from 'node:url';
import { AgateError, ErrorCode } from '../../../../core/src/errors.js';
import { Backoff, pause } from '../../../../core/src/retry.js';
import type { Store } from '../../../../core/src/store/store.js';
import type { AnalystEngine } from '../sql-endpoint.js';

/**
 * The second layer around analyst SQL on the embedded engine: each request runs in a fresh child
 * process (sandbox-worker.ts) inside new user, mount, PID, network, IPC and UTS namespaces.
 *
 * Why: the embedded engine is clickhouse-local, whose scalar `file('/abs/path')` skips the
 * `user_files_path` check a ClickHouse server makes, and it runs inside Agate's process, which
 * can read Agate's keys, its environment and /proc. If the allow-list (guard.ts) ever let such a
 * call through, the worker would find none of them: its root is a fresh tmpfs holding only the
 * system's libraries (read-only), the engine's package (read-only) and a view of the store: the
 * real store bind-mounted read-only, and a private store directory (tmpfs) holding copies of the
 * table definitions and, per table, links to the parts that were active when the request came
 * (`system.parts`). The engine opens that private directory, so the real store's lock is not
 * taken and nothing the worker writes reaches it; and it never sees the parts an insert or merge
 * of Agate's own engine is still writing, which the engine would otherwise try to delete when it
 * opens (it clears `tmp_*` directories at start). Parts a merge replaced stay on disk for
 * `old_parts_lifetime` (480 s, durable-tables.ts), longer than a query may run by default.
 * No /proc, /sys, /dev, /etc, /home or data directory, no network but a loopback that is down,
 * an empty environment, every capability dropped and no new privileges. Each request gets its
 * own sandbox, so it sees the store as it is now and leaves nothing behind for the next analyst.
 *
 * It needs Linux with unprivileged user namespaces, util-linux's `unshare`, `setpriv` and
 * `pivot_root`. If the sandbox cannot be set up, the request fails
 * with SQL_SANDBOX_UNAVAILABLE: analyst SQL never falls back to running unconfined on its own
 * (`query.sql.sandbox: off` does that, and says so loudly at start).
 */

/** A bound on what one reply may carry; the engine's max_result_rows bounds rows, not bytes. */
const MAX_REPLY_BYTES = 256 * 1024 * 1024;
/** Setting the sandbox up and opening the store, before the first statement may run. */
const SETUP_TIMEOUT_MS = 15_000;
const STDERR_KEEP = 4096;
/** Opens of the store tried per request before it is refused. */
const OPEN_ATTEMPTS = 3;
/** Waits between those attempts (core/src/retry.ts), for the merge to finish. */
const OPEN_BACKOFF = { firstMs: 50, maxMs: 200 };

/**
 * Runs in the new namespaces as their root (the caller's own uid mapped to 0), builds the new
 * root under $1 and execs the worker with nothing but: $1 mount point, $2 store, $3 node, $4
 * worker, $5 node_modules, $6 engine entry. Paths travel as arguments, never inside the text.
 * The worker builds its view of the store itself, from the plan it is sent (storePlan).
 */
const SETUP = String.raw`set -eu
root=$1 store=$2 node=$3 worker=$4 modules=$5 entry=$6
mount -t tmpfs -o mode=0755,size=16m,nosuid,nodev agate-sql "$root"
ro() { mkdir -p "$root$1"; mount --bind "$1" "$root$1"; mount -o remount,bind,ro,nosuid,nodev "$root$1"; }
for d in /usr /lib /lib64 /lib32 /libx32 /bin /sbin; do
  if [ -L "$d" ]; then ln -s "$(readlink "$d")" "$root$d"; elif [ -d "$d" ]; then ro "$d"; fi
done
case "$node" in /usr/*|/bin/*) ;; *) ro "$(dirname "$node")" ;; esac
ro "$modules"
mkdir "$root/.store" "$root/.user-files"
mount --bind "$store" "$root/.store"
mount -o remount,bind,ro,nosuid,nodev "$root/.store"
mkdir -p "$root$store"
mount -t tmpfs -o mode=0700,size=512m,nosuid,nodev agate-sql-store "$root$store"
cp "$worker" "$root/worker.mjs"
setpriv=$(command -v setpriv)
cd "$root"
mkdir .old proc
pivot_root . .old
cd /
# umount finds mounts through /proc: this PID namespace's own, only until the old root is gone.
mount -t proc -o nosuid,nodev,noexec proc /proc
umount -l /.old
umount /proc
rmdir /.old /proc
exec "$setpriv" --no-new-privs --bounding-set=-all --inh-caps=-all -- "$node" /worker.mjs "$store" "$entry" /.user-files /.store
`;

const UNSHARE_ARGS = ['--user', '--map-root-user', '--mount', '--propagation', 'private', '--pid', '--net', '--ipc', '--uts', '--kill-child=SIGKILL', '--fork'];
const PATH = '/usr/sbin:/usr/bin:/sbin:/bin';

interface Paths {
  unshare: string;
  node: string;
  worker: string;
  modules: string;
  entry: string;
}

/** Where the sandbox's pieces are on this host; throws SQL_SANDBOX_UNAVAILABLE naming what is missing. */
function locate(): Paths {
  if (process.platform !== 'linux') throw unavailable(`it needs Linux namespaces (this is ${process.platform})`);
  const unshare = PATH.split(':').map((d) => join(d, 'unshare')).find((p) => executable(p));
  if (unshare === undefined) throw unavailable('util-linux `unshare` is not installed');
  for (const tool of ['setpriv', 'pivot_root']) {
    if (!PATH.split(':').some((d) => executable(join(d, tool)))) throw unavailable(`util-linux \`${tool}\` is not installed`);
  }
  // The engine by its real path, so that its own requires resolve inside the sandbox too.
  const entry = realpathSync(fileURLToPath(import.meta.resolve('chdb')));
  const cut = entry.lastIndexOf('/node_modules/');
  if (cut < 0) throw unavailable(`the engine package is not under a node_modules directory (${entry})`);
  return { unshare, node: realpathSync(process.execPath), worker: fileURLToPath(new URL('./sandbox-worker.js', import.meta.url)), modules: entry.slice(0, cut + '/node_modules'.length), entry };
}

function executable(path: string): boolean {
  try {
    accessSync(path, constants.X_OK);
    return true;
  } catch {
    return false;
  }
}

function unavailable(why: string, cause?: unknown, retriable = false): AgateError {
  return new AgateError(ErrorCode.SQL_SANDBOX_UNAVAILABLE, `analyst SQL is refused: its sandbox cannot be set up (${why}); see SECURITY.md "Analyst SQL"`, { cause, retriable });
}

/**
 * @example
 * const store = EmbeddedStore.open('/var/lib/agate/store');
 * const sandbox = AnalystSandbox.create('/var/lib/agate/store', store);
 * const rows = await sandbox.run((engine) => engine.query('SELECT count() AS n FROM agate.commands'), 15_000);
 */
export class AnalystSandbox {
  readonly #storePath: string;
  readonly #store: Store;
  readonly #mountPoint: string;
  readonly #paths: Paths;
  /** A worker started ahead, its engine loaded, waiting for a plan: most of a sandbox's start-up cost. */
  #spare: SandboxWorker | undefined;
  #closed = false;

  private constructor(storePath: string, store: Store, mountPoint: string, paths: Paths) {
    this.#storePath = storePath;
    this.#store = store;
    this.#mountPoint = mountPoint;
    this.#paths = paths;
  }

  /**
   * `store` is the embedded store open on `storePath` in this process: it says which parts are
   * active. Checks the pieces exist; whether the kernel lets them work shows on the first `run`.
   */
  static create(storePath: string, store: Store): AnalystSandbox {
    const paths = locate();
    // Only ever a mount point inside the sandbox's own namespace; on the host it stays empty.
    const mountPoint = mkdtempSync(join(tmpdir(), 'agate-sql-sandbox-'));
    return new AnalystSandbox(realpathSync(storePath), store, mountPoint, paths);
  }

  /**
   * Opens a sandbox on the store as it is now, hands its engine to `fn` (statements run one at a
   * time), and ends it. The next request's worker is started once this one has finished.
   */
  async run<T>(fn: (engine: AnalystEngine) => Promise<T>, deadlineMs: number): Promise<T> {
    if (this.#closed) throw unavailable('it has been closed');
    let worker: SandboxWorker;
    const backoff = new Backoff(OPEN_BACKOFF);
    for (let attempt = 1; ; attempt++) {
      const plan = await this.#plan();
      const next = this.#spare?.usable() === true ? this.#spare : this.#spawn();
      this.#spare = undefined;
      try {
        await next.open(plan, deadlineMs);
        worker = next;
        break;
      } catch (err) {
        next.end();
        // The store is live: an open can still catch a part a merge has just replaced and removed.
        if (!(err instanceof AgateError) || !err.retriable || attempt >= OPEN_ATTEMPTS) throw err;
        await pause(backoff.next());
      }
    }
    try {
      return await fn(worker);
    } finally {
      worker.end();
      if (!this.#closed && this.#spare === undefined) this.#spare = this.#spawn();
    }
  }

  close(): void {
    this.#closed = true;
    this.#spare?.end();
    this.#spare = undefined;
    rmSync(this.#mountPoint, { recursive: true, force: true });
  }

  #spawn(): SandboxWorker {
    return SandboxWorker.start(this.#paths, this.#storePath, this.#mountPoint);
  }

  async #plan(): Promise<StorePlan> {
    try {
      const parts = await this.#store.query<{ path: string }>("SELECT path FROM system.parts WHERE active AND database = 'agate'");
      return await storePlan(this.#storePath, parts.map((p) => p.path));
    } catch (cause) {
      throw unavailable(`cannot read the store's layout: ${(cause as Error).message.split('\n')[0]!.slice(0, 200)}`, cause);
    }
  }
}

/** `store/<3 hex>/<table uuid>/<part>/`, the end of an Atomic database's part path. */
const PART_PATH = /\/(store\/[0-9a-f]{3}\/[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12})\/([A-Za-z0-9_-]+)\/?$/;
/** Relative paths of plain characters, inside the store. */
const PLAIN_PATH = /^(?!.*\.\.)[A-Za-z0-9_./-]+$/;

/**
 * What the worker puts in its private store directory (sandbox-worker.ts), relative to the store:
 * copies of `metadata/`, each database's table definitions and each table's format_version.txt,
 * and per table directory the names of its active parts, to link.
 */
interface StorePlan {
  copies: string[];
  tables: [string, string[]][];
}

async function storePlan(store: string, activeParts: readonly string[]): Promise<StorePlan> {
  const copies = new Set<string>(['metadata']);
  const metadata = join(store, 'metadata');
  for (const entry of await readdir(metadata, { withFileTypes: true })) {
    // An Atomic database's directory in metadata/ is a link to its definitions under store/.
    if (entry.isSymbolicLink()) copies.add(relative(store, resolve(metadata, await readlink(join(metadata, entry.name)))));
  }
  const tables = new Map<string, string[]>();
  for (const path of activeParts) {
    const m = PART_PATH.exec(path);
    if (m === null) throw new Error(`a part path Agate does not recognise: ${path.slice(-120)}`);
    const [, dir, part] = m as unknown as [string, string, string];
    copies.add(`${dir}/format_version.txt`);
    const names = tables.get(dir);
    if (names === undefined) tables.set(dir, [part]);
    else names.push(part);
  }
  for (const path of [...copies, ...tables.keys()]) {
    if (!PLAIN_PATH.test(path)) throw new Error(`a store path Agate does not pass to the sandbox: ${path.slice(0, 120)}`);
  }
  return { copies: [...copies], tables: [...tables] };
}

/** A reply's first line (sandbox-worker.ts). */
interface Header {
  ok: boolean;
  length?: number;
  message?: string;
  code?: number;
}

type Pending = { resolve: (body: Buffer) => void; reject: (err: AgateError) => void };

/** One sandboxed worker process and the framed replies on its stdout. */
class SandboxWorker implements AnalystEngine {
  readonly #child: ChildProcessByStdio<Writable, Readable, Readable>;
  #timer: NodeJS.Timeout | undefined;
  #chunks: Buffer[] = [];
  #buffered = 0;
  #header: Header | undefined;
  #pending: Pending | undefined;
  #stderr = '';
  #failure: AgateError | undefined;

  private constructor(child: ChildProcessByStdio<Writable, Readable, Readable>) {
    this.#child = child;
    child.stdout.on('data', (chunk: Buffer) => this.#onData(chunk));
    child.stderr.on('data', (chunk: Buffer) => {
      if (this.#stderr.length < STDERR_KEEP) this.#stderr += chunk.toString('utf8').slice(0, STDERR_KEEP - this.#stderr.length);
    });
    child.stdin.on('error', () => undefined); // a dead worker shows as its exit, below
    child.on('error', (err) => this.#fail(unavailable(`cannot start unshare: ${err.message}`, err)));
    child.on('close', (code, signal) => this.#fail(this.#exitError(code, signal)));
  }

  /** Sets the sandbox up and loads the engine; the worker then waits for `open`. */
  static start(paths: Paths, store: string, mountPoint: string): SandboxWorker {
    const child = spawn(paths.unshare, [...UNSHARE_ARGS, '/bin/sh', '-c', SETUP, 'agate-sql-sandbox', mountPoint, store, paths.node, paths.worker, paths.modules, paths.entry], {
      env: { PATH },
      stdio: ['pipe', 'pipe', 'pipe'],
    });
    return new SandboxWorker(child);
  }

  /** Whether this worker can still be opened (a spare may have died while it waited). */
  usable(): boolean {
    return this.#failure === undefined;
  }

  /** Sends the plan; resolves once the store is open, then the deadline runs. */
  async open(plan: StorePlan, deadlineMs: number): Promise<void> {
    this.#arm(SETUP_TIMEOUT_MS, (s) => unavailable(`it was not ready within ${s} s`));
    const ready = this.#reply();
    this.#child.stdin.write(JSON.stringify(plan) + '\n');
    try {
      await ready;
    } catch (err) {
      const engine = (err as AgateError).cause as Error | undefined;
      if ((err as AgateError).code !== ErrorCode.STORE_FAILED || engine === undefined) throw err;
      throw unavailable(`the engine could not open the store: ${engine.message.split('\n')[0]!.slice(0, 300)}`, engine, true);
    }
    this.#arm(deadlineMs, (s) => new AgateError(ErrorCode.SQL_LIMIT_EXCEEDED, `the analyst SQL sandbox did not finish within ${s} s and was stopped`));
  }

  async query<T extends object>(sql: string, params: Record<string, unknown> = {}): Promise<T[]> {
    const reply = this.#reply();
    this.#child.stdin.write(JSON.stringify({ sql, params }) + '\n');
    const text = (await reply).toString('utf8');
    return text.length === 0 ? [] : text.trimEnd().split('\n').map((line) => JSON.parse(line) as T);
  }

  /** Ends the worker: stdin closed lets it exit; the kill makes sure it does. */
  end(): void {
    clearTimeout(this.#timer);
    this.#failure ??= new AgateError(ErrorCode.STORE_FAILED, 'the analyst SQL sandbox has ended');
    this.#child.stdin.end();
    this.#child.kill('SIGKILL');
  }

  /** The worker is killed when `ms` pass before `end`. */
  #arm(ms: number, error: (seconds: number) => AgateError): void {
    clearTimeout(this.#timer);
    this.#timer = setTimeout(() => this.#fail(error(Math.round(ms / 100) / 10)), ms);
  }

  #reply(): Promise<Buffer> {
    if (this.#failure !== undefined) return Promise.reject(this.#failure);
    if (this.#pending !== undefined) return Promise.reject(new AgateError(ErrorCode.STORE_FAILED, 'the analyst SQL sandbox runs one statement at a time'));
    return new Promise<Buffer>((resolve, reject) => {
      this.#pending = { resolve, reject };
      this.#parse();
    });
  }

  #onData(chunk: Buffer): void {
    this.#chunks.push(chunk);
    this.#buffered += chunk.length;
    if (this.#buffered > MAX_REPLY_BYTES + 65536) {
      this.#fail(new AgateError(ErrorCode.SQL_LIMIT_EXCEEDED, `the result is larger than ${MAX_REPLY_BYTES} bytes`));
      return;
    }
    this.#parse();
  }

  #parse(): void {
    if (this.#pending === undefined || this.#buffered === 0) return;
    let buf = this.#chunks.length === 1 ? this.#chunks[0]! : Buffer.concat(this.#chunks);
    this.#chunks = [buf];
    if (this.#header === undefined) {
      const nl = buf.indexOf(0x0a);
      if (nl < 0) {
        if (buf.length > 65536) this.#fail(unavailable('the sandbox worker sent a malformed reply'));
        return;
      }
      try {
        this.#header = JSON.parse(buf.subarray(0, nl).toString('utf8')) as Header;
      } catch (cause) {
        this.#fail(unavailable('the sandbox worker sent a malformed reply', cause));
        return;
      }
      buf = buf.subarray(nl + 1);
      this.#chunks = [buf];
      this.#buffered = buf.length;
    }
    const header = this.#header!;
    if (!header.ok) {
      this.#header = undefined;
      const pending = this.#pending;
      this.#pending = undefined;
      // Shaped like the embedded store's errors, so sql-endpoint.ts translates both alike.
      const cause = Object.assign(new Error(header.message ?? 'the engine failed'), { clickhouseCode: header.code });
      pending.reject(new AgateError(ErrorCode.STORE_FAILED, `the sandboxed engine failed: ${cause.message.split('\n')[0]!.slice(0, 300)}`, { cause }));
      return;
    }
    const length = header.length ?? 0;
    if (length > MAX_REPLY_BYTES) {
      this.#fail(new AgateError(ErrorCode.SQL_LIMIT_EXCEEDED, `the result is larger than ${MAX_REPLY_BYTES} bytes`));
      return;
    }
    if (this.#buffered < length) return;
    this.#header = undefined;
    const body = buf.subarray(0, length);
    this.#chunks = [buf.subarray(length)];
    this.#buffered -= length;
    const pending = this.#pending;
    this.#pending = undefined;
    pending.resolve(body);
  }

  #exitError(code: number | null, signal: NodeJS.Signals | null): AgateError {
    const how = signal === null ? `exit status ${code}` : `signal ${signal}`;
    // The setup's own tools (unshare, mount, pivot_root) say why on stderr; the engine's noise about
    // missing /proc and cgroups files is not the reason.
    const why = this.#stderr.split('\n').map((l) => l.trim()).filter((l) => l.length > 0 && !/cgroups|^\d+\. |Stack trace/.test(l)).slice(-2).join('; ').slice(0, 400);
    return unavailable(`the sandbox ended with ${how}${why.length > 0 ? `: ${why}` : ''}`);
  }

  #fail(err: AgateError): void {
    if (this.#failure === undefined) this.#failure = err;
    clearTimeout(this.#timer);
    this.#child.kill('SIGKILL');
    const pending = this.#pending;
    this.#pending = undefined;
    pending?.reject(this.#failure);
  }
}

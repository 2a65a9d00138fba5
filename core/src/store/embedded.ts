import { existsSync, mkdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { unlink, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Session } from 'chdb';
import { AgateError, ErrorCode } from '../errors.js';
import type { InsertOptions, Store } from './store.js';
import { parseJsonLines } from './json-lines.js';

/**
 * The ClickHouse engine running inside this process (chdb), data on local disk. chdb allows one
 * open data directory per process, so one `EmbeddedStore` serves every service of `agate start`.
 */
export class EmbeddedStore implements Store {
  readonly #session: Session;
  readonly #lockFile: string;
  #inserts = 0;

  private constructor(session: Session, lockFile: string) {
    this.#session = session;
    this.#lockFile = lockFile;
  }

  /**
   * `configFile`: a ClickHouse server config the engine reads (clusters, macros, Keeper,
   * profiles); tests use one to run a cluster's DDL on one in-process engine.
   */
  static open(path: string, options: { configFile?: string } = {}): EmbeddedStore {
    mkdirSync(path, { recursive: true });
    // The engine's own lock error does not say who holds it; Agate's pid file does.
    const lockFile = join(path, 'agate.pid');
    const holder = lockHolder(lockFile);
    if (holder !== undefined) {
      throw new AgateError(ErrorCode.STORE_FAILED, `the store at ${path} is in use by process ${holder} (is Agate running? use its query API instead)`);
    }
    // Relative names given to file() resolve here, and a ClickHouse server confines file() to
    // it: an empty directory only Agate can enter. (The embedded engine, like clickhouse-local,
    // does not confine absolute paths; the analyst SQL allow-list refuses file() for that.)
    const userFiles = join(path, 'user_files-empty');
    mkdirSync(userFiles, { recursive: true, mode: 0o700 });
    let session: Session;
    try {
      const config = options.configFile === undefined ? [] : [`--config-file=${options.configFile}`];
      session = new Session(path, { connectionArgs: [`--user_files_path=${userFiles}`, ...config] });
    } catch (cause) {
      throw new AgateError(ErrorCode.STORE_FAILED, `cannot open the embedded store at ${path}: ${(cause as Error).message}`, { cause });
    }
    writeFileSync(lockFile, String(process.pid));
    return new EmbeddedStore(session, lockFile);
  }

  async exec(sql: string): Promise<void> {
    await this.#run(() => this.#session.queryAsync(sql), sql);
  }

  async query<T extends object>(sql: string, params: Record<string, unknown> = {}): Promise<T[]> {
    const result = await this.#run(() => this.#session.queryBindAsync(sql, params, { format: 'JSONEachRow' }), sql);
    return parseJsonLines<T>(result.text());
  }

  async insert(table: string, rows: readonly Record<string, unknown>[]): Promise<void> {
    if (rows.length === 0) return;
    const payload = Buffer.from(rows.map((r) => JSON.stringify(r)).join('\n'));
    await this.#run(() => this.#session.insert({ table, values: payload, format: 'JSONEachRow' }), `INSERT INTO ${table}`);
  }

  async insertTsv(table: string, columns: readonly string[], payload: Buffer): Promise<void> {
    if (payload.length === 0) return;
    await this.#run(() => this.#session.insert({ table, values: payload, format: 'TabSeparated', columns }), `INSERT INTO ${table}`);
  }

  /**
   * chdb's insert API takes text formats only, so RowBinary goes through a private file in memory
   * (/dev/shm when present) that the engine reads with file(): measured 1.5-2x the rows/s of the
   * same rows as TSV, and cheaper to build.
   */
  async insertRowBinary(table: string, columns: readonly string[], structure: string, payload: Buffer, options: InsertOptions = {}): Promise<void> {
    if (payload.length === 0) return;
    const file = join(existsSync('/dev/shm') ? '/dev/shm' : tmpdir(), `agate-insert-${process.pid}-${this.#inserts++}.bin`);
    await writeFile(file, payload, { mode: 0o600 });
    try {
      const quoted = (s: string) => `'${s.replace(/[\\']/g, (c) => '\\' + c)}'`;
      const settings = options.dedupToken === undefined ? '' : ` SETTINGS insert_deduplication_token = ${quoted(options.dedupToken)}`;
      await this.exec(`INSERT INTO ${table} (${columns.join(', ')})${settings} SELECT * FROM file(${quoted(file)}, 'RowBinary', ${quoted(structure)})`);
    } finally {
      await unlink(file).catch(() => undefined);
    }
  }

  async queryRowBinary(sql: string, params: Record<string, unknown> = {}): Promise<Buffer> {
    const result = await this.#run(() => this.#session.queryBindAsync(sql, params, { format: 'RowBinary' }), sql);
    const bytes = result.bytes();
    return Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  }

  /**
   * The engine's own view of its memory in bytes, from system.metrics: `tracked` (its memory
   * tracker: everything the engine allocated and has not freed) and the size of each cache that
   * holds any. Allocator free lists and thread stacks are not in it.
   */
  async engineMemory(): Promise<Record<string, number>> {
    // 64-bit integers come quoted in JSON.
    const rows = await this.query<{ metric: string; bytes: string }>(
      "SELECT metric, value AS bytes FROM system.metrics WHERE metric = 'MemoryTracking' OR (metric LIKE '%CacheBytes' AND value > 0)",
    );
    const out: Record<string, number> = {};
    for (const r of rows) out[r.metric === 'MemoryTracking' ? 'tracked' : cacheKind(r.metric)] = Number(r.bytes);
    return out;
  }

  async close(): Promise<void> {
    if (!this.#session.open) return;
    this.#session.close();
    rmSync(this.#lockFile, { force: true });
  }

  async #run<T>(op: () => Promise<T>, what: string): Promise<T> {
    try {
      return await op();
    } catch (cause) {
      // The statement's head names the failing operation without dumping audit content.
      throw new AgateError(ErrorCode.STORE_FAILED, `store operation failed (${what.trim().slice(0, 60)}…): ${(cause as Error).message}`, { cause, retriable: true });
    }
  }
}

/** `MarkCacheBytes` → `mark_cache`. */
function cacheKind(metric: string): string {
  return metric.replace(/Bytes$/, '').replace(/(?<=[a-z])(?=[A-Z])/g, '_').toLowerCase();
}

/** The pid in the lock file, when that process is alive and is not this one. */
function lockHolder(lockFile: string): number | undefined {
  let pid: number;
  try {
    pid = Number(readFileSync(lockFile, 'utf8'));
  } catch {
    return undefined;
  }
  if (!Number.isInteger(pid) || pid <= 0 || pid === process.pid) return undefined;
  try {
    process.kill(pid, 0);
    return pid;
  } catch (err) {
    return (err as NodeJS.ErrnoException).code === 'EPERM' ? pid : undefined;
  }
}

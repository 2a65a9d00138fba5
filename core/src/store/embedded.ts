import { mkdirSync } from 'node:fs';
import { Session } from 'chdb';
import { AgateError, ErrorCode } from '../errors.js';
import type { Store } from './store.js';

/**
 * The ClickHouse engine running inside this process (chdb), data on local disk. chdb allows one
 * open data directory per process, so one `EmbeddedStore` serves every service of `agate start`.
 */
export class EmbeddedStore implements Store {
  readonly #session: Session;

  private constructor(session: Session) {
    this.#session = session;
  }

  static open(path: string): EmbeddedStore {
    mkdirSync(path, { recursive: true });
    try {
      return new EmbeddedStore(new Session(path));
    } catch (cause) {
      const inUse = /lock|another|only one active/i.test(String((cause as Error).message) + String(((cause as Error).cause as Error | undefined)?.message));
      throw new AgateError(ErrorCode.STORE_FAILED, inUse ? `the store at ${path} is in use by another process (is Agate running? use its query API instead)` : `cannot open the embedded store at ${path}`, { cause });
    }
  }

  async exec(sql: string): Promise<void> {
    await this.#run(() => this.#session.queryAsync(sql), sql);
  }

  async query<T extends object>(sql: string, params: Record<string, unknown> = {}): Promise<T[]> {
    const result = await this.#run(() => this.#session.queryBindAsync(sql, params, { format: 'JSONEachRow' }), sql);
    const text = result.text();
    return text.length === 0 ? [] : text.trimEnd().split('\n').map((line) => JSON.parse(line) as T);
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

  async queryRowBinary(sql: string, params: Record<string, unknown> = {}): Promise<Buffer> {
    const result = await this.#run(() => this.#session.queryBindAsync(sql, params, { format: 'RowBinary' }), sql);
    const bytes = result.bytes();
    return Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  }

  async close(): Promise<void> {
    if (this.#session.open) this.#session.close();
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

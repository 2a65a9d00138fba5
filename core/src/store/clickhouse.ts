import { ClickHouseLogLevel, createClient, type ClickHouseClient } from '@clickhouse/client';
import { Readable } from 'node:stream';
import { AgateError, ErrorCode } from '../errors.js';
import type { InsertOptions, Store } from './store.js';

interface ClickHouseStoreOptions {
  url: string;
  username: string;
  password: string;
  /** With an https:// URL: the CA that signs the server and, for mutual TLS, a client certificate. */
  tls?: { ca: Buffer; cert?: Buffer; key?: Buffer };
}

/**
 * A ClickHouse server (or cluster endpoint) through the official client over HTTP. Same SQL as
 * the embedded engine; the full schema needs a server with DateTime64, query parameters and
 * skip indexes (ClickHouse 21.x or newer).
 */
export class ClickHouseStore implements Store {
  readonly #client: ClickHouseClient;
  readonly #where: string;

  constructor(options: ClickHouseStoreOptions) {
    this.#where = options.url;
    const tls = options.tls === undefined ? undefined : options.tls.cert === undefined ? { ca_cert: options.tls.ca } : { ca_cert: options.tls.ca, cert: options.tls.cert, key: options.tls.key! };
    this.#client = createClient({ url: options.url, username: options.username, password: options.password, request_timeout: 60_000, log: { level: ClickHouseLogLevel.OFF }, ...(tls === undefined ? {} : { tls }) });
  }

  async exec(sql: string): Promise<void> {
    await this.#run(() => this.#client.command({ query: sql }), sql);
  }

  async query<T extends object>(sql: string, params: Record<string, unknown> = {}): Promise<T[]> {
    return this.#run(async () => (await this.#client.query({ query: sql, query_params: params, format: 'JSONEachRow' })).json<T>(), sql);
  }

  async insert(table: string, rows: readonly Record<string, unknown>[]): Promise<void> {
    if (rows.length === 0) return;
    await this.#run(() => this.#client.insert({ table, values: rows as Record<string, unknown>[], format: 'JSONEachRow' }), `INSERT INTO ${table}`);
  }

  async insertTsv(table: string, columns: readonly string[], payload: Buffer): Promise<void> {
    if (payload.length === 0) return;
    await this.#run(() => this.#client.insert({ table, values: Readable.from([payload], { objectMode: false }), format: 'TabSeparated', columns: columns as [string, ...string[]] }), `INSERT INTO ${table}`);
  }

  /**
   * The server reads RowBinary against the table's own column types, so `structure` (which the
   * embedded engine needs) is not sent; the payload is the request body, streamed as is.
   */
  async insertRowBinary(table: string, columns: readonly string[], _structure: string, payload: Buffer, options: InsertOptions = {}): Promise<void> {
    if (payload.length === 0) return;
    const query = `INSERT INTO ${table} (${columns.join(', ')}) FORMAT RowBinary`;
    const settings = options.dedupToken === undefined ? {} : { clickhouse_settings: { insert_deduplication_token: options.dedupToken } };
    await this.#run(async () => {
      const { stream } = await this.#client.exec({ query, values: Readable.from([payload], { objectMode: false }), ...settings });
      // An insert answers with an empty body; reading it to the end frees the socket for reuse.
      for await (const _ of stream);
    }, `INSERT INTO ${table} FORMAT RowBinary, ${payload.length} bytes`);
  }

  async queryRowBinary(sql: string, params: Record<string, unknown> = {}): Promise<Buffer> {
    return this.#run(async () => {
      const { stream } = await this.#client.exec({ query: `${sql}\nFORMAT RowBinary`, query_params: params });
      const chunks: Buffer[] = [];
      for await (const chunk of stream) chunks.push(chunk as Buffer);
      return Buffer.concat(chunks);
    }, sql);
  }

  /** Checks the server answers; used at start so a wrong URL fails with a clear message. */
  async ping(): Promise<void> {
    const r = await this.#client.ping();
    if (!r.success) throw new AgateError(ErrorCode.STORE_FAILED, `ClickHouse at ${this.#where} does not answer: ${String((r as { error?: Error }).error?.message ?? 'no reply')}`, { retriable: true });
  }

  async close(): Promise<void> {
    await this.#client.close();
  }

  async #run<T>(op: () => Promise<T>, what: string): Promise<T> {
    try {
      return await op();
    } catch (cause) {
      throw new AgateError(ErrorCode.STORE_FAILED, `ClickHouse at ${this.#where} failed (${what.trim().slice(0, 60)}…): ${(cause as Error).message}`, { cause, retriable: true });
    }
  }
}

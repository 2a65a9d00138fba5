import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { startOidcIssuer, type OidcIssuer } from '../harness/oidc-issuer.js';
import { startPostgres, type PostgresServer } from '../harness/postgres.js';
import { agateConfig, startAgateProcess, type AgateProcess } from './agate-process.js';

/**
 * For tests that kill, roll back or damage Agate and start it again: one real PostgreSQL and OIDC
 * issuer for the whole suite, and `agate start` processes that all share one data_dir (each
 * process's own temp dir holds only its config). Every process started is disposed of at the end.
 */
export class RestartableAgate {
  pg!: PostgresServer;
  issuer!: OidcIssuer;
  /** The suite's own temporary directory; `dataDir` is inside it. */
  work!: string;
  readonly #started: AgateProcess[] = [];

  constructor(private readonly options: { prefix: string; pgaudit?: boolean }) {}

  /** Starts PostgreSQL and the issuer together; a failure of either fails the suite (after both settle, so `tearDown` can stop the other). */
  async setUp(): Promise<void> {
    this.work = mkdtempSync(join(tmpdir(), this.options.prefix));
    const [p, i] = await Promise.allSettled([startPostgres({ pgaudit: this.options.pgaudit }), startOidcIssuer({ audience: 'agate' })]);
    if (p.status === 'fulfilled') this.pg = p.value;
    if (i.status === 'fulfilled') this.issuer = i.value;
    for (const r of [p, i]) if (r.status === 'rejected') throw r.reason;
  }

  async tearDown(): Promise<void> {
    for (const a of this.#started) await a.dispose();
    await this.issuer?.close();
    await this.pg?.stop();
    if (this.work) rmSync(this.work, { recursive: true, force: true });
  }

  /** The data_dir every process started here uses. */
  get dataDir(): string {
    return join(this.work, 'data');
  }

  /** `agate start` on `dir` (`dataDir` by default), with `extraYaml` (top-level keys) appended to the generated config. */
  async start(extraYaml = '', dir = this.dataDir): Promise<AgateProcess> {
    const base = agateConfig({ pg: this.pg, issuer: this.issuer });
    const agate = await startAgateProcess({ configYaml: (p) => base(p).replace(/^data_dir: .*$/m, `data_dir: ${JSON.stringify(dir)}`) + extraYaml });
    this.#started.push(agate);
    return agate;
  }
}

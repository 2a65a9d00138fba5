import { setImmediate as nextTurn } from 'node:timers/promises';
import { initSqlParser, SqlAnalysisCache, type SqlAnalysis } from '../../../core/src/sql/analyze.js';
import { PREPARED_ATTRIBUTE } from '../../../core/src/sql/prepared.js';
import { RowBinaryWriter } from '../../../core/src/store/row-binary.js';
import type { Store } from '../../../core/src/store/store.js';
import { listChains } from '../../ledger/src/verify.js';
import { commandFacts, type CommandFacts } from './command-facts.js';

/** Commands read and indexed per store round trip. */
const PAGE = 5000;
/**
 * Rows built between two turns of the event loop. In `agate start` the index shares the loop with
 * every proxy session; a page built in one go held statements for milliseconds (issue 21).
 */
const ROWS_PER_TURN = 256;

/** A recorded command as the index reads it from the ledger. */
export interface CommandRow {
  chain_id: string;
  seq: string;
  event_id: string;
  protocol: string;
  text: string;
  prepared: string;
  attributes: Record<string, string>;
}

/**
 * Keeps `agate.q_command_facts` (schema.ts) level with the ledger: one row per recorded command,
 * with the statement type, effect classes and tables of a SQL command (command-facts.ts; empty for
 * SSH and Kubernetes) and the command's attributes (what a Kubernetes or SFTP request addresses).
 * The engine cannot parse PostgreSQL, so the rows are computed here, in (chain, seq) order after
 * the last indexed position of each chain: a primary-key range read.
 * The query service catches up before every analyst query, so a query sees every command
 * recorded before it, and in the background (`follow`), so that query finds little left to do
 * (measured here: about 65 µs per command to index, 20 ms for a catch-up with nothing new). Catch-ups in one process run one at a time; two processes indexing the
 * same commands write equal rows, which the ReplacingMergeTree (read with FINAL) keeps once.
 */
export class FactsIndex {
  readonly #cache = new SqlAnalysisCache();
  /** Facts per shape analysis: a statement recorded 10,000 times with new numbers is analysed once. */
  readonly #facts = new WeakMap<SqlAnalysis, CommandFacts>();
  #running: Promise<number> | undefined;

  readonly #store: Store;

  constructor(store: Store) {
    this.#store = store;
  }

  /** Indexes every command not yet indexed; resolves to how many it indexed. */
  catchUp(): Promise<number> {
    // A caller arriving during a run waits for it and then runs again, so it sees its own commands.
    const next: Promise<number> = (this.#running ?? Promise.resolve(0)).catch(() => 0).then(() => this.#catchUp());
    this.#running = next;
    return next.finally(() => {
      if (this.#running === next) this.#running = undefined;
    });
  }

  /**
   * Catches up now and then every `intervalMs` until the returned function is called, which
   * waits for a run in progress (the store may be closed next).
   */
  follow(intervalMs: number, onError: (err: unknown) => void): () => Promise<void> {
    let timer: NodeJS.Timeout | undefined;
    let stopped = false;
    const tick = (): void => {
      void this.catchUp().catch(onError).finally(() => {
        if (stopped) return;
        timer = setTimeout(tick, intervalMs);
        timer.unref();
      });
    };
    tick();
    return async () => {
      stopped = true;
      clearTimeout(timer);
      await this.#running?.catch(() => undefined);
    };
  }

  async #catchUp(): Promise<number> {
    await initSqlParser();
    const done = new Map((await this.#store.query<{ chain_id: string; seq: string }>('SELECT chain_id, max(seq) AS seq FROM agate.q_command_facts GROUP BY chain_id')).map((r) => [r.chain_id, Number(r.seq)]));
    let indexed = 0;
    for (const chain of await listChains(this.#store)) {
      let after = done.get(chain) ?? 0;
      for (;;) {
        const rows = await this.#store.query<CommandRow>(
          `SELECT ${COMMAND_COLUMNS} FROM agate.ledger WHERE chain_id = {chain:String} AND seq > {after:UInt64} AND event_type = 'Command'
           ORDER BY seq LIMIT ${PAGE}`,
          { chain, after },
        );
        if (rows.length === 0) break;
        await this.#store.insertRowBinary('agate.q_command_facts', FACT_COLUMNS, FACT_STRUCTURE, await this.#rows(rows));
        indexed += rows.length;
        after = Number(rows[rows.length - 1]!.seq);
        if (rows.length < PAGE) break;
      }
    }
    return indexed;
  }

  /** The rows of q_command_facts for `commands`, as RowBinary in FACT_COLUMNS order (a JSONEachRow insert cost the engine twice as much). */
  async #rows(commands: readonly CommandRow[]): Promise<Buffer> {
    const out = new RowBinaryWriter(commands.length * 256);
    for (let i = 0; i < commands.length; i++) {
      if (i > 0 && i % ROWS_PER_TURN === 0) await nextTurn();
      const r = commands[i]!;
      const f = factsOf(this.#cache, r, this.#facts);
      out.string(r.event_id).string(r.chain_id).uint64(Number(r.seq)).string(f.statement)
        .strings(f.kinds).strings(f.effects).strings(f.table_names).strings(f.table_schemas).strings(f.table_access)
        .uint8(f.unbounded_write ? 1 : 0).string(f.analysis_error);
      const attributes = Object.entries(r.attributes);
      out.count(attributes.length);
      for (const [k, v] of attributes) out.string(k).string(v);
    }
    return out.finish();
  }
}

/** The columns of agate.q_command_facts (schema.ts) the index writes, in the order #rows writes them, and their types as written. */
const FACT_COLUMNS = ['command_id', 'chain_id', 'seq', 'statement', 'kinds', 'effects', 'table_names', 'table_schemas', 'table_access', 'unbounded_write', 'analysis_error', 'attributes'] as const;
const FACT_STRUCTURE = 'command_id String, chain_id String, seq UInt64, statement String, kinds Array(String), effects Array(String), '
  + 'table_names Array(String), table_schemas Array(String), table_access Array(String), unbounded_write Bool, analysis_error String, attributes Map(String, String)';

/** The ledger columns of a Command that its facts depend on. */
export const COMMAND_COLUMNS = `chain_id, seq, event_id, JSONExtractString(body, 'protocol') AS protocol, text,
  JSONExtractString(body, 'attributes', '${PREPARED_ATTRIBUTE}') AS prepared, JSONExtract(body, 'attributes', 'Map(String, String)') AS attributes`;

const NO_SQL: CommandFacts = { statement: '', kinds: [], effects: [], table_names: [], table_schemas: [], table_access: [], unbounded_write: false, analysis_error: '' };

/** A command's row of q_command_facts: SQL facts for PostgreSQL, none for SSH and Kubernetes. */
export function factsOf(cache: SqlAnalysisCache, r: CommandRow, memo?: WeakMap<SqlAnalysis, CommandFacts>): CommandFacts {
  return r.protocol === 'postgres' ? commandFacts(cache, r.text, r.prepared, memo) : NO_SQL;
}

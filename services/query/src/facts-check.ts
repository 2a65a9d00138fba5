import { initSqlParser, SqlAnalysisCache } from '../../../core/src/sql/analyze.js';
import type { Store } from '../../../core/src/store/store.js';
import type { CommandFacts } from './command-facts.js';
import { COMMAND_COLUMNS, factsOf, type CommandRow } from './facts-index.js';

/*
 * q_command_facts is derived from the ledger outside the hash chain, like the session tables: a
 * deleted row would hide a DROP from "every destructive statement", an edited one would move a
 * write to another table. This check works the facts out again from the verified commands and
 * compares them row by row. Commands after a chain's last indexed one are not indexed yet (the
 * query service indexes them before the next analyst query) and are not a difference.
 */

export interface CommandFactsReport {
  ok: boolean;
  /** Commands compared. */
  commands: number;
  /** The first difference, described for a person; null when they match. */
  problem: string | null;
}

/** Commands compared per read: a bounded range of positions, read from both tables by key. */
const WINDOW = 20_000;

type StoredFacts = Omit<CommandFacts, 'unbounded_write'> & { command_id: string; seq: string; unbounded_write: boolean | number; attributes: Record<string, string> };

export async function checkCommandFacts(store: Store): Promise<CommandFactsReport | null> {
  const [exists] = await store.query<{ n: string }>("SELECT count() AS n FROM system.tables WHERE database = 'agate' AND name = 'q_command_facts'");
  if (Number(exists?.n ?? 0) === 0) return null; // a store the query service never ran on has none
  await initSqlParser();
  const cache = new SqlAnalysisCache();
  const report = (commands: number, problem: string | null): CommandFactsReport => ({ ok: problem === null, commands, problem });
  const [twice] = await store.query<{ command_id: string }>('SELECT command_id FROM agate.q_command_facts FINAL GROUP BY command_id HAVING count() > 1 LIMIT 1');
  if (twice !== undefined) return report(0, `agate.q_command_facts holds command ${twice.command_id} more than once (a row inserted or changed)`);
  const indexed = await store.query<{ chain_id: string; seq: string }>('SELECT chain_id, max(seq) AS seq FROM agate.q_command_facts GROUP BY chain_id ORDER BY chain_id');
  let compared = 0;
  for (const { chain_id: chain, seq } of indexed) {
    const last = Number(seq);
    for (let from = 0; from < last; from += WINDOW) {
      const range = { chain, from, to: Math.min(from + WINDOW, last) };
      const commands = await store.query<CommandRow>(
        `SELECT ${COMMAND_COLUMNS} FROM agate.ledger WHERE chain_id = {chain:String} AND seq > {from:UInt64} AND seq <= {to:UInt64} AND event_type = 'Command' ORDER BY seq`, range);
      const stored = new Map((await store.query<StoredFacts>(
        `SELECT command_id, seq, statement, kinds, effects, table_names, table_schemas, table_access, unbounded_write, analysis_error, attributes
         FROM agate.q_command_facts FINAL WHERE chain_id = {chain:String} AND seq > {from:UInt64} AND seq <= {to:UInt64}`, range)).map((r) => [r.command_id, r]));
      for (const c of commands) {
        const row = stored.get(c.event_id);
        const where = `command ${c.event_id} (chain ${chain}, record ${c.seq})`;
        if (row === undefined) return report(compared, `${where} is in the ledger but not in agate.q_command_facts (its row was deleted)`);
        if (Number(row.seq) !== Number(c.seq) || !sameFacts(row, factsOf(cache, c)) || !sameMap(row.attributes, c.attributes)) return report(compared, `the facts of ${where} in agate.q_command_facts differ from its recorded text (a row changed)`);
        compared += 1;
      }
    }
  }
  return report(compared, null);
}

function sameMap(a: Record<string, string>, b: Record<string, string>): boolean {
  const sorted = (m: Record<string, string>) => JSON.stringify(Object.entries(m).sort(([x], [y]) => (x < y ? -1 : x > y ? 1 : 0)));
  return sorted(a) === sorted(b);
}

function sameFacts(stored: StoredFacts, expected: CommandFacts): boolean {
  const norm = (f: Omit<CommandFacts, 'unbounded_write'> & { unbounded_write: boolean | number }) =>
    JSON.stringify([f.statement, f.kinds, f.effects, f.table_names, f.table_schemas, f.table_access, Boolean(f.unbounded_write), f.analysis_error]);
  return norm(stored) === norm(expected);
}

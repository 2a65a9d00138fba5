import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { EmbeddedStore } from '../core/src/store/embedded.js';
import { migrateQuery } from '../services/query/src/schema.js';
import { sandboxedAnalystSql, unconfinedAnalystSql, type AnalystSql } from '../services/query/src/sql-endpoint.js';
import { AnalystSandbox } from '../services/query/src/sql/sandbox.js';
import { sessionEvents, testLedger } from '../services/query/src/test-ledger.js';

/*
 * What the analyst SQL sandbox costs per request: the same query through every layer, in
 * Agate's process (`query.sql.sandbox: off`) and in a sandbox per request (the default), with a
 * pause between requests as an analyst's would leave (the next worker starts in it).
 *   npm run bench -- analyst-sql [--sessions N] [--requests N] [--pause-ms N]
 */
const QUERY = "SELECT subject, count() AS n, countIf(decision = 'deny') AS denied FROM agate.decisions GROUP BY subject ORDER BY subject";

export async function run(args: string[]): Promise<void> {
  const { values } = parseArgs({ args, options: { sessions: { type: 'string', default: '200' }, requests: { type: 'string', default: '15' }, 'pause-ms': { type: 'string', default: '1500' } } });
  const dir = mkdtempSync(join(tmpdir(), 'agate-bench-sql-'));
  const store = EmbeddedStore.open(join(dir, 'store'));
  const sandbox = AnalystSandbox.create(join(dir, 'store'), store);
  try {
    const ledger = await testLedger(store);
    for (let i = 0; i < Number(values.sessions); i++) await ledger.append(sessionEvents(`user${i % 20}`, 50));
    await migrateQuery(store);
    const limits = { max_execution_time_s: 30, max_result_rows: 100_000, max_memory_bytes: 1 << 30, sandbox: 'namespaces' as const };
    const ways: [string, AnalystSql][] = [['in-process', unconfinedAnalystSql(store, limits)], ['sandboxed', sandboxedAnalystSql(sandbox, limits)]];
    for (const [name, analystSql] of ways) {
      const ms: number[] = [];
      for (let i = 0; i < Number(values.requests); i++) {
        await new Promise((resolve) => setTimeout(resolve, Number(values['pause-ms'])));
        const start = performance.now();
        await analystSql(QUERY);
        // The first sandboxed request starts its worker cold; the rest find one waiting.
        if (i > 0) ms.push(performance.now() - start);
      }
      ms.sort((a, b) => a - b);
      const at = (q: number) => ms[Math.min(ms.length - 1, Math.floor(q * ms.length))]!.toFixed(0);
      console.log(`${name.padEnd(11)} median ${at(0.5)} ms  p90 ${at(0.9)} ms  min ${at(0)} ms  (${ms.length} requests)`);
    }
  } finally {
    sandbox.close();
    await store.close();
    rmSync(dir, { recursive: true, force: true });
  }
}

/**
 * The ClickHouse HTTP test double (test/harness/clickhouse-http-double.ts) in a process of its
 * own, for `npm run bench -- pipeline`: the ledger processes share it as they would share a
 * ClickHouse server, and its work (the engine's inserts) is counted apart from the benchmark's.
 * Prints `listening <port>` when it serves; SIGTERM closes it and removes its files.
 */
import { startClickHouseHttpDouble } from '../test/harness/clickhouse-http-double.js';

const double = await startClickHouseHttpDouble();
process.once('SIGTERM', () => void double.close().then(() => process.exit(0)));
console.log(`listening ${new URL(double.url).port}`);

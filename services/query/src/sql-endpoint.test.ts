import { suite } from '../../../test/harness/suite.js';
import * as assert from 'uvu/assert';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { AgateError } from '../../../core/src/errors.js';
import { EmbeddedStore } from '../../../core/src/store/embedded.js';
import { sqlEscapeCorpus } from '../../../test/harness/sql-escape-corpus.js';
import { listedFunctions, PARSER_FUNCTIONS } from './sql/allowed-functions.js';
import { migrateQuery } from './schema.js';
import { runAnalystSql, runBounded } from './sql-endpoint.js';
import { sessionEvents, testLedger } from './test-ledger.js';

/*
 * Analyst SQL against the real embedded engine: what analysts write runs; the adversarial corpus
 * is refused by the allow-list on the engine's parse tree; and, with the allow-list bypassed, the
 * engine layer on its own still refuses every table function that reaches outside the store.
 */
const dir = mkdtempSync(join(tmpdir(), 'agate-sql-'));
const CANARY = `agate-canary-${process.pid}-7f3a`;
const secretFile = join(dir, 'secret.txt');
writeFileSync(secretFile, CANARY, { mode: 0o600 });
const store = EmbeddedStore.open(join(dir, 'store'));
const limits = { max_execution_time_s: 5, max_result_rows: 10_000, max_memory_bytes: 512 * 1024 * 1024, sandbox: 'off' as const };

async function refusal(sql: string, run: (s: string) => Promise<unknown> = (s) => runAnalystSql(store, s, limits)): Promise<AgateError> {
  try {
    const r = await run(sql);
    throw new Error(`not refused: ${sql} → ${JSON.stringify(r).slice(0, 200)}`);
  } catch (err) {
    if (!(err instanceof AgateError)) throw err;
    assert.not.ok(JSON.stringify({ m: err.message, c: String((err.cause as Error | undefined)?.message ?? '') }).includes(CANARY), `secret in the refusal of ${sql}`);
    return err;
  }
}

const allowed = suite('analyst SQL: what analysts write runs');
allowed.before(async () => {
  const ledger = await testLedger(store);
  await ledger.append(sessionEvents('alice', 4));
  await migrateQuery(store);
});

allowed('selects, joins, CTEs, window functions, combinators, arrays, JSON, dates', async () => {
  const queries = [
    'SELECT subject, count() AS n FROM agate.commands GROUP BY subject ORDER BY n DESC',
    'select subject, COUNT(*), Sum(seq) from agate.commands group by subject',
    `WITH recent AS (SELECT * FROM agate.commands WHERE time > now() - INTERVAL 3650 DAY)
       SELECT r.subject, countIf(v.decision = 'deny') AS denied, uniqExactIf(r.command_id, v.decision = 'allow') AS allowed
       FROM recent AS r LEFT JOIN agate.verdicts AS v ON v.command_id = r.command_id GROUP BY r.subject`,
    'SELECT command_id, row_number() OVER (PARTITION BY session_id ORDER BY seq) AS n, lagInFrame(text) OVER w FROM agate.commands WINDOW w AS (ORDER BY seq)',
    "SELECT session_id, claims['repository'] AS repo, mapKeys(claims) FROM agate.session_index WHERE subject IN ('alice', 'bob')",
    'SELECT * FROM agate.sessions WHERE session_id IN (SELECT session_id FROM agate.commands WHERE positionCaseInsensitive(text, \'items\') > 0)',
    "SELECT toStartOfHour(time) AS h, groupArray(text), arrayMap(x -> lower(x), groupArray(text)), quantile(0.9)(seq) FROM agate.commands GROUP BY h",
    "SELECT JSONExtractString('{\"a\":\"b\"}', 'a'), toDateTimeOrNull('2026-01-01 00:00:00'), formatDateTime(now(), '%F'), splitByChar(',', 'a,b')",
    'SELECT number FROM numbers(3)',
    'SELECT * EXCEPT (text) FROM agate.commands LIMIT 1 UNION ALL SELECT * EXCEPT (text) FROM agate.commands LIMIT 1',
    'SELECT count() FROM agate.approvals; ',
    'SELECT count() FROM agate.checkpoints -- a trailing comment',
  ];
  for (const q of queries) {
    try {
      await runAnalystSql(store, q, limits);
    } catch (err) {
      throw new Error(`${q}: ${(err as Error).message}`);
    }
  }
  const { rows } = await runAnalystSql(store, "SELECT subject, count() AS n FROM agate.commands GROUP BY subject", limits);
  assert.equal(rows.map((r) => [r.subject, Number(r.n)]), [['alice', 4]]);
});

allowed('every listed function exists in the engine (a misspelt name would be a silent gap)', async () => {
  const { functions, tableFunctions } = listedFunctions();
  const known = new Set((await store.query<{ name: string }>('SELECT lower(name) AS name FROM system.functions')).map((r) => r.name));
  const knownTable = new Set((await store.query<{ name: string }>('SELECT name FROM system.table_functions')).map((r) => r.name));
  assert.equal(functions.filter((f) => !known.has(f.toLowerCase()) && !PARSER_FUNCTIONS.includes(f)), []);
  assert.equal(tableFunctions.filter((f) => !knownTable.has(f)), []);
});
allowed.run();

const corpus = suite('analyst SQL: the adversarial corpus is refused by the allow-list');
corpus('every family is refused with SQL_REFUSED naming what it used, and nothing secret comes back', async () => {
  for (const { family, sql, names } of sqlEscapeCorpus(secretFile)) {
    const err = await refusal(sql);
    assert.is(err.code, 'SQL_REFUSED', `${family}: ${sql} → ${err.code} ${err.message}`);
    assert.ok(err.message.includes(names), `${family}: "${err.message}" should name ${names}`);
  }
});

corpus('multiple statements, non-SELECT statements and forged tree lines are refused', async () => {
  assert.is((await refusal('SELECT 1; SELECT 2')).code, 'SQL_INVALID');
  for (const sql of ['SHOW TABLES', 'DESCRIBE TABLE agate.ledger', 'EXPLAIN SELECT 1', 'INSERT INTO agate.ledger (event_id) VALUES (\'x\')', 'DROP TABLE agate.ledger', 'KILL QUERY WHERE 1', 'SET readonly = 0', 'USE system', 'SYSTEM FLUSH LOGS', 'OPTIMIZE TABLE agate.ledger']) {
    const err = await refusal(sql);
    assert.ok(['SQL_REFUSED', 'SQL_INVALID'].includes(err.code), `${sql}: ${err.code}`);
  }
  // An identifier holding a newline would print a line that looks like a node of the tree.
  const forged = await refusal("SELECT `a\n  Function numbers` FROM agate.commands");
  assert.is(forged.code, 'SQL_REFUSED');
  assert.match(forged.message, /quoted identifier/);
});

corpus('an unqualified name that is not a CTE reaches nothing: the current database holds no table', async () => {
  // Unqualified table names pass the check only when the text declares `name AS (…)`; a WINDOW
  // clause declares names the same way. They resolve in the current database, which must stay empty.
  const { db, n } = (await store.query<{ db: string; n: string }>('SELECT currentDatabase() AS db, toString(count()) AS n FROM system.tables WHERE database = currentDatabase()'))[0]!;
  assert.is(db, 'default');
  assert.is(n, '0');
  // Before, a window named like a table passed as a CTE, and only the empty current database
  // stopped it; on a server whose user defaults to `agate` it read the raw ledger table.
  for (const sql of ['SELECT * FROM ledger WINDOW ledger AS (ORDER BY 1)', 'SELECT * FROM ledger WINDOW w AS (), `ledger` AS (ORDER BY 1)', 'WITH c AS (SELECT 1) SELECT * FROM c, ledger WINDOW x AS (PARTITION BY (1)), ledger AS ()']) {
    const err = await refusal(sql);
    assert.is(err.code, 'SQL_REFUSED', `${sql}: ${err.code} ${err.message}`);
    assert.match(err.message, /the table ledger, named like a window/);
  }
  const windowed = await runAnalystSql(store, 'WITH c AS (SELECT 1 AS x) SELECT count() OVER w FROM c WINDOW w AS (ORDER BY x)', limits);
  assert.is(windowed.rows.length, 1);
});
corpus('an aggregate named in a string (arrayReduce, an AggregateFunction type) must be on the list too', async () => {
  // Before, each ran aggThrow, which is on no list: the engine builds the aggregate from the string.
  for (const sql of [
    "SELECT arrayReduce('aggThrow', [1])",
    "SELECT arrayReduce('aggThrow(1.0)', [1])",
    "SELECT arrayReduce(concat('agg', 'Throw'), [1])",
    "SELECT toTypeName(CAST(unhex('00') AS AggregateFunction(aggThrow(1.0), UInt8)))",
    "SELECT toTypeName(CAST(unhex('00'), concat('AggregateFunction(aggThrow', '(1.0), UInt8)')))",
    "SELECT toTypeName(unhex('00')::AggregateFunction(aggThrow(1.0), UInt8))",
    "SELECT toTypeName(accurateCastOrNull(unhex('00'), 'Nullable(AggregateFunction(aggThrow(1.0), UInt8))'))",
  ]) {
    const err = await refusal(sql);
    assert.is(err.code, 'SQL_REFUSED', `${sql}: ${err.code} ${err.message}`);
    assert.not.match(err.message, 'thrown exception', sql);
  }
  // What analysts write with them still runs.
  for (const [sql, value] of [["SELECT arrayReduce('sumIf', [1, 2], [1, 0]) AS v", 1], ["SELECT arrayReduce('quantile(0.5)', [1, 2]) AS v", 1.5], ["SELECT CAST(2 AS UInt8) AS v", 2], ["SELECT CAST('3', 'Nullable(Int32)') AS v", 3], ["SELECT toString(CAST('b' AS Enum8('a' = 1, 'b' = 2))) AS v", 'b']] as const) {
    const { rows } = await runAnalystSql(store, sql, limits);
    assert.is(typeof value === 'number' ? Number(rows[0]?.v) : rows[0]?.v, value, sql);
  }
});
corpus('a type named in the structure of values() or the type of JSONExtract is checked like a cast', async () => {
  // Before, the first three passed the allow-list: the engine built aggThrow from the string and
  // failed only on converting the value (TYPE_MISMATCH), the JSONExtract ones on the return type.
  for (const sql of [
    "SELECT * FROM values('x AggregateFunction(aggThrow(1.0), UInt8)', 1)",
    "SELECT * FROM VALUES('x Array(AggregateFunction(aggThrow(1.0), UInt8))', [1])",
    "SELECT * FROM values('x UInt8, y Tuple(a AggregateFunction(aggThrow(1.0), UInt8))', (1, (1)))",
    "SELECT JSONExtract('{\"a\":1}', 'a', 'AggregateFunction(aggThrow(1.0), UInt8)')",
    "SELECT JSONExtractKeysAndValues('{\"a\":1}', 'AggregateFunction(aggThrow(1.0), UInt8)')",
  ]) {
    const err = await refusal(sql);
    assert.is(err.code, 'SQL_REFUSED', `${sql}: ${err.code} ${err.message}`);
  }
  for (const [sql, value] of [["SELECT x AS v FROM values('x UInt8', 7)", 7], ["SELECT c2 AS v FROM values((1, 'a'), (2, 'b')) WHERE c1 = 2", 'b'], ["SELECT JSONExtract('{\"a\":5}', 'a', 'Nullable(Int32)') AS v", 5]] as const) {
    const { rows } = await runAnalystSql(store, sql, limits);
    assert.is(typeof value === 'number' ? Number(rows[0]?.v) : rows[0]?.v, value, sql);
  }
});
corpus('an engine error names what the analyst wrote, not the inside of a view nor the appended limits', async () => {
  // Before: the first printed the decisions view's own expression (`if(toBool(and(empty(__table3.final), …`,
  // the second echoed the statement with the SETTINGS Agate appends.
  for (const sql of ['SELECT * FROM agate.decisions WHERE toUInt64(decision) = 1', 'SELECT nosuch FROM agate.commands', 'SELECT * FROM agate.commands AS c WHERE c.nosuch = 1']) {
    const err = await refusal(sql);
    assert.is(err.code, 'SQL_INVALID', sql);
    assert.not.match(err.message, /__table|SETTINGS|max_execution_time|in scope|while executing/i, err.message);
    assert.match(err.message, /\((CANNOT_PARSE_TEXT|UNKNOWN_IDENTIFIER)\)$/, err.message);
  }
});
corpus.run();

const engine = suite('analyst SQL: the engine layer alone (allow-list bypassed)');
const bounded = (s: string) => runBounded(store, s, limits);

engine('table functions reaching files, URLs, processes, remote servers and stdin are refused by readonly=1', async () => {
  const sources = [
    `SELECT * FROM file('${secretFile}', 'LineAsString')`,
    "SELECT * FROM url('http://127.0.0.1:9/', 'LineAsString')",
    "SELECT * FROM s3('http://127.0.0.1:9/b/k', 'LineAsString')",
    "SELECT * FROM hdfs('hdfs://127.0.0.1:9/k', 'LineAsString')",
    "SELECT * FROM azureBlobStorage('http://127.0.0.1:9/', 'c', 'k', 'LineAsString')",
    "SELECT * FROM mysql('127.0.0.1:9', 'd', 't', 'u', 'p')",
    "SELECT * FROM postgresql('127.0.0.1:9', 'd', 't', 'u', 'p')",
    "SELECT * FROM remote('127.0.0.1:9', system.one)",
    "SELECT * FROM cluster('default', system.one)",
    "SELECT * FROM executable('cat /etc/hostname', 'LineAsString', 'x String')",
    "SELECT * FROM input('x String')",
    "SELECT * FROM dictionary('d')",
    `SELECT * FROM filesystem('${dir}')`,
    "SELECT * FROM sqlite('/etc/hostname', 't')",
    `SELECT * FROM fileCluster('default', '${secretFile}', 'LineAsString')`,
  ];
  for (const sql of sources) {
    const err = await refusal(sql, bounded);
    assert.ok(['SQL_READ_ONLY', 'SQL_INVALID'].includes(err.code), `${sql}: ${err.code} ${err.message}`);
  }
  assert.is((await refusal(`SELECT * FROM file('${secretFile}', 'LineAsString')`, bounded)).code, 'SQL_READ_ONLY');
});

engine('writes and DDL are refused; no dictionary or introspection function is reachable', async () => {
  for (const sql of ['INSERT INTO agate.ledger SELECT * FROM agate.ledger', 'ALTER TABLE agate.ledger DELETE WHERE 1', 'DROP TABLE agate.ledger', 'CREATE TABLE agate.x (a UInt8) ENGINE = Memory']) {
    assert.is((await refusal(sql, bounded)).code, 'SQL_READ_ONLY', sql);
  }
  // A dictionary is only reachable if one exists; none is created and analysts cannot create one.
  assert.is((await refusal("SELECT dictGet('agate.d', 'v', toUInt64(1))", bounded)).code, 'SQL_INVALID');
  assert.is((await refusal('SELECT addressToSymbol(1)', bounded)).code, 'SQL_INVALID');
});

engine('a relative file() name resolves inside the empty user_files directory', async () => {
  const err = await refusal("SELECT file('secret.txt')", bounded);
  assert.match(err.message, /user_files-empty\/secret\.txt|FILE_DOESNT_EXIST|No such file/);
});

engine('in-process (query.sql.sandbox: off) the embedded engine does not confine an absolute scalar file(): the sandbox does', async () => {
  // clickhouse-local (and so chdb) skips file()'s user_files_path check; users, grants and
  // impersonation cannot be configured in it. In Agate's process only the allow-list refuses it;
  // by default analyst SQL runs in a sandbox where the file is absent (sql/sandbox.test.ts). If
  // this starts failing, the engine closed the gap itself: update SECURITY.md.
  const { rows } = await bounded(`SELECT file('${secretFile}') AS f`);
  assert.is(rows[0]?.f, CANARY);
  assert.is((await refusal(`SELECT file('${secretFile}') AS f`)).code, 'SQL_REFUSED');
});

engine.after(async () => {
  await store.close();
  rmSync(dir, { recursive: true, force: true });
});
engine.run();

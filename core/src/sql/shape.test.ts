import { suite } from '../../../test/harness/suite.js';
import * as assert from 'uvu/assert';
import { initSqlParser, SqlAnalysisCache } from './analyze.js';
import { sqlShape } from './shape.js';

const shape = suite('sqlShape');

shape('replaces standalone integers only', () => {
  assert.is(sqlShape('SELECT abalance FROM pgbench_accounts WHERE aid = 14940;'), 'SELECT abalance FROM pgbench_accounts WHERE aid = 0;');
  assert.is(sqlShape('SELECT * FROM t1 WHERE x > 2.5 LIMIT 10 OFFSET 20'), 'SELECT * FROM t1 WHERE x > 0.0 LIMIT 0 OFFSET 0');
  // Names, exponents and radix prefixes keep their digits.
  assert.is(sqlShape('SELECT c2 FROM t_3 WHERE b = 1e5 AND c = 0x1F'), 'SELECT c2 FROM t_3 WHERE b = 1e5 AND c = 0x1F');
});

shape('gives no shape where a digit could belong to something else', () => {
  for (const text of ["SELECT 1 FROM t WHERE s = '1'", 'SELECT "1" FROM t', 'SELECT $$1$$', 'SELECT a FROM t WHERE id = $1', 'SELECT 1 -- 2', 'SELECT /* 1 */ 1', "SELECT E'\\1'", 'SELECT 1 FROM té1', 'SELECT `1`']) {
    assert.is(sqlShape(text), undefined, text);
  }
});

shape.run();

const cache = suite('SqlAnalysisCache.analyzeShape');
cache.before(() => initSqlParser());

cache('texts differing in numbers share one analysis; others do not', () => {
  const c = new SqlAnalysisCache();
  const a = c.analyzeShape('SELECT abalance FROM pgbench_accounts WHERE aid = 14940');
  const b = c.analyzeShape('SELECT abalance FROM pgbench_accounts WHERE aid = 57569');
  assert.ok(a.ok && b.ok);
  assert.is(a, b);
  assert.is(c.size, 1);
  const other = c.analyzeShape('SELECT abalance FROM pgbench_tellers WHERE tid = 3');
  assert.is.not(other, a);
  assert.ok(other.ok && other.statements[0]!.kind === 'SelectStmt');
});

cache('a statement kind is never hidden by sharing a shape', () => {
  const c = new SqlAnalysisCache();
  const sel = c.analyzeShape('SELECT 1 FROM t WHERE id = 1');
  const del = c.analyzeShape('DELETE FROM t WHERE id = 1');
  assert.ok(sel.ok && del.ok);
  assert.is(sel.statements[0]!.kind, 'SelectStmt');
  assert.is(del.statements[0]!.kind, 'DeleteStmt');
});

cache('a syntax error is reported for the text sent, not its shape', () => {
  const c = new SqlAnalysisCache();
  const bad = c.analyzeShape('SELECT 5 7 FROM t');
  assert.ok(!bad.ok && bad.error.includes('"7"'), !bad.ok ? bad.error : 'parsed');
  const again = c.analyzeShape('SELECT 5 8 FROM t');
  assert.ok(!again.ok && again.error.includes('"8"'), !again.ok ? again.error : 'parsed');
});

cache.run();

import { suite } from '../../../test/harness/suite.js';
import * as assert from 'uvu/assert';
import { initSqlParser, SqlAnalysisCache } from '../../../core/src/sql/analyze.js';
import { commandFacts, type CommandFacts } from './command-facts.js';

/* What the analyst views say a recorded SQL command is and touches. */
const facts = suite('commandFacts');
facts.before(() => initSqlParser());
const cache = new SqlAnalysisCache();
const of = (text: string, prepared?: string): CommandFacts => commandFacts(cache, text, prepared);
const tables = (f: CommandFacts) => f.table_names.map((n, i) => `${f.table_access[i]} ${f.table_schemas[i] === '' ? '' : f.table_schemas[i] + '.'}${n}`).sort();

facts('statement type, effect classes and tables read and written', () => {
  const f = of('/* cleanup */ INSERT INTO audit.log SELECT * FROM items WHERE id > 3');
  assert.is(f.statement, 'InsertStmt');
  assert.equal(f.kinds, ['InsertStmt', 'SelectStmt']);
  assert.equal(f.effects, ['read', 'write']);
  assert.equal(tables(f), ['read items', 'write audit.log']);
  assert.is(f.analysis_error, '');
});

facts('a DELETE hidden in a CTE is a destroy of its table; the CTE name is no table', () => {
  const f = of('WITH d AS (DELETE FROM accounts RETURNING id) SELECT * FROM d');
  assert.is(f.statement, 'SelectStmt');
  assert.ok(f.kinds.includes('DeleteStmt'));
  assert.ok(f.effects.includes('destroy'));
  assert.is(f.unbounded_write, true);
  assert.equal(tables(f), ['read accounts', 'write accounts']);
});

facts('EXECUTE is what the PREPARE it runs does', () => {
  const f = of('EXECUTE purge(1)', 'PREPARE purge(int) AS DELETE FROM items WHERE id = $1');
  assert.is(f.statement, 'ExecuteStmt');
  assert.ok(f.kinds.includes('DeleteStmt'));
  assert.equal(tables(f), ['read items', 'write items']);
});

facts('what cannot be parsed says why, like the policy', () => {
  const f = of('SELEKT 1');
  assert.match(f.analysis_error, /cannot be parsed/);
  assert.equal([f.statement, f.kinds, f.effects, f.table_names], ['', [], [], []]);
  assert.match(of('EXECUTE p', 'not sql').analysis_error, /prepared statement/);
});

facts('remembered per shape: texts differing in numbers get the facts of their own analysis', () => {
  const memo = new WeakMap();
  const first = commandFacts(cache, 'DELETE FROM items WHERE id = 1', undefined, memo);
  const again = commandFacts(cache, 'DELETE FROM items WHERE id = 2', undefined, memo);
  assert.is(again, first);
  assert.equal(first, of('DELETE FROM items WHERE id = 3'));
  // A different structure is not taken for it.
  const other = commandFacts(cache, 'DELETE FROM items', undefined, memo);
  assert.is(other.unbounded_write, true);
  assert.is(first.unbounded_write, false);
  // With a prepared body the facts are worked out each time (the body is not in the shape).
  assert.ok(commandFacts(cache, 'EXECUTE p(1)', 'PREPARE p AS DELETE FROM accounts', memo).effects.includes('destroy'));
  assert.not.ok(commandFacts(cache, 'EXECUTE p(1)', 'PREPARE p AS SELECT 1', memo).effects.includes('destroy'));
});

facts.run();

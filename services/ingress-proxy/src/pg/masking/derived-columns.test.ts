import { test } from '../../../../../test/harness/suite.js';
import * as assert from 'uvu/assert';
import { BUILTIN_MASK_SET } from '../../../../../core/src/config.js';
import { initSqlParser } from '../../../../../core/src/sql/analyze.js';
import { carriesMaskedColumn, copiesMaskedColumn } from './derived-columns.js';
import { Masker } from '../../masking/masker.js';

const masker = new Masker('default', BUILTIN_MASK_SET);

test.before(() => initSqlParser());

test('a masked column under another name, in an expression, a subquery or a whole row carries it', () => {
  for (const sql of [
    'SELECT api_token AS t FROM vault',
    "SELECT api_token || '' FROM vault",
    'SELECT api_token::int FROM vault',
    "SELECT string_agg(api_token, ',') FROM vault",
    'SELECT v FROM vault v',
    'SELECT vault FROM vault',
    'SELECT row_to_json(v) FROM vault v',
    'SELECT ROW(v.*) FROM vault v',
    'SELECT api_token(v) FROM vault v',
    'SELECT (v).api_token AS x FROM vault v',
    'SELECT x.t FROM (SELECT api_token AS t FROM vault) x',
    'SELECT t FROM (SELECT api_token FROM vault) x(t)',
    'WITH w(t) AS (SELECT api_token FROM vault) SELECT t FROM w',
    "SELECT 'a' AS id UNION ALL SELECT api_token FROM vault",
    'SELECT id FROM vault WHERE api_token LIKE $1',
    'UPDATE vault SET id = id RETURNING api_token AS t',
    'SELECT 1; SELECT password AS p FROM users',
    'SELECT oops FROM',
    'FETCH 10 FROM c',
    'SELECT * FROM vault v(a, b)',
    'WITH w(a, b) AS (SELECT * FROM vault) SELECT * FROM w',
    "SELECT 1, 'x' UNION ALL SELECT * FROM vault",
    'SELECT * FROM (SELECT * FROM vault) x',
    'EXECUTE p;\nPREPARE p AS SELECT api_token AS t FROM vault',
  ]) assert.ok(carriesMaskedColumn(sql, masker), sql);
});

test('a masked column returned as itself, or no masked column, does not', () => {
  for (const sql of [
    'SELECT api_token FROM vault',
    'SELECT v.api_token, id FROM vault v',
    'SELECT api_token AS password FROM vault',
    'SELECT * FROM vault',
    'SELECT v.* FROM vault v WHERE id > 1',
    'TABLE vault',
    'SELECT id, name FROM people WHERE id = $1',
    "UPDATE vault SET api_token = 'x' WHERE id = 1 RETURNING api_token",
    'INSERT INTO vault (id, api_token) VALUES (1, $1)',
  ]) assert.not.ok(carriesMaskedColumn(sql, masker), sql);
});

test('a built-in returning the columns of a table, cursor or query named as text, or the planner statistics, carries one', () => {
  for (const sql of [
    "SELECT table_to_xml('vault', true, false, '')",
    "SELECT pg_catalog.query_to_xml('SELECT 1', true, false, '')",
    "SELECT cursor_to_xml('c', 5, false, false, '')",
    "SELECT database_to_xml(true, false, '')",
    "SELECT word FROM ts_stat('SELECT v FROM t')",
    "SELECT ts_rewrite('x'::tsquery, 'SELECT a, b FROM t')",
    'SELECT pg_catalog.table_to_xml($1, $2, $3, $4)',
    "SELECT histogram_bounds FROM pg_stats WHERE tablename = 'vault'",
    'SELECT stavalues1 FROM pg_catalog.pg_statistic',
  ]) assert.ok(carriesMaskedColumn(sql, masker), sql);
  assert.equal(copiesMaskedColumn("CREATE TABLE loot AS SELECT table_to_xml('vault', true, false, '')", masker), { kind: 'copies-column', statement: 'CreateTableAsStmt' });
  assert.equal(copiesMaskedColumn("INSERT INTO s SELECT 1, most_common_vals::text FROM pg_stats", masker), { kind: 'copies-column', statement: 'InsertStmt' });
});

test('a masked column handed to pg_notify, set_config or a function not known to be pure is a copy, even in a plain SELECT', () => {
  for (const sql of [
    "SELECT pg_notify('c', api_token) FROM vault",
    "SELECT pg_notify('c', v::text) FROM vault v",
    "SELECT set_config('application_name', api_token, false) FROM vault",
    "SELECT set_config('x.y', upper(password), false) FROM users",
  ]) assert.equal(copiesMaskedColumn(sql, masker), { kind: 'copies-column', statement: 'SelectStmt' }, sql);
  // A function the agent may have defined to keep its argument somewhere.
  for (const sql of ["SELECT api_token ### 'x' FROM vault", "SELECT id FROM vault WHERE api_token OPERATOR(app.=) 'x'", 'SELECT keep(api_token) FROM vault', 'SELECT upper(app.keep(api_token)) FROM vault', 'SELECT id FROM vault v WHERE keep(v::text) IS NULL', 'SELECT app.upper(api_token) FROM vault']) {
    assert.equal(copiesMaskedColumn(sql, masker), { kind: 'copies-column', statement: 'SelectStmt' }, sql);
  }
  for (const sql of ["SELECT id FROM vault WHERE api_token = 'x' AND api_token || 'y' LIKE 'z%'", "SELECT upper(api_token), string_agg(api_token, ',') FROM vault", 'SELECT pg_catalog.md5(api_token) FROM vault', 'SELECT keep(id) FROM vault']) {
    assert.is(copiesMaskedColumn(sql, masker), undefined, sql);
  }
  assert.is(copiesMaskedColumn("SELECT pg_notify('c', id::text) FROM vault", masker), undefined);
  // A search_path putting another schema before pg_catalog would let `other.upper` pass as upper.
  for (const sql of ['SET search_path = other, pg_catalog', `SET "search_path" TO 'other,pg_catalog'`, 'SET LOCAL search_path TO app, "pg_catalog"', "SELECT set_config('search_path', 'x, pg_catalog', false)", 'SELECT set_config(name, setting, false) FROM s']) {
    assert.equal(copiesMaskedColumn(sql, masker), { kind: 'shadows-builtins', statement: sql.startsWith('SET') ? 'VariableSetStmt' : 'SelectStmt' }, sql);
  }
  for (const sql of ['SET search_path = other, public', 'SET search_path = pg_catalog, other', "SELECT set_config('search_path', 'app', false)", 'RESET search_path']) {
    assert.is(copiesMaskedColumn(sql, masker), undefined, sql);
  }
  assert.is(copiesMaskedColumn("SELECT set_config('application_name', 'x', false)", masker), undefined);
});

test('a mask set without column rules never carries one', () => {
  assert.not.ok(carriesMaskedColumn('SELECT api_token AS t FROM vault', new Masker('detectors', { columns: [], detectors: ['email'] })));
});

test('copying a masked column into a table, view, column or body is named; writing or reading one is not', () => {
  const copies: [string, string][] = [
    ['CREATE TABLE loot AS SELECT api_token AS t FROM vault', 'CreateTableAsStmt'],
    ['SELECT api_token INTO loot FROM vault', 'SelectStmt'],
    ['CREATE VIEW v2 AS SELECT api_token FROM vault', 'ViewStmt'],
    ['INSERT INTO s SELECT id, api_token FROM vault', 'InsertStmt'],
    ['UPDATE s SET note = api_token', 'UpdateStmt'],
    ["CREATE FUNCTION f() RETURNS text LANGUAGE sql AS 'SELECT api_token FROM vault'", 'CreateFunctionStmt'],
    ['SELECT 1; DO $$ BEGIN PERFORM password FROM users; END $$', 'DoStmt'],
    ['CREATE VIEW v3 (a, b) AS SELECT * FROM vault', 'ViewStmt'],
    ['INSERT INTO s SELECT v FROM vault v', 'InsertStmt'],
    ['ALTER TABLE vault RENAME COLUMN api_token TO t', 'RenameStmt'],
    ['COPY vault TO STDOUT', 'CopyStmt'],
    ['COPY vault (id, api_token) TO STDOUT', 'CopyStmt'],
  ];
  for (const [sql, kind] of copies) assert.equal(copiesMaskedColumn(sql, masker), { kind: 'copies-column', statement: kind }, sql);
  for (const sql of [
    'SELECT api_token AS t FROM vault',
    'PREPARE p AS SELECT api_token FROM vault',
    "INSERT INTO vault (id, api_token) VALUES (1, 'x')",
    "UPDATE vault SET api_token = 'y' WHERE id = 1",
    'INSERT INTO s SELECT id, note FROM vault',
    "CREATE FUNCTION g() RETURNS int LANGUAGE sql AS 'SELECT 1'",
    'COPY vault (id, note) TO STDOUT',
    'COPY vault FROM STDIN',
    'ALTER TABLE vault RENAME COLUMN note TO remark',
  ]) assert.is(copiesMaskedColumn(sql, masker), undefined, sql);
});

test('column notation: a built-in called on a whole row carries it; a function taking a row may not be made by a masked client', () => {
  for (const sql of ['SELECT v.record_out FROM vault v', 'SELECT vault.concat AS id FROM vault', 'SELECT public.vault.quote_literal FROM public.vault', 'SELECT v.to_jsonb::text FROM vault v']) {
    assert.ok(carriesMaskedColumn(sql, masker), sql);
  }
  assert.not.ok(carriesMaskedColumn('SELECT v.id, v.note FROM vault v', masker));
  // Copied by that name into a table, a view, a notification: the row, read back later.
  for (const sql of ['INSERT INTO s SELECT 1, v.concat FROM vault v', 'CREATE VIEW w AS SELECT v.record_out AS r FROM vault v', "SELECT pg_notify('c', v.quote_literal) FROM vault v"]) {
    assert.equal(copiesMaskedColumn(sql, masker)?.kind, 'copies-column', sql);
  }
  assert.is(copiesMaskedColumn('INSERT INTO s SELECT v.id, v.note FROM vault v', masker), undefined);
  // A field selection calls a function of the value: `(api_token).keep` is keep(api_token).
  assert.equal(copiesMaskedColumn('SELECT (api_token).keep FROM vault', masker)?.kind, 'copies-column');
  assert.is(copiesMaskedColumn('SELECT (api_token).upper FROM vault', masker), undefined);
  assert.ok(carriesMaskedColumn("SELECT ('SELECT to_tsvector(api_token) FROM vault'::text).ts_stat", masker));
  for (const sql of [
    "CREATE FUNCTION keep(anyelement) RETURNS int LANGUAGE sql AS 'SELECT 1'",
    "CREATE FUNCTION keep(r vault) RETURNS int LANGUAGE sql AS 'SELECT 1'",
    "CREATE OR REPLACE FUNCTION keep(r record, n int DEFAULT 0, OUT x int) LANGUAGE sql AS 'SELECT 1'",
    "CREATE FUNCTION keep(VARIADIC \"any\") RETURNS int LANGUAGE sql AS 'SELECT 1'",
    "CREATE FUNCTION keep(r public.text) RETURNS int LANGUAGE sql AS 'SELECT 1'",
  ]) assert.equal(copiesMaskedColumn(sql, masker), { kind: 'takes-rows', statement: 'CreateFunctionStmt' }, sql);
  for (const sql of [
    "CREATE FUNCTION twice(n int) RETURNS int LANGUAGE sql AS 'SELECT n * 2'",
    "CREATE FUNCTION pair(a anyelement, b anyelement) RETURNS int LANGUAGE sql AS 'SELECT 1'",
    "CREATE FUNCTION tags(t text[], OUT n int) LANGUAGE sql AS 'SELECT 1'",
    "CREATE PROCEDURE p(r anyelement) LANGUAGE sql AS 'SELECT 1'",
  ]) assert.is(copiesMaskedColumn(sql, masker), undefined, sql);
});

test('search_path changed by code read only as text shadows built-ins; a setting named in another case is the setting', () => {
  for (const sql of [
    "DO $$BEGIN PERFORM set_config('search_path', 'pg_catalog', false); END$$",
    "DO $$BEGIN SET search_path = other, pg_catalog; END$$",
    "SELECT query_to_xml('SELECT set_config(''search_path'', ''x'', false)', true, false, '')",
    "CREATE FUNCTION f() RETURNS text LANGUAGE sql AS $$SELECT set_config(current_setting('x'), 'y', false)$$",
    'SET "Search_Path" TO other, pg_catalog',
  ]) assert.equal(copiesMaskedColumn(sql, masker)?.kind, 'shadows-builtins', sql);
  assert.is(copiesMaskedColumn("DO $$BEGIN PERFORM set_config('application_name', 'x', false); END$$", masker), undefined);
});

test.run();

import { suite } from '../../../test/harness/suite.js';
import * as assert from 'uvu/assert';
import { analyzeSql, initSqlParser } from './analyze.js';
import { acceptedEncoding, checkSetting, isLexingSensitive, lexingChange } from './lexing.js';

function changeIn(sql: string): string | undefined {
  const r = analyzeSql(sql);
  if (!r.ok) throw new Error(r.error);
  return r.statements.map((s) => lexingChange(s.node)).find((x) => x !== undefined);
}

const settings = suite('checkSetting');
settings('standard_conforming_strings: only the values PostgreSQL reads as true', () => {
  for (const v of ['on', 'ON', 'true', 't', 'tru', 'yes', 'y', '1']) assert.ok(checkSetting('standard_conforming_strings', v).ok, v);
  for (const v of ['off', 'of', 'false', 'f', 'no', '0', '', ' on', 'o', 'maybe']) assert.not.ok(checkSetting('Standard_Conforming_Strings', v).ok, v);
  assert.ok(checkSetting('standard_conforming_strings', undefined).ok, 'RESET returns to the pinned value');
});
settings('client_encoding: UTF8 and SQL_ASCII under any spelling; every other encoding refused', () => {
  for (const v of ['UTF8', 'utf-8', 'Unicode', 'SQL_ASCII', 'sql-ascii']) assert.ok(checkSetting('client_encoding', v).ok, v);
  for (const v of ['SJIS', 'BIG5', 'GBK', 'GB18030', 'UHC', 'JOHAB', 'LATIN1', 'EUC_JP', 'auto']) {
    const r = checkSetting('CLIENT_ENCODING', v);
    assert.ok(!r.ok && r.reason.includes(v), v);
  }
  assert.is(acceptedEncoding('utf-8'), 'UTF8');
  assert.is(acceptedEncoding('SQL_ASCII'), 'SQL_ASCII');
});
settings('settings that do not change lexing are not Agate’s concern', () => {
  for (const [n, v] of [['backslash_quote', 'on'], ['escape_string_warning', 'off'], ['search_path', 'x'], ['DateStyle', 'ISO']] as const) assert.ok(checkSetting(n, v).ok, n);
});
settings.run();

const change = suite('lexingChange');
change.before(() => initSqlParser());
change('SET, SET LOCAL, SET SESSION and SET NAMES to an unsafe value', () => {
  for (const sql of [
    'SET standard_conforming_strings = off',
    'SET standard_conforming_strings = 0',
    'set LOCAL standard_conforming_strings to false',
    'SET SESSION "standard_conforming_strings" TO \'no\'',
    'SET U&"standard_conforming_string\\0073" = off',
    "SET client_encoding TO 'SJIS'",
    "SET NAMES 'big5'",
    "SELECT 1; SET client_encoding = 'GBK'",
  ]) assert.ok(changeIn(sql) !== undefined, sql);
});
change('ALTER ROLE / DATABASE / SYSTEM … SET and a function’s SET clause', () => {
  for (const sql of [
    'ALTER ROLE agent SET standard_conforming_strings = off',
    "ALTER ROLE agent IN DATABASE appdb SET client_encoding = 'SJIS'",
    'ALTER DATABASE appdb SET standard_conforming_strings TO off',
    'ALTER SYSTEM SET standard_conforming_strings = off',
    'CREATE FUNCTION f() RETURNS int LANGUAGE sql SET standard_conforming_strings = off AS $$ SELECT 1 $$',
  ]) assert.ok(changeIn(sql) !== undefined, sql);
});
change('set_config anywhere in an expression; a value that is not a constant', () => {
  for (const sql of [
    "SELECT set_config('standard_conforming_strings', 'off', false)",
    "SELECT pg_catalog.set_config('client_encoding', 'SJIS'::text, true)",
    "SELECT 1 WHERE EXISTS (SELECT set_config('standard_conforming_strings', 'off', false))",
    "WITH s AS (SELECT set_config('Standard_Conforming_Strings', 'f', false)) SELECT * FROM s",
    "SELECT set_config('standard_conforming_strings', current_setting('my.x'), false)",
  ]) assert.ok(changeIn(sql) !== undefined, sql);
});
change('safe values, RESET, DEFAULT, other settings and ordinary statements pass', () => {
  for (const sql of [
    'SET standard_conforming_strings = on',
    'SET standard_conforming_strings = 1',
    "SET client_encoding = 'UTF8'",
    "SET NAMES 'utf-8'",
    'RESET standard_conforming_strings',
    'RESET ALL',
    'SET client_encoding TO DEFAULT',
    'ALTER ROLE agent RESET standard_conforming_strings',
    'SET backslash_quote = on',
    "SET search_path = 'public'",
    "SELECT pg_catalog.set_config('search_path', '', false)",
    "SELECT set_config('standard_conforming_strings', 'on', false)",
    "SELECT 'a\\' , '; DROP TABLE v; --'",
    // Names from a query (pg_dump's form) and pg_settings updates: followed by the server's report.
    "SELECT set_config(name, 'view, foreign-table', false) FROM pg_settings WHERE name = 'restrict_nonsystem_relation_kind'",
    "UPDATE pg_settings SET setting = 'off' WHERE name = 'standard_conforming_strings'",
    'UPDATE items SET name = 1',
  ]) assert.is(changeIn(sql), undefined, sql);
});
change.run();

const sensitive = suite('isLexingSensitive');
sensitive('only a backslash or a non-ASCII character can lex differently', () => {
  assert.ok(isLexingSensitive("SELECT 'a\\'"));
  assert.ok(isLexingSensitive("SELECT 'é'"));
  assert.ok(isLexingSensitive('SELECT \uFFFD'));
  assert.not.ok(isLexingSensitive("SELECT 'a' , '; DROP TABLE v; --'"));
});
sensitive.run();

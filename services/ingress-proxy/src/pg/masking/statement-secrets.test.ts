import { test } from '../../../../../test/harness/suite.js';
import * as assert from 'uvu/assert';
import { BUILTIN_MASK_SET } from '../../../../../core/src/config.js';
import { analyzeSql, initSqlParser } from '../../../../../core/src/sql/analyze.js';
import { Masker } from '../../masking/masker.js';
import { maskCopyLine, maskJsonKeys, maskLiterals, statementSecrets } from './statement-secrets.js';

const masker = new Masker('default', BUILTIN_MASK_SET);

test.before(() => initSqlParser());

const masked = (sql: string) => maskLiterals(sql, statementSecrets(sql, masker)?.literals ?? []);

test('literals an INSERT, UPDATE or ON CONFLICT assigns to a masked column are masked; the text still parses', () => {
  const cases: [string, string][] = [
    ["INSERT INTO t (id, api_token) VALUES (1, 'CAN1'), (2, E'CAN2')", 'CAN'],
    ["INSERT INTO t (id, api_token) SELECT 1, 'CAN3'", 'CAN3'],
    ["UPDATE t SET api_token = 'CAN4' || 'x', name = 'keep' WHERE id = 1", 'CAN4'],
    ["INSERT INTO t (id, api_token) VALUES (1, 'a') ON CONFLICT (id) DO UPDATE SET api_token = 'CAN5'", 'CAN5'],
    ["WITH x AS (UPDATE t SET password = U&'CAN6' RETURNING 1) SELECT 1", 'CAN6'],
    ["INSERT INTO t (id, api_token) VALUES (1, 'é-CAN7'), (2, 'ü')", 'CAN7'],
  ];
  for (const [sql, canary] of cases) {
    const out = masked(sql);
    assert.not.ok(out.includes(canary), `${sql} -> ${out}`);
    assert.ok(analyzeSql(out).ok, out);
  }
  assert.ok(masked("UPDATE t SET api_token = 'x', name = 'keep'").includes("'keep'"));
});

test("an empty or quote-escaped literal is masked as exactly itself (pg_dump's set_config('search_path', '', false) still parses)", () => {
  for (const sql of ["SELECT pg_catalog.set_config('search_path', '', false);", "SELECT set_config('app.note', '''CAN8''', false)", "INSERT INTO t (id, api_token) VALUES (1, ''), (2, 'CAN9')"]) {
    const out = masked(sql);
    assert.ok(analyzeSql(out).ok, `${sql} -> ${out}`);
    assert.not.ok(out.includes('CAN'), out);
  }
  assert.is(masked("SELECT set_config('search_path', '', false)"), "SELECT set_config('search_path', '[masked]', false)");
});

test('bound parameters assigned to a masked column, or passed to set_config as its value, are found', () => {
  assert.equal([...statementSecrets('INSERT INTO t (id, api_token) VALUES ($1, $2::text)', masker)!.params], [2]);
  assert.equal([...statementSecrets('UPDATE t SET secret = $3 WHERE id = $1', masker)!.params], [3]);
  assert.equal([...statementSecrets("SELECT set_config('app.x', $1, false)", masker)!.params], [1]);
  assert.not.ok(masked("SELECT pg_catalog.set_config('app.x', 'CAN8', false)").includes('CAN8'));
  assert.is(statementSecrets('SELECT $1', masker), undefined);
});

test('COPY columns: a masked column is masked in each line; unknown columns mask every field', () => {
  const listed = statementSecrets('COPY t (id, api_token) FROM STDIN', masker)!.copy!;
  assert.is(maskCopyLine('1\tCAN9', listed, masker), '1\t[masked]');
  const csv = statementSecrets("COPY (SELECT id, api_token FROM t) TO STDOUT WITH (FORMAT csv)", masker)!.copy!;
  assert.is(maskCopyLine('1,CAN10', csv, masker), '1,[masked]');
  const unknown = statementSecrets('COPY t TO STDOUT', masker)!.copy!;
  assert.is(maskCopyLine('1\tx', unknown, masker), '[masked]\t[masked]');
});

test('JSON reads of rows: values under masked keys are masked, at any depth', () => {
  const out = maskJsonKeys('[{"id":1,"api_token":"CAN11","nested":{"password":42}}]', masker)!;
  assert.is(out.count, 2);
  assert.not.ok(out.text.includes('CAN11'));
  assert.is(maskJsonKeys('{"id":1}', masker), undefined);
  assert.is(maskJsonKeys('not json', masker), undefined);
});

test.run();

import { suite } from '../../../test/harness/suite.js';
import * as assert from 'uvu/assert';
import { analyzeSql, initSqlParser } from './analyze.js';

const analyze = suite('analyzeSql');
analyze.before(() => initSqlParser());

analyze('splits a multi-statement string and names each kind', () => {
  const r = analyzeSql("SELECT 1; drop /* hidden */ TABLE t; select 'a;b'");
  assert.ok(r.ok);
  if (!r.ok) return;
  assert.equal(r.statements.map((s) => s.kind), ['SelectStmt', 'DropStmt', 'SelectStmt']);
  assert.equal(r.statements.map((s) => s.text), ['SELECT 1', 'drop /* hidden */ TABLE t', "select 'a;b'"]);
});

analyze('keeps byte offsets right after multi-byte characters', () => {
  const r = analyzeSql("SELECT 'héllo ✓'; TRUNCATE items");
  assert.ok(r.ok && r.statements[1]!.text === 'TRUNCATE items' && r.statements[1]!.kind === 'TruncateStmt');
});

analyze('an empty string has no statements; a syntax error is reported', () => {
  const empty = analyzeSql('  ');
  assert.ok(empty.ok && empty.statements.length === 0);
  const bad = analyzeSql('SELEC 1');
  assert.ok(!bad.ok && bad.error.includes('syntax error'));
});

analyze.run();

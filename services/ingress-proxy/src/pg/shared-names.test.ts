import { suite } from '../../../../test/harness/suite.js';
import * as assert from 'uvu/assert';
import { analyzeSql, initSqlParser } from '../../../../core/src/sql/analyze.js';
import { mayUseSharedNames, sharedNameUses } from './shared-names.js';
import { SqlPreparedStatements } from './sql-prepared.js';

const node = (sql: string) => {
  const r = analyzeSql(sql);
  if (!r.ok || r.statements.length !== 1) throw new Error(`not one statement: ${sql}`);
  return r.statements[0]!.node;
};

const uses = suite('sharedNameUses');
uses.before(() => initSqlParser());

uses('FETCH and MOVE run a portal, by the name the server reads', () => {
  assert.equal(sharedNameUses(node('FETCH ALL FROM p')), [{ kind: 'fetchPortal', name: 'p', verb: 'FETCH' }]);
  assert.equal(sharedNameUses(node('fetch forward 2 in P')), [{ kind: 'fetchPortal', name: 'p', verb: 'FETCH' }]);
  assert.equal(sharedNameUses(node('MOVE ALL IN "P"')), [{ kind: 'fetchPortal', name: 'P', verb: 'MOVE' }]);
});

uses('CLOSE, DECLARE, DEALLOCATE and DISCARD ALL drop names; other statements touch none', () => {
  assert.equal(sharedNameUses(node('CLOSE c')), [{ kind: 'dropPortals', name: 'c' }]);
  assert.equal(sharedNameUses(node('CLOSE ALL')), [{ kind: 'dropPortals', name: undefined }]);
  assert.equal(sharedNameUses(node('DECLARE c CURSOR WITH HOLD FOR SELECT 1')), [{ kind: 'dropPortals', name: 'c' }]);
  assert.equal(sharedNameUses(node('DEALLOCATE PREPARE s')), [{ kind: 'dropStatements', name: 's' }]);
  assert.equal(sharedNameUses(node('DEALLOCATE ALL')), [{ kind: 'dropStatements', name: undefined }]);
  assert.equal(sharedNameUses(node('DISCARD ALL')), [{ kind: 'dropPortals' }, { kind: 'dropStatements' }]);
  for (const sql of ['DISCARD PLANS', 'SELECT 1', "SELECT 'fetch all from p'", 'PREPARE s AS SELECT 1', 'EXECUTE s']) assert.equal(sharedNameUses(node(sql)), [], sql);
});

uses('the cheap test before a parse lets every such statement through', () => {
  for (const sql of ['FETCH ALL FROM p', 'move all in p', 'CLOSE ALL', 'DECLARE c CURSOR FOR SELECT 1', 'DEALLOCATE s', 'DISCARD ALL']) assert.ok(mayUseSharedNames(sql), sql);
  assert.not.ok(mayUseSharedNames('SELECT id FROM fetched'));
});

const forget = suite('SqlPreparedStatements.forget');
forget.before(() => initSqlParser());

forget('a Close of the protocol drops the SQL name, and a PREPARE of it still pending', () => {
  const p = new SqlPreparedStatements();
  p.plan(node('PREPARE a AS SELECT 1'), 'PREPARE a AS SELECT 1', 'c1');
  p.settle('c1', true);
  p.plan(node('PREPARE b AS SELECT 2'), 'PREPARE b AS SELECT 2', 'c2');
  p.forget('a');
  p.forget('b');
  p.settle('c2', true);
  assert.equal(p.plan(node('EXECUTE a'), 'EXECUTE a', 'c3'), { ok: false, why: 'unknown', name: 'a' });
  assert.equal(p.plan(node('EXECUTE b'), 'EXECUTE b', 'c4'), { ok: false, why: 'unknown', name: 'b' });
});

uses.run();
forget.run();

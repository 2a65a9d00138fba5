import { suite } from '../../../../test/harness/suite.js';
import * as assert from 'uvu/assert';
import { analyzeSql, initSqlParser } from '../../../../core/src/sql/analyze.js';
import { mayTouchPrepared, SqlPreparedStatements } from './sql-prepared.js';

const node = (sql: string) => {
  const r = analyzeSql(sql);
  if (!r.ok || r.statements.length !== 1) throw new Error(`not one statement: ${sql}`);
  return r.statements[0]!.node;
};
let ids = 0;
/** Plans `sql` under a fresh command id; returns the plan and the id to settle. */
const plan = (p: SqlPreparedStatements, sql: string) => {
  const id = `c${++ids}`;
  return { id, plan: p.plan(node(sql), sql, id) };
};

const prepared = suite('SqlPreparedStatements');
prepared.before(() => initSqlParser());

prepared('EXECUTE names the PREPARE it runs, once the PREPARE completed or while it is pending', () => {
  const p = new SqlPreparedStatements();
  const prep = plan(p, 'PREPARE pd(int) AS DELETE FROM items WHERE id = $1');
  assert.equal(prep.plan, { ok: true, prepared: [] });
  // Later in the same string or pipeline: it runs only if the PREPARE did.
  assert.equal(plan(p, 'EXECUTE pd(1)').plan, { ok: true, prepared: ['PREPARE pd(int) AS DELETE FROM items WHERE id = $1'] });
  p.settle(prep.id, true);
  assert.equal(plan(p, 'EXPLAIN ANALYZE EXECUTE pd(2)').plan, { ok: true, prepared: ['PREPARE pd(int) AS DELETE FROM items WHERE id = $1'] });
  assert.equal(plan(p, 'CREATE TABLE t AS EXECUTE pd(3)').plan.ok, true);
});

prepared('an unknown name, a failed PREPARE, DEALLOCATE and DISCARD ALL leave nothing to execute', () => {
  const p = new SqlPreparedStatements();
  assert.equal(plan(p, 'EXECUTE nosuch').plan, { ok: false, why: 'unknown', name: 'nosuch' });
  const failed = plan(p, 'PREPARE a AS SELECT 1');
  p.settle(failed.id, false);
  assert.equal(plan(p, 'EXECUTE a').plan, { ok: false, why: 'unknown', name: 'a' });
  for (const drop of ['DEALLOCATE b', 'DEALLOCATE PREPARE b', 'DEALLOCATE ALL', 'DISCARD ALL']) {
    const b = plan(p, 'PREPARE b AS SELECT 1');
    p.settle(b.id, true);
    assert.ok(plan(p, 'EXECUTE b').plan.ok);
    const d = plan(p, drop);
    assert.equal(plan(p, 'EXECUTE b').plan, { ok: false, why: 'unknown', name: 'b' }, `pending ${drop}`);
    p.settle(d.id, true);
    assert.equal(plan(p, 'EXECUTE b').plan, { ok: false, why: 'unknown', name: 'b' }, drop);
  }
});

prepared('a second PREPARE of a known name changes nothing: the server refuses it', () => {
  const p = new SqlPreparedStatements();
  const first = plan(p, 'PREPARE pd AS DELETE FROM items');
  p.settle(first.id, true);
  const again = plan(p, 'PREPARE pd AS SELECT 1');
  assert.equal(plan(p, 'EXECUTE pd').plan, { ok: true, prepared: ['PREPARE pd AS DELETE FROM items'] }, 'pending');
  p.settle(again.id, true);
  assert.equal(plan(p, 'EXECUTE pd').plan, { ok: true, prepared: ['PREPARE pd AS DELETE FROM items'] }, 'settled');
  // Names are as the parser gives them: quoted names keep their case.
  assert.equal(plan(p, 'EXECUTE "PD"').plan, { ok: false, why: 'unknown', name: 'PD' });
});

prepared('the cheap pre-test sees every statement that could touch a prepared statement', () => {
  for (const t of ['execute pd', 'PREPARE x AS SELECT 1', 'Deallocate all', 'discard ALL', 'explain analyze\nEXECUTE x']) assert.ok(mayTouchPrepared(t), t);
  assert.not.ok(mayTouchPrepared('SELECT executed FROM prepared_items'));
});
prepared.run();

import { suite } from '../../../../test/harness/suite.js';
import * as assert from 'uvu/assert';
import { analyzeSql, initSqlParser } from '../../../../core/src/sql/analyze.js';
import { ExtendedState, MAX_STATEMENTS } from './extended-state.js';
import type { Bind, Parse } from './messages.js';
import { MAX_RETAINED_BYTES, SizedMap } from './sized-map.js';
import { SkippedBatch } from './skipped-batch.js';
import { SqlPreparedStatements } from './sql-prepared.js';

const parse = (name: string, query: string): Parse => ({ type: 'parse', name, query, paramTypes: [] }) as unknown as Parse;
const bind = (portal: string, statement: string, params: (Buffer | null)[]): Bind => ({ type: 'bind', portal, statement, params, paramFormats: [], resultFormats: [] }) as unknown as Bind;
/** Just over a third of what a session may keep: three do not fit. */
const third = 'x'.repeat(Math.floor(MAX_RETAINED_BYTES / 3) + 1);

const sized = suite('SizedMap');

sized('keeps the total of its values through set, replace, delete and clear', () => {
  const m = new SizedMap<string>((s) => s.length);
  m.set('a', 'xxx').set('b', 'yy');
  assert.is(m.total, 5);
  m.set('a', 'x');
  assert.is(m.total, 3);
  m.delete('b');
  m.delete('nosuch');
  assert.is(m.total, 1);
  m.clear();
  assert.is(m.total, 0);
});

const bounded = suite('what one session may keep');
bounded.before(() => initSqlParser());

bounded('protocol statements and bound values share one budget; replacing or closing frees it', () => {
  const state = new ExtendedState();
  assert.ok(state.parse(parse('a', third)).ok);
  assert.ok(state.parse(parse('b', third)).ok);
  const over = state.bind(bind('p', 'a', [Buffer.alloc(third.length)]));
  assert.equal(over.ok ? undefined : over.sqlstate, '54000');
  assert.match(over.ok ? '' : over.message, /at most 64 MiB/);
  assert.is(state.parse(parse('c', third)).ok, false);
  // A closed statement frees its share; the unnamed one replaced by one of the same size fits.
  state.close({ type: 'close', kind: 'S', name: 'b' } as never);
  assert.ok(state.parse(parse('', third)).ok);
  assert.ok(state.parse(parse('', third)).ok);
  assert.ok(state.bind(bind('p', 'a', [Buffer.alloc(10)])).ok);
});

bounded('a batch skipped after an error is bounded too', () => {
  const state = new ExtendedState();
  const batch = new SkippedBatch();
  assert.ok(batch.parse(parse('a', third)));
  assert.ok(batch.parse(parse('b', third)));
  assert.ok(batch.parse(parse('c', 'SELECT 1')));
  assert.not.ok(batch.parse(parse('d', third)));
  assert.not.ok(batch.bind(bind('p', 'a', []), state));
  batch.clear();
  assert.ok(batch.parse(parse('d', third)));
});

bounded('SQL PREPARE is bounded in number and text, pending ones counted', () => {
  const p = new SqlPreparedStatements();
  const r = analyzeSql('PREPARE s AS SELECT 1');
  const node = r.ok ? r.statements[0]!.node : {};
  for (let i = 0; i < MAX_STATEMENTS; i++) assert.ok(p.plan(node, 'PREPARE s AS SELECT 1', `c${i}`).ok);
  assert.equal(p.plan(node, 'PREPARE s AS SELECT 1', 'over'), { ok: false, why: 'limit', name: 's' });
  const q = new SqlPreparedStatements();
  assert.ok(q.plan(node, third + third, 'big').ok);
  assert.equal(q.plan(node, third + third, 'bigger'), { ok: false, why: 'limit', name: 's' });
});

sized.run();
bounded.run();

import { suite } from '../../../../test/harness/suite.js';
import * as assert from 'uvu/assert';
import { initSqlParser } from '../../../../core/src/sql/analyze.js';
import { MAX_TRACKED, TransactionTracker } from './transactions.js';

const tracker = suite('TransactionTracker');
tracker.before(() => initSqlParser());

/** A tracker and what it reported: each undone id with the start of its reason. */
function track(): { t: TransactionTracker; undone: string[]; reasons: string[] } {
  const undone: string[] = [];
  const reasons: string[] = [];
  const t = new TransactionTracker((ids, reason) => {
    undone.push(...ids);
    reasons.push(reason);
  });
  return { t, undone, reasons };
}
const c = (id: string, text = 'INSERT INTO t VALUES (1)') => ({ event_id: id, text });

tracker('a committed block and autocommitted statements are not reported', () => {
  const { t, undone } = track();
  t.ran(c('a'), 'INSERT 0 1');
  t.ready('I');
  t.ran(c('b', 'BEGIN'), 'BEGIN');
  t.ran(c('c'), 'INSERT 0 1');
  t.ran(c('d', 'COMMIT'), 'COMMIT');
  t.ready('I');
  assert.equal(undone, []);
});

tracker('ROLLBACK TO SAVEPOINT undoes what came after the savepoint; RELEASE keeps it in the transaction', () => {
  const { t, undone, reasons } = track();
  t.ran(c('b', 'BEGIN'), 'BEGIN');
  t.ran(c('kept'), 'INSERT 0 1');
  t.ran(c('s', 'SAVEPOINT "Sp"'), 'SAVEPOINT');
  t.ran(c('gone'), 'INSERT 0 1');
  t.failed(c('bad', 'SELECT 1/0'), '22012');
  t.ready('E');
  t.failed(c('r', 'rollback to sp'), '3B001'); // folded "sp" is not "Sp": the server has no such savepoint
  t.ready('E');
  assert.equal(undone, []);
  t.ran(c('r2', 'ROLLBACK TO SAVEPOINT "Sp"'), 'ROLLBACK');
  t.ready('T');
  assert.equal(undone, ['gone']);
  assert.match(reasons[0]!, /ROLLBACK TO SAVEPOINT Sp/);
  t.ran(c('s2', 'SAVEPOINT x'), 'SAVEPOINT');
  t.ran(c('in-x'), 'INSERT 0 1');
  t.ran(c('rel', 'RELEASE x'), 'RELEASE');
  t.ran(c('end', 'COMMIT'), 'COMMIT');
  t.ready('I');
  assert.equal(undone, ['gone'], 'the commit after it undoes nothing');
});

tracker('an error in an implicit transaction undoes the statements before it; a COMMIT in the same query ends the one before', () => {
  const { t, undone, reasons } = track();
  t.ran(c('b', 'BEGIN'), 'BEGIN');
  t.ran(c('committed'), 'INSERT 0 1');
  t.ran(c('cm', 'COMMIT'), 'COMMIT');
  t.ran(c('implicit'), 'INSERT 0 1');
  t.failed(c('bad', 'SELECT 1/0'), '22012');
  t.ready('I');
  assert.equal(undone, ['implicit']);
  assert.match(reasons[0]!, /command bad failed \(22012\) in the same implicit transaction/);
});

tracker('a COMMIT that fails ends the block in its error; COMMIT AND CHAIN keeps a block open', () => {
  const { t, undone, reasons } = track();
  t.ran(c('b', 'BEGIN'), 'BEGIN');
  t.ran(c('x'), 'INSERT 0 1');
  t.ran(c('chain', 'COMMIT AND CHAIN'), 'COMMIT');
  t.ran(c('y'), 'INSERT 0 1');
  t.failed(c('commit', 'commit'), '40001');
  t.ready('I');
  assert.equal(undone, ['y']);
  assert.match(reasons[0]!, /^rolled back: COMMIT failed \(40001, command commit\)/);
});

tracker('no claim where the server cannot prove it: a CALL outside a block, a PREPARE TRANSACTION, a statement in flight at the end', () => {
  const { t, undone } = track();
  t.ran(c('a'), 'INSERT 0 1');
  t.ran(c('call', 'CALL p()'), 'CALL'); // may COMMIT inside
  t.failed(c('bad', 'SELECT 1/0'), '22012');
  t.ready('I');
  t.ran(c('b', 'BEGIN'), 'BEGIN');
  t.ran(c('p'), 'INSERT 0 1');
  t.ran(c('pt', "PREPARE TRANSACTION 'g'"), 'PREPARE TRANSACTION');
  t.ready('I');
  t.ran(c('b2', 'BEGIN'), 'BEGIN');
  t.ran(c('q'), 'INSERT 0 1');
  t.ended(true); // its COMMIT may have been in flight
  assert.equal(undone, []);
  t.ran(c('b3', 'BEGIN'), 'BEGIN');
  t.ran(c('r'), 'INSERT 0 1');
  t.ended(false);
  assert.equal(undone, ['r']);
});

tracker('a CALL inside a block cannot commit: it is undone with the block', () => {
  const { t, undone } = track();
  t.ran(c('b', 'BEGIN'), 'BEGIN');
  t.ran(c('call', 'CALL p()'), 'CALL');
  t.ran(c('rb', 'ABORT'), 'ROLLBACK');
  assert.equal(undone, ['call']);
});

tracker('a portal fetched in parts is one statement; past the limit the rest are counted in the reason', () => {
  const { t, undone, reasons } = track();
  t.ran(c('b', 'BEGIN'), 'BEGIN');
  t.ran(c('portal'), null);
  t.ran(c('portal'), 'UPDATE 5');
  for (let i = 1; i < MAX_TRACKED + 3; i++) t.ran(c(`s${i}`), 'INSERT 0 1');
  t.ran(c('rb', 'ROLLBACK'), 'ROLLBACK');
  assert.is(undone.length, MAX_TRACKED);
  assert.is(undone[0], 'portal');
  assert.match(reasons[0]!, /and 3 later statements/);
});

tracker.run();

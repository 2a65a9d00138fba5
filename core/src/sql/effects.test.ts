import { suite } from '../../../test/harness/suite.js';
import * as assert from 'uvu/assert';
import { STATEMENT_EFFECTS, statementEffects } from './effects.js';
import { knownStatementNodes } from './statement-nodes.js';

const effects = suite('statementEffects');

effects('every statement node libpg-query knows is classified', () => {
  const nodes = knownStatementNodes();
  // The type definitions of libpg-query 18 name over a hundred; an empty list would prove nothing.
  assert.ok(nodes.length > 100, `only ${nodes.length} statement nodes found`);
  const unclassified = nodes.filter((n) => !Object.hasOwn(STATEMENT_EFFECTS, n));
  assert.equal(unclassified, []);
  for (const n of nodes) {
    assert.ok(statementEffects(n, {}).length > 0, n);
    // `unknown` is kept for what this table lacks (and the parser's wrapper, which it never outputs).
    if (n !== 'RawStmt') assert.not.ok(statementEffects(n, {}).includes('unknown'), n);
  }
});

effects('a node name the table lacks is unknown: fail closed', () => {
  assert.equal(statementEffects('FutureStmt', {}), ['unknown']);
});

effects('refinements read the node', () => {
  assert.equal(statementEffects('CopyStmt', { is_from: true }), ['write']);
  assert.equal(statementEffects('CopyStmt', { filename: '/etc/passwd' }), ['read', 'admin']);
  assert.ok(statementEffects('DeleteStmt', {}).includes('destroy'));
  assert.not.ok(statementEffects('DeleteStmt', { whereClause: {} }).includes('destroy'));
  assert.ok(statementEffects('VariableSetStmt', { kind: 'VAR_SET_VALUE', name: 'role' }).includes('privilege'));
});

effects.run();

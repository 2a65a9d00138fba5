import { suite } from '../../../test/harness/suite.js';
import * as assert from 'uvu/assert';
import { analyzeSql, initSqlParser } from './analyze.js';
import { sqlFacts } from './facts.js';
import { CORPUS } from './facts.corpus.js';
import { knownStatementNodes } from './statement-nodes.js';

interface Case {
  line: number;
  effects: string[];
  tables: string[];
  sql: string;
}

const cases: Case[] = CORPUS.split('\n').flatMap((text, i) => {
  if (text.trim() === '' || text.startsWith('#')) return [];
  const [effects, tables, ...sql] = text.split(' | ');
  const words = (s: string | undefined) => (s === undefined || s.trim() === '-' ? [] : s.trim().split(/\s+/));
  return [{ line: i, effects: words(effects), tables: words(tables), sql: sql.join(' | ') }];
});

/** Nodes that never stand as a statement of their own in the parser's output. */
const INTERNAL_NODES = new Set(['RawStmt', 'SetOperationStmt', 'PLAssignStmt']);

const corpus = suite('sqlFacts over the corpus');
corpus.before(() => initSqlParser());

corpus('the corpus is large', () => {
  assert.ok(cases.length >= 350, `${cases.length} statements`);
});

corpus('every statement has sensible facts: its kind, at least one effect, the effects and tables expected', () => {
  const failures: string[] = [];
  for (const c of cases) {
    const a = analyzeSql(c.sql);
    if (!a.ok || a.statements.length !== 1) {
      failures.push(`line ${c.line}: does not parse as one statement: ${a.ok ? a.statements.length : a.error}`);
      continue;
    }
    const s = a.statements[0]!;
    const f = sqlFacts(s);
    if (!f.ok) {
      failures.push(`line ${c.line}: ${f.error}`);
      continue;
    }
    const { kinds, effects, tables } = f.facts;
    const found = tables.map((t) => `${t.access[0]}:${t.qualified ?? t.name}`);
    if (!kinds.has(s.kind)) failures.push(`line ${c.line}: kinds lack ${s.kind}`);
    if (effects.size === 0) failures.push(`line ${c.line}: no effect`);
    if (effects.has('unknown')) failures.push(`line ${c.line}: unknown effect`);
    const missingEffects = c.effects.filter((e) => !effects.has(e as never));
    const missingTables = c.tables.filter((t) => !found.includes(t));
    if (missingEffects.length > 0 || missingTables.length > 0) {
      failures.push(`line ${c.line}: ${c.sql}\n  missing ${[...missingEffects, ...missingTables].join(' ')}; found ${[...effects].join(' ')} | ${found.join(' ')}`);
    }
  }
  assert.equal(failures, []);
});

corpus('the corpus exercises every statement node libpg-query knows', () => {
  const seen = new Set<string>();
  for (const c of cases) {
    const a = analyzeSql(c.sql);
    if (!a.ok) continue;
    for (const s of a.statements) {
      const f = sqlFacts(s);
      if (f.ok) for (const k of f.facts.kinds) seen.add(k);
    }
  }
  assert.equal(knownStatementNodes().filter((n) => !seen.has(n) && !INTERNAL_NODES.has(n)), []);
});

corpus.run();

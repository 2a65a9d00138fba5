import { SqlAnalysisCache, type SqlAnalysis, type SqlStatement } from '../../../core/src/sql/analyze.js';
import { sqlFacts } from '../../../core/src/sql/facts.js';
import { preparedBodies } from '../../../core/src/sql/prepared.js';

/** What one recorded SQL command did, as analysts query it (a row of `agate.q_command_facts`). */
export interface CommandFacts {
  /** Top-level parse-node name of the text, e.g. `DeleteStmt`; '' for a text with no statement. */
  statement: string;
  /** Every statement node it runs, nested and prepared ones included (core/src/sql/facts.ts). */
  kinds: string[];
  /** Effect classes (core/src/sql/effects.ts), sorted. */
  effects: string[];
  /** Relations it names, as parallel arrays: bare name, schema ('' when unqualified), read/write. */
  table_names: string[];
  table_schemas: string[];
  table_access: ('read' | 'write')[];
  unbounded_write: boolean;
  /** Why the text could not be analysed (policy denied it for the same reason); '' when it could. */
  analysis_error: string;
}

const EMPTY: Omit<CommandFacts, 'analysis_error'> = { statement: '', kinds: [], effects: [], table_names: [], table_schemas: [], table_access: [] as ('read' | 'write')[], unbounded_write: false };

/**
 * The facts of a recorded SQL command, worked out the way the policy engine works them out
 * (services/policy/src/engine.ts): the recorded (masked) text the policy decided, parsed by
 * PostgreSQL's parser, plus, for `EXECUTE name`, the statement it runs, which the proxy records in
 * the `prepared_statements` attribute. Same text, same code, same facts: the views show what
 * policy matched on without the policy having to record it. The SQL parser must be loaded
 * (`initSqlParser`).
 */
export function commandFacts(cache: SqlAnalysisCache, text: string, prepared: string | undefined, memo?: WeakMap<SqlAnalysis, CommandFacts>): CommandFacts {
  const analysis = cache.analyzeShape(text);
  if (!analysis.ok) return { ...EMPTY, analysis_error: `the statement cannot be parsed: ${analysis.error}` };
  if (prepared !== undefined && prepared !== '') return factsOfStatements(cache, analysis, prepared);
  // Without a prepared body the facts follow from the shape's analysis alone: worked out once per shape.
  const known = memo?.get(analysis);
  if (known !== undefined) return known;
  const facts = factsOfStatements(cache, analysis, undefined);
  memo?.set(analysis, facts);
  return facts;
}

function factsOfStatements(cache: SqlAnalysisCache, analysis: Extract<SqlAnalysis, { ok: true }>, prepared: string | undefined): CommandFacts {
  const statements: SqlStatement[] = [...analysis.statements];
  if (prepared !== undefined && prepared !== '') {
    const bodies = preparedBodies(cache.analyze(prepared));
    if (bodies === undefined) return { ...EMPTY, statement: analysis.statements[0]?.kind ?? '', analysis_error: 'the prepared statement it executes cannot be parsed' };
    statements.push(...bodies);
  }
  const kinds = new Set<string>();
  const effects = new Set<string>();
  const tables = new Map<string, { name: string; schema: string; access: 'read' | 'write' }>();
  let unbounded = false;
  for (const s of statements) {
    const f = sqlFacts(s);
    if (!f.ok) return { ...EMPTY, statement: analysis.statements[0]?.kind ?? '', analysis_error: `the statement cannot be analysed: ${f.error}` };
    for (const k of f.facts.kinds) kinds.add(k);
    for (const e of f.facts.effects) effects.add(e);
    const ctes = cteNames(s.node);
    for (const t of f.facts.tables) {
      // Policy counts a CTE's name as a relation read (the safe side for a rule); for analysts
      // `WITH d AS (…) SELECT … FROM d` reads no table d.
      if (t.access === 'read' && t.qualified === undefined && ctes.has(t.name)) continue;
      const schema = t.qualified === undefined ? '' : t.qualified.slice(0, t.qualified.length - t.name.length - 1);
      tables.set(`${t.access}\0${schema}\0${t.name}`, { name: t.name, schema, access: t.access });
      // A write that returns or tests the rows it changes reads them too (TableRef.reads).
      if (t.reads === true) tables.set(`read\0${schema}\0${t.name}`, { name: t.name, schema, access: 'read' });
    }
    unbounded ||= f.facts.unboundedWrite;
  }
  const list = [...tables.values()];
  return {
    statement: analysis.statements[0]?.kind ?? '', kinds: [...kinds].sort(), effects: [...effects].sort(),
    table_names: list.map((t) => t.name), table_schemas: list.map((t) => t.schema), table_access: list.map((t) => t.access),
    unbounded_write: unbounded, analysis_error: '',
  };
}


/** Names of the common table expressions anywhere in a parse tree. */
function cteNames(node: unknown): Set<string> {
  const names = new Set<string>();
  const stack: unknown[] = [node];
  for (let v = stack.pop(); v !== undefined; v = stack.pop()) {
    if (Array.isArray(v)) stack.push(...v);
    else if (v !== null && typeof v === 'object') {
      const cte = (v as { CommonTableExpr?: { ctename?: unknown } }).CommonTableExpr;
      if (typeof cte?.ctename === 'string') names.add(cte.ctename);
      stack.push(...Object.values(v));
    }
  }
  return names;
}

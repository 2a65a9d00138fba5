import { SqlAnalysisCache, type SqlStatement } from '../../../../core/src/sql/analyze.js';
import { sqlFacts } from '../../../../core/src/sql/facts.js';

/** OCSF 1.3.0 Datastore Activity ids. */
const DATASTORE_ACTIVITY = { Unknown: 0, Read: 1, Update: 2, Connect: 3, Query: 4, Write: 5, Create: 6, Delete: 7, Other: 99 } as const;
type Activity = (typeof DATASTORE_ACTIVITY)[keyof typeof DATASTORE_ACTIVITY];

/*
 * Classified from PostgreSQL's own parse tree and the statement kinds nested in it (the same facts
 * policy matches on), so a leading comment, a CTE or a COPY subquery cannot disguise what a
 * statement does: `/* x *\/ DROP TABLE t` is a Delete, `WITH d AS (DELETE …) SELECT …` is a
 * Delete, `COPY (SELECT …) TO STDOUT` is a Query. A command of several statements, or one with
 * nested statements, is classified by its most consequential effect.
 */
const RANK: readonly Activity[] = [DATASTORE_ACTIVITY.Delete, DATASTORE_ACTIVITY.Create, DATASTORE_ACTIVITY.Update, DATASTORE_ACTIVITY.Write, DATASTORE_ACTIVITY.Query];

function kindActivity(kind: string, node: Record<string, unknown> | undefined): Activity {
  switch (kind) {
    case 'DeleteStmt': case 'DropStmt': case 'TruncateStmt': case 'DropRoleStmt': case 'DropdbStmt': case 'DropOwnedStmt': case 'DropTableSpaceStmt': case 'DropSubscriptionStmt':
      return DATASTORE_ACTIVITY.Delete;
    case 'UpdateStmt': case 'RenameStmt': case 'GrantStmt': case 'GrantRoleStmt': case 'AlterOwnerStmt': case 'CommentStmt':
      return DATASTORE_ACTIVITY.Update;
    case 'InsertStmt': case 'MergeStmt':
      return DATASTORE_ACTIVITY.Write;
    case 'CopyStmt':
      // COPY … FROM loads rows into a table; COPY … TO reads them out.
      return node?.is_from === true ? DATASTORE_ACTIVITY.Write : DATASTORE_ACTIVITY.Query;
    case 'SelectStmt': case 'ExplainStmt': case 'VariableShowStmt':
      return DATASTORE_ACTIVITY.Query;
    default:
      if (kind.startsWith('Create') || kind === 'IndexStmt' || kind === 'ViewStmt' || kind === 'DefineStmt') return DATASTORE_ACTIVITY.Create;
      if (kind.startsWith('Alter')) return DATASTORE_ACTIVITY.Update;
      return DATASTORE_ACTIVITY.Other;
  }
}

const cache = new SqlAnalysisCache();

function statementActivity(s: SqlStatement): Activity {
  const node = s.node[s.kind] as Record<string, unknown> | undefined;
  const facts = sqlFacts(s);
  // A statement the facts walk cannot read is classified by its top-level kind alone.
  const kinds = facts.ok ? facts.facts.kinds : new Set([s.kind]);
  const found = new Set<Activity>([...kinds].map((k) => kindActivity(k, k === s.kind ? node : undefined)));
  // A nested COPY cannot occur; for the top-level one, its own direction decides (its query only reads).
  if (s.kind === 'CopyStmt') return kindActivity(s.kind, node);
  return RANK.find((a) => found.has(a)) ?? DATASTORE_ACTIVITY.Other;
}

/** The Datastore Activity of a SQL text; Other when it cannot be parsed or has no statement. */
export function sqlActivity(text: string): Activity {
  // Export batches repeat the same statement shapes: parsed once each (the parser must be loaded).
  const analysis = cache.analyzeShape(text);
  if (!analysis.ok || analysis.statements.length === 0) return DATASTORE_ACTIVITY.Other;
  const found = new Set(analysis.statements.map(statementActivity));
  return RANK.find((a) => found.has(a)) ?? DATASTORE_ACTIVITY.Other;
}

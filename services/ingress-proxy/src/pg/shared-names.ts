/**
 * PostgreSQL keeps one set of prepared-statement names for SQL `PREPARE` and the protocol's Parse,
 * and one set of portal names for SQL `DECLARE` and the protocol's Bind. So SQL can drop what a
 * Parse or Bind made (`DEALLOCATE`, `DISCARD ALL`, `CLOSE`), make another under the same name
 * (`PREPARE`, `DECLARE`), and run a Bind's portal without an Execute (`FETCH`, `MOVE`). Agate
 * decides a portal's statement at its Execute, from what it saw Parse and Bind carry: this module
 * reads which of those names one SQL statement touches, so the engine can forget a name the
 * server drops and refuse a fetch that would run a statement Agate never decided.
 */

type Node = Record<string, unknown>;

/** What one statement does to the names the protocol shares with SQL. */
export type NameUse =
  /** `FETCH` or `MOVE` of a portal: runs (more of) its statement. */
  | { kind: 'fetchPortal'; name: string; verb: 'FETCH' | 'MOVE' }
  /** `CLOSE name`, `CLOSE ALL` (no name), `DECLARE name` (drops any portal of that name first), `DISCARD ALL`. */
  | { kind: 'dropPortals'; name?: string }
  /** `DEALLOCATE name`, `DEALLOCATE ALL` (no name), `DISCARD ALL`. */
  | { kind: 'dropStatements'; name?: string };

/** A cheap test before any parse: a statement with none of these words touches no shared name. */
export function mayUseSharedNames(text: string): boolean {
  return /\b(fetch|move|close|declare|deallocate|discard)\b/i.test(text);
}

/**
 * The shared names a top-level statement's parse node touches. These statements are never nested
 * in another (PREPARE, EXPLAIN and CREATE … AS take none of them), so the top level is enough.
 */
export function sharedNameUses(node: Node): NameUse[] {
  const kind = Object.keys(node)[0];
  const body = (node[kind ?? ''] ?? {}) as Node;
  const name = typeof body.portalname === 'string' ? body.portalname : undefined;
  switch (kind) {
    case 'FetchStmt':
      return name === undefined ? [] : [{ kind: 'fetchPortal', name, verb: body.ismove === true ? 'MOVE' : 'FETCH' }];
    case 'ClosePortalStmt':
      return [{ kind: 'dropPortals', name }];
    case 'DeclareCursorStmt':
      // The server refuses a DECLARE of a name in use; Agate forgets it all the same, failing closed.
      return name === undefined ? [] : [{ kind: 'dropPortals', name }];
    case 'DeallocateStmt':
      return [{ kind: 'dropStatements', name: body.isall === true || typeof body.name !== 'string' ? undefined : body.name }];
    case 'DiscardStmt':
      return body.target === 'DISCARD_ALL' ? [{ kind: 'dropPortals' }, { kind: 'dropStatements' }] : [];
    default:
      return [];
  }
}

import type { Node } from 'libpg-query';

/**
 * What a statement does, in words a policy can use without listing parse-node names. Computed
 * from the parse tree, so "deny destroy" covers every spelling PostgreSQL has for it, today's and
 * those a new node type adds (a node type this table does not know is `unknown`, refused by
 * default).
 *
 * - `read`: reads data (SELECT, COPY TO, cursors, EXPLAIN, LOCK … IN ACCESS SHARE or ROW SHARE
 *   MODE, expressions in PL/pgSQL code).
 * - `write`: changes rows (INSERT, UPDATE, DELETE, MERGE, COPY FROM, TRUNCATE, CREATE TABLE AS,
 *   REFRESH MATERIALIZED VIEW, large-object writes such as `lo_put`) or locks them against
 *   writers (`SELECT … FOR UPDATE / NO KEY UPDATE / SHARE / KEY SHARE`).
 * - `destroy`: removes objects or rows wholesale: every DROP (DROP OWNED, DROP DATABASE, DROP
 *   SCHEMA … CASCADE included), TRUNCATE, a DELETE or UPDATE without WHERE, a MERGE that can
 *   DELETE, ALTER … DROP COLUMN / DROP CONSTRAINT / DETACH PARTITION / NO INHERIT, ALTER DOMAIN
 *   … DROP CONSTRAINT, `lo_unlink`/`lo_truncate`.
 * - `ddl`: creates, alters or drops a schema object.
 * - `privilege`: changes who may do what: GRANT/REVOKE, roles, owners, row-level security,
 *   user mappings, SECURITY DEFINER, SET ROLE / SET SESSION AUTHORIZATION.
 * - `session`: SET/RESET/SHOW, transactions, PREPARE/EXECUTE/DEALLOCATE, LISTEN/NOTIFY, DISCARD.
 * - `code`: defines or runs server-side code: functions, procedures, DO, CALL, triggers, rules,
 *   event triggers, languages, extensions, LOAD.
 * - `admin`: operates the server: VACUUM/ANALYZE, CLUSTER, REINDEX, CHECKPOINT, LOCK in a mode
 *   stronger than ROW SHARE, LOAD,
 *   ALTER SYSTEM, databases, tablespaces, replication, COPY to or from a server file or program,
 *   calls of built-ins that reach server files or processes (`pg_read_file`, `lo_import`, …),
 *   take advisory locks that stop other sessions, reset the statistics, or work replication
 *   slots and logical decoding (see facts.ts FUNCTION_EFFECTS); two-phase commit (`PREPARE
 *   TRANSACTION`, `COMMIT PREPARED`, `ROLLBACK PREPARED`), which outlives the session.
 * - `dynamic`: runs SQL whose text is only known at run time (PL/pgSQL `EXECUTE` of a
 *   non-constant, `dblink`, a `pg_cron` job, `query_to_xml` of a non-constant), and a `FETCH`,
 *   `MOVE` or `CLOSE` inside code or `cursor_to_xml`, whose portal is named at run time (it may be one the client
 *   bound with the extended protocol, running a statement no text shows).
 * - `opaque`: defines code whose body Agate cannot read (a language other than sql and plpgsql),
 *   or runs a program on the database server (`COPY … PROGRAM`: a shell command, not SQL).
 * - `unknown`: a statement node this version of Agate does not classify.
 * - `stored`: runs code stored in the database that its text does not show, made earlier by
 *   anyone (a trigger, rule, view, row security policy, default, constraint or index expression
 *   of a relation it touches, an event trigger its DDL fires, a function, operator or cast): the
 *   proxy finds it in the target's catalog (stored-code.ts), never the parse tree.
 */
export type SqlEffect = 'read' | 'write' | 'destroy' | 'ddl' | 'privilege' | 'session' | 'code' | 'admin' | 'dynamic' | 'opaque' | 'unknown' | 'stored';

export const SQL_EFFECTS: readonly SqlEffect[] = ['read', 'write', 'destroy', 'ddl', 'privilege', 'session', 'code', 'admin', 'dynamic', 'opaque', 'unknown', 'stored'];

/**
 * Effects a statement cannot be allowed with unless the allowing rule names them in
 * `match.sql.effects`: what the statement will do is not in its text, so neither a permissive rule
 * about something else nor `default: allow` may let it through (as the shell side refuses a line
 * whose program is only known at run time).
 */
export const GUARDED_EFFECTS: readonly SqlEffect[] = ['dynamic', 'opaque', 'unknown', 'stored'];

/** Every parse-node name of a statement that libpg-query's type definitions know. */
type NodeName = Node extends infer N ? (N extends Record<infer K, unknown> ? K & string : never) : never;
type StatementNodeName = Extract<NodeName, `${string}Stmt`>;

/**
 * The effects of each statement node on its own (nested statements add theirs). `Record` over
 * every statement node name makes the compiler refuse a libpg-query upgrade that adds a node type
 * until it is classified here; a name missing at run time still yields `unknown`.
 */
export const STATEMENT_EFFECTS: Readonly<Record<StatementNodeName, readonly SqlEffect[]>> = {
  AlterCollationStmt: ['ddl'],
  AlterDatabaseRefreshCollStmt: ['admin'],
  AlterDatabaseSetStmt: ['admin'],
  AlterDatabaseStmt: ['ddl', 'admin'],
  AlterDefaultPrivilegesStmt: ['privilege'],
  AlterDomainStmt: ['ddl'],
  AlterEnumStmt: ['ddl'],
  AlterEventTrigStmt: ['ddl', 'code'],
  AlterExtensionContentsStmt: ['ddl'],
  AlterExtensionStmt: ['ddl', 'code', 'admin'],
  AlterFdwStmt: ['ddl'],
  AlterForeignServerStmt: ['ddl'],
  AlterFunctionStmt: ['ddl', 'code'],
  AlterObjectDependsStmt: ['ddl'],
  AlterObjectSchemaStmt: ['ddl'],
  AlterOpFamilyStmt: ['ddl'],
  AlterOperatorStmt: ['ddl'],
  AlterOwnerStmt: ['ddl', 'privilege'],
  AlterPolicyStmt: ['ddl', 'privilege'],
  AlterPublicationStmt: ['ddl', 'admin'],
  AlterRoleSetStmt: ['privilege'],
  AlterRoleStmt: ['privilege'],
  AlterSeqStmt: ['ddl'],
  AlterStatsStmt: ['ddl'],
  AlterSubscriptionStmt: ['ddl', 'admin'],
  AlterSystemStmt: ['admin'],
  AlterTSConfigurationStmt: ['ddl'],
  AlterTSDictionaryStmt: ['ddl'],
  AlterTableMoveAllStmt: ['ddl', 'admin'],
  AlterTableSpaceOptionsStmt: ['admin'],
  AlterTableStmt: ['ddl'],
  AlterTypeStmt: ['ddl'],
  AlterUserMappingStmt: ['ddl', 'privilege'],
  CallStmt: ['code'],
  CheckPointStmt: ['admin'],
  ClosePortalStmt: ['session'],
  ClusterStmt: ['admin'],
  CommentStmt: ['ddl'],
  CompositeTypeStmt: ['ddl'],
  ConstraintsSetStmt: ['session'],
  CopyStmt: [], // read or write by direction: see statementEffects
  CreateAmStmt: ['ddl', 'admin'],
  CreateCastStmt: ['ddl'],
  CreateConversionStmt: ['ddl'],
  CreateDomainStmt: ['ddl'],
  CreateEnumStmt: ['ddl'],
  CreateEventTrigStmt: ['ddl', 'code'],
  CreateExtensionStmt: ['ddl', 'code', 'admin'],
  CreateFdwStmt: ['ddl', 'admin'],
  CreateForeignServerStmt: ['ddl'],
  CreateForeignTableStmt: ['ddl'],
  CreateFunctionStmt: ['ddl', 'code'],
  CreateOpClassStmt: ['ddl'],
  CreateOpFamilyStmt: ['ddl'],
  CreatePLangStmt: ['ddl', 'code', 'admin'],
  CreatePolicyStmt: ['ddl', 'privilege'],
  CreatePublicationStmt: ['ddl', 'admin'],
  CreateRangeStmt: ['ddl'],
  CreateRoleStmt: ['privilege'],
  CreateSchemaStmt: ['ddl'],
  CreateSeqStmt: ['ddl'],
  CreateStatsStmt: ['ddl'],
  CreateStmt: ['ddl'],
  CreateSubscriptionStmt: ['ddl', 'admin'],
  CreateTableAsStmt: ['ddl', 'write'],
  CreateTableSpaceStmt: ['ddl', 'admin'],
  CreateTransformStmt: ['ddl'],
  CreateTrigStmt: ['ddl', 'code'],
  CreateUserMappingStmt: ['ddl', 'privilege'],
  CreatedbStmt: ['ddl', 'admin'],
  DeallocateStmt: ['session'],
  DeclareCursorStmt: ['read'],
  DefineStmt: ['ddl'],
  DeleteStmt: ['write'],
  DiscardStmt: ['session'],
  DoStmt: ['code'],
  DropOwnedStmt: ['destroy', 'privilege'],
  DropRoleStmt: ['destroy', 'privilege'],
  DropStmt: ['destroy', 'ddl'],
  DropSubscriptionStmt: ['destroy', 'ddl', 'admin'],
  DropTableSpaceStmt: ['destroy', 'ddl', 'admin'],
  DropUserMappingStmt: ['destroy', 'privilege'],
  DropdbStmt: ['destroy', 'ddl', 'admin'],
  ExecuteStmt: ['session'],
  ExplainStmt: ['read'],
  FetchStmt: ['read'],
  GrantRoleStmt: ['privilege'],
  GrantStmt: ['privilege'],
  ImportForeignSchemaStmt: ['ddl'],
  IndexStmt: ['ddl'],
  InsertStmt: ['write'],
  ListenStmt: ['session'],
  LoadStmt: ['code', 'admin'],
  LockStmt: [], // by lock mode: see statementEffects
  MergeStmt: ['write'],
  NotifyStmt: ['session'],
  // Only inside PL/pgSQL assignments and SQL function bodies: an expression.
  PLAssignStmt: ['read'],
  PrepareStmt: ['session'],
  // The parser's wrapper around each statement; never in its output, so never expected here.
  RawStmt: ['unknown'],
  ReassignOwnedStmt: ['privilege'],
  RefreshMatViewStmt: ['write'],
  ReindexStmt: ['admin'],
  RenameStmt: ['ddl'],
  ReplicaIdentityStmt: ['ddl'],
  ReturnStmt: ['read'],
  RuleStmt: ['ddl', 'code'],
  SecLabelStmt: ['ddl', 'privilege'],
  SelectStmt: ['read'],
  SetOperationStmt: ['read'],
  TransactionStmt: ['session'],
  TruncateStmt: ['write', 'destroy'],
  UnlistenStmt: ['session'],
  UpdateStmt: ['write'],
  VacuumStmt: ['admin'],
  VariableSetStmt: ['session'],
  VariableShowStmt: ['session'],
  ViewStmt: ['ddl'],
};

/** ALTER TABLE subcommands that remove a column, a constraint, or rows from the table's view. */
const DESTROYING_SUBCOMMANDS = new Set(['AT_DropColumn', 'AT_DropConstraint', 'AT_DetachPartition', 'AT_DetachPartitionFinalize', 'AT_DropInherit']);
const PRIVILEGE_SUBCOMMANDS = new Set(['AT_ChangeOwner', 'AT_EnableRowSecurity', 'AT_DisableRowSecurity', 'AT_ForceRowSecurity', 'AT_NoForceRowSecurity']);
/**
 * Settings whose change is a change of identity. The server finds a setting by its name in any
 * case (`SET "Role" TO x` is `SET ROLE x`), so names are compared in lower case.
 */
const IDENTITY_SETTINGS = new Set(['role', 'session_authorization']);

type Obj = Record<string, unknown>;
const obj = (v: unknown): Obj | undefined => (v !== null && typeof v === 'object' && !Array.isArray(v) ? (v as Obj) : undefined);
const list = (v: unknown): unknown[] => (Array.isArray(v) ? v : []);

/**
 * The effects of one statement node, its own fields considered (nested statements are visited
 * separately and add theirs). Never empty: a node name the table lacks is `unknown`.
 */
export function statementEffects(kind: string, node: Obj): SqlEffect[] {
  const base = (STATEMENT_EFFECTS as Record<string, readonly SqlEffect[] | undefined>)[kind];
  if (base === undefined) return ['unknown'];
  const out = [...base];
  switch (kind) {
    case 'CopyStmt':
      out.push(node.is_from === true ? 'write' : 'read');
      // A file or program on the database server, rather than the client's stream.
      if (node.filename !== undefined || node.is_program === true) out.push('admin');
      if (node.is_program === true) out.push('opaque');
      break;
    case 'LockStmt':
      // ACCESS SHARE and ROW SHARE are what reads take (pg_dump locks every table it dumps so);
      // stronger modes block other sessions' writes or everything: operating the server.
      out.push(isReadLock(node) ? 'read' : 'admin');
      break;
    case 'DeleteStmt':
    case 'UpdateStmt':
      if (node.whereClause === undefined) out.push('destroy');
      break;
    case 'MergeStmt':
      for (const c of list(node.mergeWhenClauses)) if (obj(obj(c)?.MergeWhenClause)?.commandType === 'CMD_DELETE') out.push('destroy');
      break;
    case 'AlterTableStmt':
      for (const c of list(node.cmds)) {
        const subtype = obj(obj(c)?.AlterTableCmd)?.subtype;
        if (typeof subtype !== 'string') continue;
        if (DESTROYING_SUBCOMMANDS.has(subtype)) out.push('destroy');
        if (PRIVILEGE_SUBCOMMANDS.has(subtype)) out.push('privilege');
      }
      break;
    case 'AlterDomainStmt':
      if (node.subtype === 'X') out.push('destroy'); // ALTER DOMAIN … DROP CONSTRAINT
      break;
    case 'DropStmt':
      if (node.removeType === 'OBJECT_POLICY') out.push('privilege');
      break;
    case 'SelectStmt':
      if (node.intoClause !== undefined) out.push('ddl', 'write'); // SELECT … INTO creates a table
      // Row locks are written into the rows themselves and block other sessions' UPDATE/DELETE.
      if (isRowLocking(node)) out.push('write');
      break;
    case 'RenameStmt':
      if (node.renameType === 'OBJECT_ROLE') out.push('privilege');
      if (node.renameType === 'OBJECT_DATABASE' || node.renameType === 'OBJECT_TABLESPACE') out.push('admin');
      break;
    case 'CreateFunctionStmt':
    case 'AlterFunctionStmt':
      for (const o of [...list(node.options), ...list(node.actions)]) {
        const d = obj(obj(o)?.DefElem);
        if (d?.defname === 'security' && obj(obj(d.arg)?.Boolean)?.boolval === true) out.push('privilege');
      }
      break;
    case 'TransactionStmt':
      // A prepared transaction outlives the session (its locks held, its writes pending) and any
      // session of the role may finish it: COMMIT or ROLLBACK PREPARED acts on another session's.
      if (node.kind === 'TRANS_STMT_PREPARE' || node.kind === 'TRANS_STMT_COMMIT_PREPARED' || node.kind === 'TRANS_STMT_ROLLBACK_PREPARED') out.push('admin');
      break;
    case 'VariableSetStmt':
      if (typeof node.name === 'string' && IDENTITY_SETTINGS.has(node.name.toLowerCase())) out.push('privilege');
      break;
  }
  return out;
}

/** `SELECT … FOR UPDATE | NO KEY UPDATE | SHARE | KEY SHARE`: it takes row locks. */
export function isRowLocking(node: Obj): boolean {
  return Array.isArray(node.lockingClause) && node.lockingClause.length > 0;
}

/** LOCK … IN ACCESS SHARE MODE (1) or ROW SHARE MODE (2): the locks SELECT and SELECT FOR UPDATE take. */
export function isReadLock(node: Obj): boolean {
  return typeof node.mode === 'number' && node.mode <= 2;
}

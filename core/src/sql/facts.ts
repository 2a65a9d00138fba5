import { analyzeSql, type SqlStatement } from './analyze.js';
import { isReadLock, isRowLocking, statementEffects, type SqlEffect } from './effects.js';
import { doBlockFunction, plpgsqlPieces, UnreadableCode } from './plpgsql.js';

/**
 * The name of the relation a statement changes or reads without naming it: `DROP OWNED`,
 * `REASSIGN OWNED`, a `CASCADE` that reaches whatever depends on what it drops, `GRANT … ON ALL
 * TABLES IN SCHEMA s`, `ALTER SCHEMA s RENAME` (every `s.x` gets another name, so a rule naming
 * `s.x` would no longer know it); a built-in handed a relation it reads or writes as a value
 * Agate cannot read before it runs (`table_to_xml(t, …)` with `t` a column or an OID,
 * `database_to_xml(…)`, `nextval($1)`); the planner's statistics (sample values of every analysed
 * column). With a schema (`s.*`) only that schema's relations are reached. A refusing or holding
 * rule with table conditions matches it; an allow rule only when its globs match `*`.
 */
export const EVERY_TABLE = '*';

/** A relation a statement names, and whether it reads it or changes it. */
interface TableRef {
  /** The relation's name, or {@link EVERY_TABLE}. */
  name: string;
  /** `schema.name` when the statement qualifies it. */
  qualified: string | undefined;
  /**
   * `write`: the statement changes the relation's rows, definition, privileges or locks (a
   * `LOCK` above ROW SHARE; `SELECT … FOR UPDATE / NO KEY UPDATE / SHARE / KEY SHARE` locks the
   * rows of every relation in its FROM, `OF` lists or not, since they block other sessions'
   * writes), or creates a view over it (a write path: see `Frame.through`).
   */
  access: 'read' | 'write';
  /**
   * On a write: the statement also reads the rows it changes, so a refusing or holding rule on
   * reads of the relation matches it (an allow rule on reads is not widened to the write). The
   * rows come back or are tested: locked rows (`SELECT … FOR UPDATE`), the target of UPDATE,
   * DELETE, MERGE and `INSERT … ON CONFLICT`, a view's query (run whenever the view is read),
   * an index or ALTER TABLE evaluating an expression on every row (an error quotes the row it
   * fails on), and rules, triggers and row security policies, which are handed the rows.
   */
  reads?: true;
}

/** What a policy rule can match on in one top-level SQL statement, everything it runs included. */
export interface SqlFacts {
  /**
   * The top-level parse-node name and every statement node it runs: nested ones (CTEs, EXPLAIN,
   * PREPARE, rule actions), MERGE actions (`DeleteStmt` for `WHEN MATCHED THEN DELETE`), and the
   * statements in the body of a DO block or of a function or procedure it creates.
   */
  kinds: ReadonlySet<string>;
  /** Effect classes of all of those (see effects.ts); never empty. */
  effects: ReadonlySet<SqlEffect>;
  /** Relations named anywhere in all of those. */
  tables: readonly TableRef[];
  /** An UPDATE or DELETE somewhere in it has no WHERE clause. */
  unboundedWrite: boolean;
  /**
   * Settings changed by SQL the statement carries as text (a function or DO body, an EXECUTE'd
   * constant, a query handed to a built-in), in lower case; `*` for a `set_config` whose setting
   * is known only at run time. Their values are not checked there (the text's own SETs are).
   */
  codeSettings: ReadonlySet<string>;
  /**
   * Names of the functions it calls, written or not (a call, a field selection read as one, a
   * function an operator, cast, trigger or aggregate it defines binds): the last name as parsed
   * (`f`), and `schema.f` when qualified. What a function made earlier runs is not in the text:
   * the proxy looks these names up (stored-code.ts).
   */
  calls: ReadonlySet<string>;
  /** Operator symbols it applies (`###`, `schema.###` when qualified): an operator calls a function. */
  operators: ReadonlySet<string>;
  /** Type names it casts a value to (`x::t`, `CAST(x AS t)`): a cast or a type's input function may be code. */
  types: ReadonlySet<string>;
}

type SqlFactsResult = { ok: true; facts: SqlFacts } | { ok: false; error: string };

type Obj = Record<string, unknown>;

/** SQL strings inside SQL strings (a DO block that EXECUTEs a DO block…) are read this deep. */
const MAX_TEXT_DEPTH = 8;

/** Per statement, the fields whose relations it writes (every other relation it names, it reads). */
const WRITE_FIELDS: Readonly<Record<string, readonly string[]>> = {
  InsertStmt: ['relation'],
  UpdateStmt: ['relation'],
  DeleteStmt: ['relation'],
  MergeStmt: ['relation'],
  TruncateStmt: ['relations'],
  // COPY FROM only; COPY TO reads. LOCK in a mode stronger than ROW SHARE (see statement()).
  CopyStmt: ['relation'],
  AlterTableStmt: ['relation'],
  LockStmt: ['relations'],
  IndexStmt: ['relation'],
  // A child or partition's rows show in its parent: creating one writes the parent.
  CreateStmt: ['relation', 'inhRelations'],
  CreateForeignTableStmt: ['base'],
  CreateTableAsStmt: ['into'],
  SelectStmt: ['intoClause'],
  ViewStmt: ['view'],
  CreateSeqStmt: ['sequence'],
  AlterSeqStmt: ['sequence'],
  CreateTrigStmt: ['relation'],
  RuleStmt: ['relation'],
  CreatePolicyStmt: ['table'],
  AlterPolicyStmt: ['table'],
  RefreshMatViewStmt: ['relation'],
  ClusterStmt: ['relation'],
  VacuumStmt: ['rels'],
  ReindexStmt: ['relation'],
  RenameStmt: ['relation'],
  AlterObjectSchemaStmt: ['relation'],
  AlterObjectDependsStmt: ['relation'],
  GrantStmt: ['objects'],
};

/**
 * ALTER TABLE subcommands that add or remove a table's rows from another's: INHERIT names the
 * parent, ATTACH/DETACH PARTITION the partition, whose rows are then written through the parent.
 * The table named in the subcommand is written.
 */
const INHERITANCE_CMDS = new Set(['AT_AddInherit', 'AT_DropInherit', 'AT_AttachPartition', 'AT_DetachPartition', 'AT_DetachPartitionFinalize']);

/**
 * ALTER TABLE subcommands that neither evaluate an expression on the table's rows nor hand them
 * to code: every other one (a constraint checked on every row, a type changed `USING` an
 * expression, a column added with its default or generation expression, a trigger or rule
 * enabled, the table joining a parent or attached as a partition, whose rows are then read
 * under the other's name) reads the table as well as changing it.
 */
const ALTER_WITHOUT_READ = new Set([
  'AT_ChangeOwner', 'AT_SetRelOptions', 'AT_ResetRelOptions', 'AT_ReplaceRelOptions', 'AT_SetOptions', 'AT_ResetOptions',
  'AT_SetStatistics', 'AT_SetStorage', 'AT_SetCompression', 'AT_DropColumn', 'AT_DropConstraint', 'AT_ColumnDefault',
  'AT_CookedColumnDefault', 'AT_SetNotNull', 'AT_DropNotNull', 'AT_DropExpression', 'AT_AddIdentity', 'AT_SetIdentity',
  'AT_DropIdentity', 'AT_AlterConstraint', 'AT_SetTableSpace', 'AT_SetAccessMethod', 'AT_SetLogged', 'AT_SetUnLogged',
  'AT_ClusterOn', 'AT_DropCluster', 'AT_ReplicaIdentity', 'AT_GenericOptions', 'AT_AlterColumnGenericOptions', 'AT_DropOf',
  'AT_DropOids', 'AT_DropInherit', 'AT_DetachPartition', 'AT_DetachPartitionFinalize', 'AT_DisableRowSecurity',
  'AT_NoForceRowSecurity', 'AT_DisableTrig', 'AT_DisableTrigAll', 'AT_DisableTrigUser', 'AT_DisableRule',
]);

/** Whether a statement reads the relation it writes in `field` (see `TableRef.reads`). */
function readsTarget(kind: string, node: Obj, field: string): boolean {
  switch (kind) {
    case 'UpdateStmt':
    case 'DeleteStmt':
    case 'MergeStmt':
    case 'IndexStmt':
    case 'CreateTrigStmt':
    case 'RuleStmt':
    case 'CreatePolicyStmt':
    case 'AlterPolicyStmt':
      return true;
    case 'InsertStmt':
      // DO UPDATE tests and returns the row already there; DO NOTHING tells whether there is one.
      return node.onConflictClause !== undefined;
    case 'AlterTableStmt':
      return field === 'relation' && list(node.cmds).some((cmd) => !ALTER_WITHOUT_READ.has(String(asObj(asObj(cmd)?.AlterTableCmd)?.subtype)));
    default:
      return false;
  }
}

/** Object types whose names (DROP, COMMENT ON, SECURITY LABEL) are relations… */
const RELATION_OBJECTS = new Set(['OBJECT_TABLE', 'OBJECT_VIEW', 'OBJECT_MATVIEW', 'OBJECT_SEQUENCE', 'OBJECT_INDEX', 'OBJECT_FOREIGN_TABLE']);
/** …and those named as `relation.member`, whose relation is written. */
const RELATION_MEMBER_OBJECTS = new Set(['OBJECT_COLUMN', 'OBJECT_TRIGGER', 'OBJECT_RULE', 'OBJECT_POLICY', 'OBJECT_TABCONSTRAINT']);

/**
 * Functions that run a SQL text they are given as an argument, and which argument it is.
 * `ts_rewrite(query, 'SELECT target, substitute …')`: only its two-argument form runs SQL.
 */
const SQL_TEXT_FUNCTIONS = new Map<string, { arg: number; args?: number }>([
  ...['query_to_xml', 'query_to_xmlschema', 'query_to_xml_and_xmlschema', 'ts_stat', 'pg_background_launch'].map((n): [string, { arg: number }] => [n, { arg: 0 }]),
  ['ts_rewrite', { arg: 1, args: 2 }],
]);

/**
 * Options of CREATE OPERATOR / AGGREGATE / TYPE / RANGE, ALTER OPERATOR that name a function the
 * server will call with the object's use: `CREATE OPERATOR ### (rightarg = oid, function =
 * lo_unlink)` then `SELECT ### 42` calls lo_unlink with no name in the text.
 */
const FUNCTION_OPTIONS = new Set([
  'function', 'procedure', 'restrict', 'join',
  'sfunc', 'finalfunc', 'combinefunc', 'serialfunc', 'deserialfunc', 'msfunc', 'minvfunc', 'mfinalfunc',
  'input', 'output', 'receive', 'send', 'typmod_in', 'typmod_out', 'analyze', 'subscript',
  'subtype_diff', 'canonical', 'multirange_type_name',
]);
/** Functions that run SQL on a connection of their own (possibly back to this server, as anyone). */
const REMOTE_SQL_FUNCTIONS = new Set(['dblink', 'dblink_exec', 'dblink_open', 'dblink_send_query', 'dblink_fetch']);
/** pg_cron: SQL run later, outside this session, as the job's owner (`cron.schedule(…, 'DELETE …')`). */
const DEFERRED_SQL_FUNCTIONS = new Set(['cron.schedule', 'cron.schedule_in_database', 'cron.alter_job']);
/**
 * Built-ins handed, as their first argument (`tbl`, `schema`), the relation whose rows they read
 * or write: a regclass (a name given as text, or an OID) or a schema's name. A rule naming the
 * relation must see it as if the statement named it (`table_to_xml('vault', …)` reads vault,
 * `setval('invoice_no', 1)` writes invoice_no).
 */
const RELATION_ARGUMENT = new Map<string, { arg: string; of: 'relation' | 'schema' | 'database'; write: boolean }>([
  ...['table_to_xml', 'table_to_xmlschema', 'table_to_xml_and_xmlschema'].map((n): [string, { arg: string; of: 'relation'; write: false }] => [n, { arg: 'tbl', of: 'relation', write: false }]),
  ...['schema_to_xml', 'schema_to_xmlschema', 'schema_to_xml_and_xmlschema'].map((n): [string, { arg: string; of: 'schema'; write: false }] => [n, { arg: 'schema', of: 'schema', write: false }]),
  ...['database_to_xml', 'database_to_xmlschema', 'database_to_xml_and_xmlschema'].map((n): [string, { arg: string; of: 'database'; write: false }] => [n, { arg: '', of: 'database', write: false }]),
  ...['nextval', 'setval'].map((n): [string, { arg: string; of: 'relation'; write: true }] => [n, { arg: '', of: 'relation', write: true }]),
]);
/**
 * Logical decoding: the changes of every table since the slot's position (values of every
 * column written), consumed (`get`) or not (`peek`). A read of every table, and admin.
 */
const DECODING_FUNCTIONS = new Set([
  'pg_logical_slot_get_changes', 'pg_logical_slot_peek_changes', 'pg_logical_slot_get_binary_changes', 'pg_logical_slot_peek_binary_changes',
]);
/** Catalogs holding sample values of every analysed column (most common values, histogram bounds). */
const STATISTICS_RELATIONS = new Set(['pg_stats', 'pg_statistic', 'pg_stats_ext', 'pg_stats_ext_exprs', 'pg_statistic_ext_data']);
/** Identifiers longer than this many bytes are truncated by the server (NAMEDATALEN - 1). */
const MAX_IDENTIFIER_BYTES = 63;
/**
 * Built-ins that fetch the rows of the portal their argument names: it may be one the client
 * bound with the extended protocol (`DELETE … RETURNING`, decided only at its Execute), which
 * the fetch would run.
 */
const PORTAL_READERS = new Set(['cursor_to_xml']);
const IDENTITY_SETTINGS = new Set(['role', 'session_authorization']);
/**
 * Built-in functions whose call is an effect of its own: reaching the server's files, processes,
 * WAL, replication slots, statistics or configuration, taking locks that stop other sessions, or
 * changing large objects.
 */
const ADMIN = ['admin'] as const;
const FUNCTION_EFFECTS: ReadonlyMap<string, readonly SqlEffect[]> = new Map<string, readonly SqlEffect[]>([
  ...[
    'pg_read_file', 'pg_read_binary_file', 'pg_ls_dir', 'pg_ls_logdir', 'pg_ls_waldir', 'pg_ls_tmpdir', 'pg_ls_archive_statusdir', 'pg_stat_file',
    'pg_ls_logicalsnapdir', 'pg_ls_logicalmapdir', 'pg_ls_replslotdir',
    'lo_export', 'pg_reload_conf', 'pg_terminate_backend', 'pg_cancel_backend', 'pg_rotate_logfile', 'pg_switch_wal', 'pg_promote',
    'pg_create_restore_point', 'pg_backup_start', 'pg_backup_stop', 'pg_create_physical_replication_slot', 'pg_create_logical_replication_slot',
    'pg_drop_replication_slot', 'pg_log_backend_memory_contexts', 'pg_file_write', 'pg_file_unlink',
    'pg_wal_replay_pause', 'pg_wal_replay_resume',
    // Replication slots and origins: a slot holds back WAL for everyone; advancing or copying one
    // moves what its consumer (another system) will receive; a message is written into the WAL.
    'pg_replication_slot_advance', 'pg_copy_physical_replication_slot', 'pg_copy_logical_replication_slot', 'pg_logical_emit_message',
    'pg_replication_origin_create', 'pg_replication_origin_drop', 'pg_replication_origin_advance', 'pg_replication_origin_session_setup',
    'pg_replication_origin_session_reset', 'pg_replication_origin_xact_setup', 'pg_replication_origin_xact_reset',
    // The server's own account of what ran (and what autovacuum goes by), erased.
    'pg_stat_reset', 'pg_stat_reset_shared', 'pg_stat_reset_single_table_counters', 'pg_stat_reset_single_function_counters',
    'pg_stat_reset_slru', 'pg_stat_reset_replication_slot', 'pg_stat_reset_subscription_stats', 'pg_stat_reset_backend_stats',
    'pg_stat_statements_reset',
    // Advisory locks: held by the agent, they stop every session that takes the same key (a
    // migration, a job queue) as a LOCK above ROW SHARE stops writers. Unlocking frees only the
    // session's own, and is left a read.
    'pg_advisory_lock', 'pg_advisory_lock_shared', 'pg_advisory_xact_lock', 'pg_advisory_xact_lock_shared',
    'pg_try_advisory_lock', 'pg_try_advisory_lock_shared', 'pg_try_advisory_xact_lock', 'pg_try_advisory_xact_lock_shared',
  ].map((n): [string, readonly SqlEffect[]] => [n, ADMIN]),
  ['lo_import', ['admin', 'write']],
  ...['lo_create', 'lo_creat', 'lo_from_bytea', 'lo_put', 'lowrite'].map((n): [string, readonly SqlEffect[]] => [n, ['write']]),
  ...['lo_unlink', 'lo_truncate', 'lo_truncate64'].map((n): [string, readonly SqlEffect[]] => [n, ['write', 'destroy']]),
]);

const facts = new WeakMap<SqlStatement, SqlFactsResult>();

/**
 * Facts of a parsed statement, computed once per parse tree (the analysis cache hands back the
 * same objects for a repeated text). The walk sees through every wrapper an agent could use to
 * hide a write: CTEs, EXPLAIN, PREPARE, MERGE actions, rule actions, the bodies of DO blocks and
 * of the functions a statement creates (PL/pgSQL through PostgreSQL's own PL/pgSQL parser, SQL
 * bodies through the SQL parser), and constant strings given to EXECUTE. What it cannot read
 * exactly (a body that does not parse) is an error: the caller refuses the statement.
 */
export function sqlFacts(statement: SqlStatement): SqlFactsResult {
  let f = facts.get(statement);
  if (f === undefined) {
    try {
      const c = new Collector();
      c.statement(statement.node, statement.text, 0);
      f = { ok: true, facts: c.facts() };
    } catch (err) {
      // Anything else (a parser out of memory, a stack overflow) refuses the statement too.
      f = { ok: false, error: err instanceof UnreadableCode ? err.message : `the statement could not be analysed: ${err instanceof Error ? err.message : String(err)}` };
    }
    facts.set(statement, f);
  }
  return f;
}

/** Where the walk is: the relations found here are written or read. */
interface Frame {
  value: unknown;
  write: boolean;
  /** Inside `CREATE SCHEMA s …`: the schema of the relations its elements name unqualified. */
  schema: string | undefined;
  /**
   * Inside a view's query: every relation it names is written, nested statements included. A
   * simple view is updatable, so INSERT/UPDATE/DELETE on it change its base table, and an
   * INSTEAD OF trigger can make any view a write path: creating the view opens that path.
   */
  through: boolean;
  /** The relation written here is also read (see `TableRef.reads`); views and row locks read through `through`. */
  reads?: boolean;
}

class Collector {
  readonly #kinds = new Set<string>();
  readonly #effects = new Set<SqlEffect>();
  readonly #tables: TableRef[] = [];
  /** `set_config(name, …)` calls whose setting name their SELECT pins (see #pinnedSettings). */
  readonly #settingNames = new WeakMap<Obj, string>();
  readonly #codeSettings = new Set<string>();
  readonly #calls = new Set<string>();
  readonly #operators = new Set<string>();
  readonly #types = new Set<string>();
  #unboundedWrite = false;

  facts(): SqlFacts {
    return {
      kinds: this.#kinds, effects: this.#effects, tables: this.#tables, unboundedWrite: this.#unboundedWrite, codeSettings: this.#codeSettings,
      calls: this.#calls, operators: this.#operators, types: this.#types,
    };
  }

  /** One top-level statement (`{ KindStmt: {...} }`) with its source text. */
  statement(node: Obj, text: string, depth: number): void {
    // An explicit stack instead of recursion: a hostile statement nested thousands deep is
    // walked to the end rather than cut short or overflowing the call stack.
    const stack: Frame[] = [{ value: node, write: false, schema: undefined, through: false }];
    let root = true;
    for (let frame = stack.pop(); frame !== undefined; frame = stack.pop()) {
      const { value, schema, through } = frame;
      const write = frame.write || through;
      if (value === null || typeof value !== 'object') continue;
      if (Array.isArray(value)) {
        for (const v of value) stack.push({ value: v, write, schema, through, reads: frame.reads });
        continue;
      }
      const o = value as Obj;
      if (typeof o.relname === 'string') {
        const qualifier = typeof o.schemaname === 'string' ? o.schemaname : schema;
        const reads = write && (through || frame.reads === true);
        this.#table(qualifier === undefined ? [o.relname] : [qualifier, o.relname], write, reads);
        if (STATISTICS_RELATIONS.has(o.relname) && (qualifier === undefined || qualifier === 'pg_catalog')) this.#table([EVERY_TABLE], write, reads);
      }
      for (const [key, child] of Object.entries(o)) {
        const c = asObj(child);
        if (c !== undefined && key.endsWith('Stmt')) {
          this.#enter(key, c, root ? text : undefined, depth);
          const writes = WRITE_FIELDS[key];
          const inSchema = key === 'CreateSchemaStmt' && typeof c.schemaname === 'string' ? c.schemaname : schema;
          for (const [field, v] of Object.entries(c)) {
            const written = writes !== undefined && writes.includes(field) && !(key === 'CopyStmt' && c.is_from !== true) && !(key === 'LockStmt' && isReadLock(c));
            // A view is a write path to what it reads; `SELECT … FOR UPDATE` locks the rows of
            // everything in its FROM (subqueries included: see rowLocking), which blocks writers.
            const locks = key === 'SelectStmt' && field === 'fromClause' && isRowLocking(c);
            stack.push({ value: v, write: written, schema: inSchema, through: through || (key === 'ViewStmt' && field === 'query') || locks, reads: written && readsTarget(key, c, field) });
          }
          continue;
        }
        if (c !== undefined && key === 'AlterTableCmd' && INHERITANCE_CMDS.has(String(c.subtype))) {
          // `ALTER TABLE kid INHERIT people`: kid's rows join people's, as CREATE TABLE … INHERITS;
          // `ALTER TABLE parent ATTACH PARTITION people`: an UPDATE of parent updates people.
          // An attached partition's rows are read under the parent's name.
          for (const [field, v] of Object.entries(c)) stack.push({ value: v, write: write || field === 'def', schema, through, reads: field === 'def' && c.subtype === 'AT_AttachPartition' });
          if (c.behavior === 'DROP_CASCADE') this.#table([EVERY_TABLE], true);
          continue;
        }
        if (c !== undefined && key === 'AlterTableCmd' && c.behavior === 'DROP_CASCADE') this.#table([EVERY_TABLE], true);
        if (c !== undefined && key === 'FuncCall') this.#call(c, depth);
        if (c !== undefined && key === 'A_Expr') addName(this.#operators, nameList(c.name));
        if (c !== undefined && key === 'TypeCast') addName(this.#types, nameList(asObj(c.typeName)?.names));
        if (c !== undefined && key === 'A_Indirection') for (const call of fieldCalls(c)) this.#call(call, depth);
        stack.push({ value: child, write, schema, through, reads: frame.reads });
      }
      root = false;
    }
  }

  /** Every statement of a SQL text found inside the statement (a body, an EXECUTE'd constant). */
  #text(sql: string, depth: number): void {
    if (depth >= MAX_TEXT_DEPTH) throw new UnreadableCode(`SQL inside SQL strings is nested more than ${MAX_TEXT_DEPTH} deep`);
    const analysis = analyzeSql(sql);
    if (!analysis.ok) throw new UnreadableCode(`SQL inside the statement does not parse: ${analysis.error}`);
    for (const s of analysis.statements) this.statement(s.node, s.text, depth + 1);
  }

  #enter(kind: string, node: Obj, text: string | undefined, depth: number): void {
    this.#kinds.add(kind);
    for (const e of statementEffects(kind, node)) this.#effects.add(e);
    for (const schema of unnamedTables(kind, node)) this.#table(schema === undefined ? [EVERY_TABLE] : [schema, EVERY_TABLE], true);
    if ((kind === 'UpdateStmt' || kind === 'DeleteStmt') && node.whereClause === undefined) this.#unboundedWrite = true;
    switch (kind) {
      case 'SelectStmt':
        this.#pinnedSettings(node);
        break;
      case 'VariableSetStmt':
        if (depth > 0 && typeof node.name === 'string') this.#codeSettings.add(node.name.toLowerCase());
        break;
      case 'MergeStmt':
        for (const w of list(node.mergeWhenClauses)) {
          const action = { CMD_DELETE: 'DeleteStmt', CMD_UPDATE: 'UpdateStmt', CMD_INSERT: 'InsertStmt' }[String(asObj(asObj(w)?.MergeWhenClause)?.commandType)];
          if (action !== undefined) this.#kinds.add(action);
        }
        break;
      case 'DropStmt':
        for (const o of list(node.objects)) this.#objectName(String(node.removeType), o);
        break;
      case 'CommentStmt':
      case 'SecLabelStmt':
        this.#objectName(String(node.objtype), node.object);
        break;
      case 'DoStmt':
        this.#doBlock(node, depth);
        break;
      case 'CallStmt': {
        // The procedure's call is the statement's field, not a FuncCall node of its own.
        const call = asObj(node.funccall);
        if (call !== undefined) this.#call(call, depth);
        break;
      }
      case 'FetchStmt':
      case 'ClosePortalStmt':
        // Inside a body, the portal may be one the client bound (the proxy checks top-level names).
        if (depth > 0) this.#effects.add('dynamic');
        break;
      case 'CreateFunctionStmt':
        this.#function(node, text, depth);
        break;
      case 'DefineStmt':
      case 'AlterOperatorStmt':
      case 'CreateRangeStmt':
        for (const o of list(node.definition ?? node.options ?? node.params)) {
          const d = asObj(asObj(o)?.DefElem);
          if (typeof d?.defname === 'string' && FUNCTION_OPTIONS.has(d.defname.toLowerCase())) this.#bound(nameList(d.arg));
        }
        break;
      case 'CreateCastStmt':
        this.#bound(nameList(asObj(node.func)?.objname));
        break;
      case 'CreateConversionStmt':
        this.#bound(nameList(node.func_name));
        break;
      case 'CreateTrigStmt':
      case 'CreateEventTrigStmt':
        this.#bound(nameList(node.funcname));
        break;
      case 'CreateTransformStmt':
        this.#bound(nameList(asObj(node.fromsql)?.objname));
        this.#bound(nameList(asObj(node.tosql)?.objname));
        break;
    }
  }

  /**
   * A function an object binds to be called later, by its use rather than by name (an operator,
   * an aggregate's steps, a cast, a trigger): its effects are the definition's, as if called with
   * arguments Agate cannot see (so SQL given as text is `dynamic`).
   */
  #bound(names: (string | undefined)[]): void {
    const name = names[names.length - 1];
    if (name === undefined) return;
    addName(this.#calls, names);
    const qualified = names.length > 1 ? `${String(names[names.length - 2])}.${name}` : name;
    if (SQL_TEXT_FUNCTIONS.has(name) || REMOTE_SQL_FUNCTIONS.has(name) || DEFERRED_SQL_FUNCTIONS.has(qualified)) this.#effects.add('dynamic');
    for (const e of FUNCTION_EFFECTS.get(name) ?? []) this.#effects.add(e);
    if (DECODING_FUNCTIONS.has(name)) {
      this.#table([EVERY_TABLE], false);
      this.#effects.add('admin');
    }
    if (name === 'set_config') {
      this.#kinds.add('VariableSetStmt');
      this.#effects.add('session');
      this.#effects.add('privilege');
    }
    if (name === 'pg_notify') {
      this.#kinds.add('NotifyStmt');
      this.#effects.add('session');
    }
  }

  /**
   * The relation (or schema) a built-in is handed as a value: its name when the argument is a
   * constant the server reads as one, else every relation (a column, a parameter, an OID).
   */
  #relationArgument(of: { arg: string; of: 'relation' | 'schema' | 'database'; write: boolean }, args: unknown[]): void {
    if (of.of === 'database') return this.#table([EVERY_TABLE], of.write);
    const byName = args.map((a) => asObj(asObj(a)?.NamedArgExpr)).find((n) => n?.name === of.arg);
    const first = byName?.arg ?? (asObj(args[0])?.NamedArgExpr === undefined ? args[0] : undefined);
    const text = constantText(first);
    if (of.of === 'schema') {
      // A `name` argument is taken as it is: no case folding, no quotes.
      return this.#table(text === undefined ? [EVERY_TABLE] : [text, EVERY_TABLE], of.write);
    }
    const names = text === undefined ? undefined : qualifiedName(text);
    this.#table(names ?? [EVERY_TABLE], of.write);
  }

  /**
   * `SELECT set_config(name, '…', false) FROM pg_settings WHERE name = 'x'` (pg_dump does this):
   * the WHERE clause pins the setting the call changes, so it is known without being a constant.
   */
  #pinnedSettings(select: Obj): void {
    const from = list(select.fromClause);
    const rel = from.length === 1 ? asObj(asObj(from[0])?.RangeVar) : undefined;
    if (rel?.relname !== 'pg_settings' || (rel.schemaname !== undefined && rel.schemaname !== 'pg_catalog')) return;
    const where = asObj(asObj(select.whereClause)?.A_Expr);
    const op = list(where?.name).map((n) => asObj(asObj(n)?.String)?.sval);
    if (where?.kind !== 'AEXPR_OP' || op.length !== 1 || op[0] !== '=' || !isColumn(where.lexpr, 'name')) return;
    const pinned = constantText(where.rexpr);
    if (pinned === undefined) return;
    for (const t of list(select.targetList)) {
      const call = asObj(asObj(asObj(asObj(t)?.ResTarget)?.val)?.FuncCall);
      if (call !== undefined && isColumn(list(call.args)[0], 'name')) this.#settingNames.set(call, pinned);
    }
  }

  /** A name list (`[schema, table]`, `[table, trigger]`) of an object that is or belongs to a relation. */
  #objectName(objtype: string, object: unknown): void {
    const names = list(asObj(asObj(object)?.List)?.items).map((i) => asObj(asObj(i)?.String)?.sval);
    if (names.length === 0 || names.some((n) => typeof n !== 'string')) return;
    if (RELATION_OBJECTS.has(objtype)) this.#table(names as string[], true);
    else if (RELATION_MEMBER_OBJECTS.has(objtype) && names.length > 1) this.#table((names as string[]).slice(0, -1), true);
  }

  #table(names: string[], write: boolean, reads = false): void {
    const name = names[names.length - 1]!;
    const qualified = names.length > 1 ? `${names[names.length - 2]}.${name}` : undefined;
    this.#tables.push({ name, qualified, access: write ? 'write' : 'read', ...(reads ? { reads: true as const } : {}) });
  }

  #doBlock(node: Obj, depth: number): void {
    const options = defElems(node.args);
    const language = stringValue(options.get('language')) ?? 'plpgsql';
    const body = stringValue(options.get('as'));
    if (language.toLowerCase() !== 'plpgsql') return void this.#effects.add('opaque');
    if (body === undefined) throw new UnreadableCode('a DO block without a body');
    this.#plpgsql(doBlockFunction(body), depth);
  }

  /** Definition time: creating a function is decided as everything its body would run. */
  #function(node: Obj, text: string | undefined, depth: number): void {
    const options = defElems(node.options);
    // `BEGIN ATOMIC … END` and `RETURN expr` bodies are parsed with the statement and walked with it.
    if (node.sql_body !== undefined) return;
    const language = (stringValue(options.get('language')) ?? '').toLowerCase();
    if (language === 'sql') {
      const body = list(asObj(asObj(options.get('as'))?.List)?.items ?? [options.get('as')]).map(stringValue);
      if (body.length !== 1 || body[0] === undefined) throw new UnreadableCode('a LANGUAGE sql function whose body is not one string');
      return this.#text(body[0], depth);
    }
    if (language === 'plpgsql') {
      if (text === undefined) throw new UnreadableCode('a PL/pgSQL function defined inside another statement');
      return this.#plpgsql(text, depth);
    }
    // C, internal, plpython, plperl, …: code Agate cannot read.
    this.#effects.add('opaque');
  }

  #plpgsql(createText: string, depth: number): void {
    for (const piece of plpgsqlPieces(createText)) {
      if (piece.kind === 'statement') this.#text(piece.text, depth);
      else if (piece.kind === 'expression') this.#text(`SELECT ${piece.text}`, depth);
      else if (piece.kind === 'portal') this.#effects.add('dynamic');
      else this.#dynamic(piece.text, depth);
    }
  }

  /**
   * The expression an EXECUTE runs: its own facts, and either the facts of the SQL it evaluates
   * to when that is a constant (`'DROP TABLE v'`, `'DROP ' || 'TABLE v'`), or `dynamic`.
   */
  #dynamic(expression: string, depth: number): void {
    this.#text(`SELECT ${expression}`, depth);
    const analysis = analyzeSql(`SELECT ${expression}`);
    const select = analysis.ok && analysis.statements.length === 1 ? asObj(analysis.statements[0]!.node.SelectStmt) : undefined;
    const targets = list(select?.targetList);
    const constant = targets.length === 1 && select?.fromClause === undefined ? constantText(asObj(asObj(targets[0])?.ResTarget)?.val) : undefined;
    if (constant === undefined) this.#effects.add('dynamic');
    else this.#text(constant, depth);
  }

  /** Function calls whose arguments are SQL or an identity, or whose call is an effect of its own. */
  #call(call: Obj, depth: number): void {
    const names = list(call.funcname).map((n) => asObj(asObj(n)?.String)?.sval);
    const name = names[names.length - 1];
    if (typeof name !== 'string') return;
    addName(this.#calls, names.map((n) => (typeof n === 'string' ? n : undefined)));
    const args = list(call.args);
    // A named argument (`query => '…'`) is not a constant: unless it is the SQL text, it hides which is.
    const named = args.map((a) => asObj(asObj(a)?.NamedArgExpr)).find((n) => n?.name === 'query');
    const first = named?.arg ?? args[0];
    const relation = RELATION_ARGUMENT.get(name);
    if (relation !== undefined) this.#relationArgument(relation, args);
    if (DECODING_FUNCTIONS.has(name)) {
      this.#table([EVERY_TABLE], false);
      this.#effects.add('admin');
    }
    if (relation?.write === true) this.#effects.add('write');
    const sqlText = SQL_TEXT_FUNCTIONS.get(name);
    if (sqlText !== undefined && (sqlText.args === undefined || sqlText.args === args.length)) {
      // Past the first argument, a named one hides which is the SQL: not a constant then.
      const sql = sqlText.arg === 0 ? constantText(first) : args.some((a) => asObj(a)?.NamedArgExpr !== undefined) ? undefined : constantText(args[sqlText.arg]);
      if (sql === undefined) this.#effects.add('dynamic');
      else this.#text(sql, depth);
    } else if (PORTAL_READERS.has(name) || REMOTE_SQL_FUNCTIONS.has(name) || (names.length > 1 && DEFERRED_SQL_FUNCTIONS.has(`${String(names[names.length - 2])}.${name}`))) {
      this.#effects.add('dynamic');
    } else if (FUNCTION_EFFECTS.has(name)) {
      for (const e of FUNCTION_EFFECTS.get(name)!) this.#effects.add(e);
    } else if (name === 'pg_notify') {
      // NOTIFY by another name: a rule naming NotifyStmt, or the session effect, must see it.
      this.#kinds.add('NotifyStmt');
      this.#effects.add('session');
    } else if (name === 'set_config') {
      // SET by another name, as pg_notify is NOTIFY: a rule naming VariableSetStmt, or the session effect, must see it.
      this.#kinds.add('VariableSetStmt');
      this.#effects.add('session');
      const setting = constantText(first) ?? this.#settingNames.get(call);
      if (setting === undefined || IDENTITY_SETTINGS.has(setting.toLowerCase())) this.#effects.add('privilege');
      if (depth > 0) this.#codeSettings.add(setting?.toLowerCase() ?? '*');
    }
  }
}

/**
 * The schemas whose relations a statement changes without naming them (undefined: any schema);
 * see {@link EVERY_TABLE}. ALTER TABLE … CASCADE subcommands are handled where they are walked.
 */
function unnamedTables(kind: string, node: Obj): (string | undefined)[] {
  switch (kind) {
    case 'DropOwnedStmt':
    case 'ReassignOwnedStmt':
    case 'DropdbStmt':
      return [undefined];
    case 'DropStmt':
    case 'TruncateStmt':
      // CASCADE drops (or empties) what depends on the objects named: columns, views and
      // constraints of other tables, tables referencing a truncated one, a schema's contents.
      return node.behavior === 'DROP_CASCADE' ? [undefined] : [];
    case 'GrantStmt':
      return node.targtype === 'ACL_TARGET_ALL_IN_SCHEMA' ? list(node.objects).map((o) => stringValue(o)) : [];
    case 'RenameStmt':
      return node.renameType === 'OBJECT_SCHEMA' && typeof node.subname === 'string' ? [node.subname] : [];
    default:
      return [];
  }
}

/**
 * `(x).f`, a field selection, is a call `f(x)` when `x` has no field `f` and a function `f` takes
 * it: `('/etc/passwd'::text).pg_read_file`, `(42::bigint).pg_advisory_lock`, with no FuncCall in
 * the tree. Each field name selected is read as such a call (a real field named like an
 * effectful built-in then counts as one: fail closed).
 */
export function fieldCalls(indirection: Obj): Obj[] {
  const out: Obj[] = [];
  let arg = indirection.arg;
  for (const step of list(indirection.indirection)) {
    const name = asObj(asObj(step)?.String)?.sval;
    if (typeof name === 'string') out.push({ funcname: [{ String: { sval: name } }], args: [arg] });
    arg = { A_Indirection: { arg, indirection: [step] } };
  }
  return out;
}

/**
 * The value of a string constant, a cast of one, or a `||` of such; undefined for anything else
 * (and for a chain deeper than any real one: it then counts as dynamic).
 */
function constantText(node: unknown, depth = 0): string | undefined {
  if (depth > 256) return undefined;
  const n = asObj(node);
  const aConst = asObj(n?.A_Const);
  if (aConst !== undefined) return stringValue(aConst);
  const cast = asObj(n?.TypeCast);
  if (cast !== undefined) return constantText(cast.arg, depth + 1);
  const expr = asObj(n?.A_Expr);
  if (expr?.kind === 'AEXPR_OP' && list(expr.name).length === 1 && asObj(asObj(list(expr.name)[0])?.String)?.sval === '||') {
    const left = constantText(expr.lexpr, depth + 1);
    const right = constantText(expr.rexpr, depth + 1);
    return left === undefined || right === undefined ? undefined : left + right;
  }
  return undefined;
}

/**
 * A relation's name as the server reads a regclass given as text (`stringToQualifiedNameList`):
 * dot-separated identifiers, blanks around them ignored, a quoted one taken as it is (`""` is a
 * quote), an unquoted one folded to lower case, each cut to 63 bytes; a database part is dropped.
 * Undefined for anything else (an OID, a syntax error), which the caller takes as any relation.
 */
export function qualifiedName(text: string): string[] | undefined {
  const names: string[] = [];
  let i = 0;
  const blank = (c: string | undefined) => c !== undefined && /^[ \t\n\r\f\v]$/.test(c);
  for (;;) {
    while (blank(text[i])) i++;
    let name = '';
    if (text[i] === '"') {
      for (i++; ; i++) {
        if (i >= text.length) return undefined;
        if (text[i] === '"') {
          if (text[i + 1] !== '"') break;
          i++;
        }
        name += text[i];
      }
      i++;
      if (name === '') return undefined;
    } else {
      const start = i;
      while (i < text.length && text[i] !== '.' && !blank(text[i])) i++;
      if (i === start) return undefined;
      name = text.slice(start, i).replace(/[A-Z]+/g, (c) => c.toLowerCase());
    }
    names.push(truncateIdentifier(name));
    while (blank(text[i])) i++;
    if (i >= text.length) break;
    if (text[i] !== '.') return undefined;
    i++;
  }
  // An all-digit text is an OID: which relation it is, only the server knows.
  if (names.length === 1 && /^[0-9]+$/.test(text.trim())) return undefined;
  return names.length > 3 ? undefined : names.slice(-2);
}

function truncateIdentifier(name: string): string {
  if (Buffer.byteLength(name) <= MAX_IDENTIFIER_BYTES) return name;
  let out = '';
  for (const ch of name) {
    if (Buffer.byteLength(out + ch) > MAX_IDENTIFIER_BYTES) break;
    out += ch;
  }
  return out;
}

/** Adds `name`, and `schema.name` when the list qualifies it, to `into` (see `SqlFacts.calls`). */
function addName(into: Set<string>, names: (string | undefined)[]): void {
  const name = names[names.length - 1];
  if (name === undefined) return;
  into.add(name);
  const schema = names[names.length - 2];
  if (schema !== undefined) into.add(`${schema}.${name}`);
}

/** A reference to column `column` (`name`, or `pg_settings.name`). */
function isColumn(node: unknown, column: string): boolean {
  const fields = list(asObj(asObj(node)?.ColumnRef)?.fields);
  return fields.length > 0 && asObj(asObj(fields[fields.length - 1])?.String)?.sval === column;
}

/** A qualified name as the parser gives it: a list of Strings, or a TypeName's `names`. */
function nameList(v: unknown): (string | undefined)[] {
  const o = asObj(v);
  const items = Array.isArray(v) ? v : list(asObj(o?.TypeName)?.names ?? asObj(o?.List)?.items ?? (o?.String !== undefined ? [o] : []));
  return items.map(stringValue);
}

/** `{ String: { sval } }` or `{ sval: { sval } }` (an A_Const) → the string. */
function stringValue(v: unknown): string | undefined {
  const o = asObj(v);
  const s = asObj(o?.String) ?? asObj(o?.sval);
  return typeof s?.sval === 'string' ? s.sval : undefined;
}

function defElems(options: unknown): Map<string, unknown> {
  const out = new Map<string, unknown>();
  for (const o of list(options)) {
    const d = asObj(asObj(o)?.DefElem);
    if (typeof d?.defname === 'string') out.set(d.defname, d.arg);
  }
  return out;
}

function asObj(v: unknown): Obj | undefined {
  return v !== null && typeof v === 'object' && !Array.isArray(v) ? (v as Obj) : undefined;
}

function list(v: unknown): unknown[] {
  return Array.isArray(v) ? v : [];
}

import { EVERY_TABLE, type SqlFacts } from '../../../../core/src/sql/facts.js';
import type { CatalogLookup } from './catalog-lookup.js';

/**
 * When the server runs an object's code: `write` on a change of the relation (a trigger, a rule,
 * a default, a constraint, an index expression), `any` on any use of it (a view's query, a row
 * security policy), `ddl` on any DDL (an event trigger), `call`, `operator`, `type` when the
 * statement names the function, applies the operator or casts to the type.
 */
export type Fires = 'write' | 'any' | 'ddl' | 'call' | 'operator' | 'type';

/** One object whose code runs without a name in the statement's text. */
export interface StoredObject {
  fires: Fires;
  /** The schema of the relation, function, operator or type it is found by. */
  schema: string;
  /** The relation's (function's, operator's, type's) name it is found by. */
  name: string;
  /** What runs, for the record and the refusal: `trigger t on public.notes runs public.f`. */
  what: string;
}

/** The catalog's objects whose code the server runs, by the name a statement reaches them by. */
export interface StoredCode {
  /** Per `fires` kind, name → objects. */
  byName: ReadonlyMap<Fires, ReadonlyMap<string, readonly StoredObject[]>>;
  /** No object at all: statements need no reading. */
  empty: boolean;
}

/**
 * Functions made in the database (OID at or above FirstNormalObjectId, 16384), not installed by an
 * extension: everything initdb and an extension's script made is the server's own code (the
 * rules initdb puts on pg_settings included: below 16384 too).
 */
const USER_FUNCTIONS = `agate_user_functions AS (
  SELECT p.oid, n.nspname, p.proname, p.prosecdef FROM pg_catalog.pg_proc p JOIN pg_catalog.pg_namespace n ON n.oid = p.pronamespace
  WHERE p.oid >= 16384 AND NOT EXISTS (SELECT 1 FROM pg_catalog.pg_depend e WHERE e.classid = 'pg_catalog.pg_proc'::regclass AND e.objid = p.oid AND e.deptype = 'e'))`;
const RELATIONS = `agate_relations AS (
  SELECT c.oid, n.nspname, c.relname, c.relkind FROM pg_catalog.pg_class c JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace)`;
/** `u.nspname || '.' || u.proname` */
const FN = `u.nspname || '.' || u.proname`;
/** Objects of class `cls` with OID `objid` that call a user function, joined as `u`. */
const calls = (cls: string, objid: string) =>
  `JOIN pg_catalog.pg_depend d ON d.classid = 'pg_catalog.${cls}'::regclass AND d.objid = ${objid} AND d.refclassid = 'pg_catalog.pg_proc'::regclass JOIN agate_user_functions u ON u.oid = d.refobjid`;

/**
 * One question for every kind of stored code; rows are (fires, schema, name, what). The text
 * starts with its CTE's name, which the pgaudit oracle of the tests knows as Agate's own lookup.
 */
export const STORED_CODE_SQL = `WITH ${USER_FUNCTIONS}, ${RELATIONS}
SELECT 'write', r.nspname, r.relname, 'trigger ' || t.tgname || ' on ' || r.nspname || '.' || r.relname || ' runs ' || ${FN}
  FROM pg_catalog.pg_trigger t JOIN agate_relations r ON r.oid = t.tgrelid JOIN agate_user_functions u ON u.oid = t.tgfoid WHERE NOT t.tgisinternal
UNION ALL SELECT 'write', r.nspname, r.relname, 'rule ' || w.rulename || ' on ' || r.nspname || '.' || r.relname
  FROM pg_catalog.pg_rewrite w JOIN agate_relations r ON r.oid = w.ev_class WHERE w.rulename <> '_RETURN' AND w.oid >= 16384
UNION ALL SELECT 'any', r.nspname, r.relname, CASE r.relkind WHEN 'm' THEN 'materialized view ' ELSE 'view ' END || r.nspname || '.' || r.relname
  FROM agate_relations r WHERE r.relkind IN ('v', 'm') AND r.oid >= 16384
  AND NOT EXISTS (SELECT 1 FROM pg_catalog.pg_depend e WHERE e.classid = 'pg_catalog.pg_class'::regclass AND e.objid = r.oid AND e.deptype = 'e')
UNION ALL SELECT DISTINCT 'any', r.nspname, r.relname, 'row security policy ' || p.polname || ' on ' || r.nspname || '.' || r.relname
  FROM pg_catalog.pg_policy p JOIN agate_relations r ON r.oid = p.polrelid JOIN pg_catalog.pg_depend d ON d.classid = 'pg_catalog.pg_policy'::regclass AND d.objid = p.oid
  WHERE (d.refclassid = 'pg_catalog.pg_proc'::regclass AND d.refobjid IN (SELECT oid FROM agate_user_functions)) OR (d.refclassid = 'pg_catalog.pg_class'::regclass AND d.refobjid <> p.polrelid)
UNION ALL SELECT 'write', r.nspname, r.relname, 'default of ' || r.nspname || '.' || r.relname || '.' || a.attname || ' calls ' || ${FN}
  FROM pg_catalog.pg_attrdef ad JOIN agate_relations r ON r.oid = ad.adrelid JOIN pg_catalog.pg_attribute a ON a.attrelid = ad.adrelid AND a.attnum = ad.adnum ${calls('pg_attrdef', 'ad.oid')}
UNION ALL SELECT 'write', r.nspname, r.relname, 'constraint ' || co.conname || ' on ' || r.nspname || '.' || r.relname || ' calls ' || ${FN}
  FROM pg_catalog.pg_constraint co JOIN agate_relations r ON r.oid = co.conrelid ${calls('pg_constraint', 'co.oid')}
UNION ALL SELECT 'write', r.nspname, r.relname, 'constraint ' || co.conname || ' of domain ' || ty.typname || ' (column ' || r.nspname || '.' || r.relname || '.' || a.attname || ') calls ' || ${FN}
  FROM pg_catalog.pg_constraint co JOIN pg_catalog.pg_type ty ON ty.oid = co.contypid
  JOIN pg_catalog.pg_attribute a ON a.atttypid = co.contypid AND a.attnum > 0 AND NOT a.attisdropped JOIN agate_relations r ON r.oid = a.attrelid ${calls('pg_constraint', 'co.oid')}
UNION ALL SELECT 'type', n.nspname, ty.typname, 'constraint ' || co.conname || ' of domain ' || n.nspname || '.' || ty.typname || ' calls ' || ${FN}
  FROM pg_catalog.pg_constraint co JOIN pg_catalog.pg_type ty ON ty.oid = co.contypid JOIN pg_catalog.pg_namespace n ON n.oid = ty.typnamespace ${calls('pg_constraint', 'co.oid')}
UNION ALL SELECT 'write', r.nspname, r.relname, 'index ' || ic.relname || ' on ' || r.nspname || '.' || r.relname || ' calls ' || ${FN}
  FROM pg_catalog.pg_index i JOIN agate_relations r ON r.oid = i.indrelid JOIN pg_catalog.pg_class ic ON ic.oid = i.indexrelid ${calls('pg_class', 'i.indexrelid')}
UNION ALL SELECT 'ddl', '', e.evtname, 'event trigger ' || e.evtname || ' runs ' || ${FN}
  FROM pg_catalog.pg_event_trigger e JOIN agate_user_functions u ON u.oid = e.evtfoid WHERE e.evtenabled <> 'D'
UNION ALL SELECT 'call', u.nspname, u.proname, CASE WHEN u.prosecdef THEN 'security definer function ' ELSE 'function ' END || ${FN} FROM agate_user_functions u
UNION ALL SELECT 'operator', n.nspname, o.oprname, 'operator ' || n.nspname || '.' || o.oprname || ' calls ' || ${FN}
  FROM pg_catalog.pg_operator o JOIN pg_catalog.pg_namespace n ON n.oid = o.oprnamespace JOIN agate_user_functions u ON u.oid = o.oprcode
UNION ALL SELECT 'type', n.nspname, ty.typname, 'cast to ' || n.nspname || '.' || ty.typname || ' calls ' || ${FN}
  FROM pg_catalog.pg_cast c JOIN pg_catalog.pg_type ty ON ty.oid = c.casttarget JOIN pg_catalog.pg_namespace n ON n.oid = ty.typnamespace JOIN agate_user_functions u ON u.oid = c.castfunc
UNION ALL SELECT 'type', n.nspname, ty.typname, 'input of type ' || n.nspname || '.' || ty.typname || ' calls ' || ${FN}
  FROM pg_catalog.pg_type ty JOIN pg_catalog.pg_namespace n ON n.oid = ty.typnamespace JOIN agate_user_functions u ON u.oid = ty.typinput`;

/**
 * Where a change of one relation also changes others, (parent schema, parent, child schema, child):
 * a foreign key that cascades (ON DELETE/UPDATE CASCADE, SET NULL, SET DEFAULT) changes the
 * referencing rows, and a change of a parent or partitioned table changes its children.
 */
export const CHANGE_EDGES_SQL = `SELECT pn.nspname, p.relname, cn.nspname, c.relname FROM pg_catalog.pg_constraint k
  JOIN pg_catalog.pg_class p ON p.oid = k.confrelid JOIN pg_catalog.pg_namespace pn ON pn.oid = p.relnamespace
  JOIN pg_catalog.pg_class c ON c.oid = k.conrelid JOIN pg_catalog.pg_namespace cn ON cn.oid = c.relnamespace
  WHERE k.contype = 'f' AND (k.confdeltype IN ('c', 'n', 'd') OR k.confupdtype IN ('c', 'n', 'd'))
UNION ALL SELECT pn.nspname, p.relname, cn.nspname, c.relname FROM pg_catalog.pg_inherits i
  JOIN pg_catalog.pg_class p ON p.oid = i.inhparent JOIN pg_catalog.pg_namespace pn ON pn.oid = p.relnamespace
  JOIN pg_catalog.pg_class c ON c.oid = i.inhrelid JOIN pg_catalog.pg_namespace cn ON cn.oid = c.relnamespace`;

/**
 * The objects as found by name: a relation's `write` objects include those of every relation a
 * change of it changes too (see {@link CHANGE_EDGES_SQL}).
 */
export function storedCode(rows: readonly (string | null)[][], edges: readonly (string | null)[][]): StoredCode {
  const byName = new Map<Fires, Map<string, StoredObject[]>>();
  const add = (o: StoredObject) => {
    let names = byName.get(o.fires);
    if (names === undefined) byName.set(o.fires, (names = new Map()));
    const list = names.get(o.name) ?? [];
    if (!list.some((x) => x.schema === o.schema && x.what === o.what)) list.push(o);
    names.set(o.name, list);
  };
  const writes = new Map<string, StoredObject[]>();
  for (const [fires, schema, name, what] of rows) {
    if (fires == null || schema == null || name == null || what == null) continue;
    const o = { fires: fires as Fires, schema, name, what };
    add(o);
    if (o.fires === 'write') writes.set(`${schema}.${name}`, [...(writes.get(`${schema}.${name}`) ?? []), o]);
  }
  // A change reaches children, their children…: each child's objects count for every ancestor.
  const children = new Map<string, { schema: string; name: string }[]>();
  for (const [ps, p, cs, c] of edges) {
    if (ps == null || p == null || cs == null || c == null) continue;
    children.set(`${ps}.${p}`, [...(children.get(`${ps}.${p}`) ?? []), { schema: cs, name: c }]);
  }
  for (const [parent] of children) {
    const [schema, ...rest] = parent.split('.');
    const name = rest.join('.');
    const seen = new Set([parent]);
    const stack = [...children.get(parent)!];
    for (let c = stack.pop(); c !== undefined; c = stack.pop()) {
      const key = `${c.schema}.${c.name}`;
      if (seen.has(key)) continue;
      seen.add(key);
      for (const o of writes.get(key) ?? []) add({ fires: 'write', schema: schema!, name, what: `${o.what} (a change of ${parent} changes ${key})` });
      stack.push(...(children.get(key) ?? []));
    }
  }
  return { byName, empty: byName.size === 0 };
}

/** Effects of a statement that fire event triggers: DDL, and GRANT/REVOKE. */
const DDL_EFFECTS = ['ddl', 'privilege'] as const;

/**
 * What stored code the statements (their facts, everything they run included) reach, each named
 * once. An unqualified name may be any schema's (the client's search_path picks one).
 */
export function storedCodeOf(code: StoredCode, statements: readonly SqlFacts[]): string[] {
  if (code.empty) return [];
  const found = new Set<string>();
  const named = (fires: Fires, name: string) => {
    const dot = name.lastIndexOf('.');
    const bare = dot < 0 ? name : name.slice(dot + 1);
    const schema = dot < 0 ? undefined : name.slice(0, dot);
    for (const o of code.byName.get(fires)?.get(bare) ?? []) if (schema === undefined || o.schema === schema) found.add(o.what);
  };
  for (const f of statements) {
    for (const t of f.tables) {
      for (const fires of t.access === 'write' ? (['write', 'any'] as const) : (['any'] as const)) {
        if (t.name !== EVERY_TABLE) {
          named(fires, t.qualified ?? t.name);
          continue;
        }
        // A statement reaching every relation (of a schema) reaches their code.
        const schema = t.qualified?.slice(0, t.qualified.lastIndexOf('.'));
        for (const objects of code.byName.get(fires)?.values() ?? []) for (const o of objects) if (schema === undefined || o.schema === schema) found.add(o.what);
      }
    }
    for (const c of f.calls) named('call', c);
    for (const o of f.operators) named('operator', o);
    for (const t of f.types) named('type', t);
    if (DDL_EFFECTS.some((e) => f.effects.has(e))) for (const objects of code.byName.get('ddl')?.values() ?? []) for (const o of objects) found.add(o.what);
  }
  return [...found];
}

/** How long a session's reading of the catalog is used before it is read again. */
export const STORED_CODE_TTL_MS = 1_000;

/**
 * A session's reading of its target's stored code: read on the session's first statement (or
 * before, see {@link refresh}), then again once {@link STORED_CODE_TTL_MS} passed or the
 * session ran DDL ({@link invalidate}), over the session's catalog connection.
 */
export class StoredCodeCatalog {
  readonly #catalog: CatalogLookup;
  readonly #now: () => number;
  #current: { at: number; code: Promise<StoredCode> } | undefined;

  constructor(catalog: CatalogLookup, now: () => number = Date.now) {
    this.#catalog = catalog;
    this.#now = now;
  }

  /** The stored code as of at most {@link STORED_CODE_TTL_MS} ago; rejects when the catalog cannot be read. */
  read(): Promise<StoredCode> {
    if (this.#current === undefined || this.#now() - this.#current.at >= STORED_CODE_TTL_MS) this.refresh();
    return this.#current!.code;
  }

  /** Reads the catalog now (not waited for): a session starts it as it opens. */
  refresh(): void {
    const code = Promise.all([this.#catalog.select(STORED_CODE_SQL), this.#catalog.select(CHANGE_EDGES_SQL)]).then(([rows, edges]) => storedCode(rows, edges));
    const current = { at: this.#now(), code };
    // A failed reading is not kept: the next statement reads again.
    code.catch(() => {
      if (this.#current === current) this.#current = undefined;
    });
    this.#current = current;
  }

  /** The session changed definitions: the next statement reads the catalog again. */
  invalidate(): void {
    this.#current = undefined;
  }
}

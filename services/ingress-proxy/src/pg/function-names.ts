import type { CatalogLookup } from './catalog-lookup.js';

/** A function as a protocol FunctionCall names it: by OID, resolved to its schema and name. */
interface FunctionName {
  schema: string;
  name: string;
}

/**
 * Resolves the OIDs of protocol FunctionCall messages (large objects: lo_open, loread, lowrite,
 * lo_creat, lo_unlink…) to `schema.name`, so a call can be decided and recorded by the function
 * it calls. Lookups go over the session's catalog connection (catalog-lookup.ts); each OID is
 * looked up once per session. An OID no function has resolves to undefined.
 */
export class FunctionNames {
  readonly #cache = new Map<number, Promise<FunctionName | undefined>>();
  readonly #catalog: CatalogLookup;

  constructor(catalog: CatalogLookup) {
    this.#catalog = catalog;
  }

  resolve(oid: number): Promise<FunctionName | undefined> {
    let found = this.#cache.get(oid);
    if (found === undefined) {
      found = this.#lookup(oid);
      // A failed lookup (connection lost) is tried again next time rather than remembered.
      found.catch(() => this.#cache.delete(oid));
      this.#cache.set(oid, found);
    }
    return found;
  }

  async #lookup(oid: number): Promise<FunctionName | undefined> {
    // The OID is a number Agate formats itself: nothing from the client reaches this text.
    const sql = `SELECT n.nspname, p.proname FROM pg_catalog.pg_proc p JOIN pg_catalog.pg_namespace n ON n.oid = p.pronamespace WHERE p.oid = ${oid >>> 0}`;
    const row = (await this.#catalog.select(sql))[0];
    if (row === undefined || row[0] == null || row[1] == null) return undefined;
    return { schema: row[0], name: row[1] };
  }
}

/** The SQL a FunctionCall amounts to, `SELECT schema.name($1, …)`, for policy and the record. */
export function functionCallText(fn: FunctionName, args: number): string {
  const ident = (s: string) => (/^[a-z_][a-z0-9_]*$/.test(s) ? s : `"${s.replace(/"/g, '""')}"`);
  const params = Array.from({ length: args }, (_, i) => `$${i + 1}`).join(', ');
  return `SELECT ${ident(fn.schema)}.${ident(fn.name)}(${params})`;
}

import { AgateError, ErrorCode } from '../../../../core/src/errors.js';
import type { QuerySqlConfig } from '../../../../core/src/config.js';
import type { Store } from '../../../../core/src/store/store.js';
import type { Route } from '../router.js';
import { runAnalystSql } from '../sql-endpoint.js';

// The SQL text itself is capped at 64 KiB by runAnalystSql; this leaves room for JSON escaping.
const MAX_BODY = 256 * 1024;

/** POST /v1/sql: `{"sql": "SELECT …"}` (or the bare text as text/plain); rows as JSON, NDJSON or CSV. */
export function sqlRoutes(store: Store, limits: QuerySqlConfig): Route[] {
  return [
    {
      method: 'POST', path: '/v1/sql', permission: 'sql',
      async handler(ctx) {
        const raw = (await ctx.body(MAX_BODY)).toString('utf8');
        let sql: unknown = raw;
        if (raw.trimStart().startsWith('{')) {
          try {
            sql = (JSON.parse(raw) as { sql?: unknown }).sql;
          } catch {
            throw new AgateError(ErrorCode.API_BAD_REQUEST, 'the body must be {"sql": "…"} or the SQL text');
          }
        }
        if (typeof sql !== 'string') throw new AgateError(ErrorCode.API_BAD_REQUEST, 'the body must be {"sql": "…"} or the SQL text');
        const { rows } = await runAnalystSql(store, sql, limits);
        return { kind: 'rows', key: 'rows', rows, next_cursor: null };
      },
    },
  ];
}

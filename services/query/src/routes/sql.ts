import { AgateError, ErrorCode } from '../../../../core/src/errors.js';
import type { FactsIndex } from '../facts-index.js';
import type { Route } from '../router.js';
import type { AnalystSql } from '../sql-endpoint.js';

// The SQL text itself is capped at 64 KiB by runAnalystSql; this leaves room for JSON escaping.
const MAX_BODY = 256 * 1024;

/**
 * POST /v1/sql: `{"sql": "SELECT …"}` (or the bare text as text/plain); rows as JSON, NDJSON or CSV.
 * The statement facts the views join are brought level with the ledger first.
 */
export function sqlRoutes(analystSql: AnalystSql, facts: FactsIndex): Route[] {
  return [
    {
      method: 'POST', path: '/v1/sql', permission: 'sql',
      async handler(ctx) {
        const sql = sqlOf((await ctx.body(MAX_BODY)).toString('utf8'), ctx.contentType);
        await facts.catchUp();
        const { rows } = await analystSql(sql);
        return { kind: 'rows', key: 'rows', rows, next_cursor: null };
      },
    },
  ];
}

const JSON_BODY = 'a JSON body must be an object {"sql": "…"}';

/**
 * The SQL text of a request, decided by its Content-Type: `application/json` (or any `+json`)
 * must be `{"sql": "…"}`, so `[null, null]` is refused rather than run; `text/plain` is the SQL
 * itself. With no or another Content-Type (curl -d sends a form type), a body starting with `{`
 * is taken as the JSON form and anything else as the SQL.
 */
function sqlOf(raw: string, contentType: string | undefined): string {
  const declaredJson = contentType === 'application/json' || (contentType?.endsWith('+json') ?? false);
  if (!declaredJson && (contentType === 'text/plain' || !raw.trimStart().startsWith('{'))) return raw;
  let parsed: unknown;
  try {
    parsed = JSON.parse(raw);
  } catch {
    throw new AgateError(ErrorCode.API_BAD_REQUEST, `${JSON_BODY}; it is not valid JSON`);
  }
  if (parsed === null || typeof parsed !== 'object' || Array.isArray(parsed)) throw new AgateError(ErrorCode.API_BAD_REQUEST, JSON_BODY);
  const sql = (parsed as { sql?: unknown }).sql;
  if (typeof sql !== 'string') throw new AgateError(ErrorCode.API_BAD_REQUEST, `${JSON_BODY}; "sql" must be a string`);
  return sql;
}

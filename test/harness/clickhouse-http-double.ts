// TEST DOUBLE — not a ClickHouse server. No modern ClickHouse server binary can be installed
// here (Debian ships 18.16), so multi-process tests share one embedded engine (chdb) behind this
// small HTTP front that answers the subset of ClickHouse's HTTP interface that
// @clickhouse/client uses: GET /ping, POST queries with `param_*` bound parameters, and
// `INSERT … FORMAT <text format or RowBinary>` with the rows in the body. The transport itself
// is tested against Debian's real clickhouse-server; the SQL runs on the real modern engine.
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { mkdtempSync, rmSync } from 'node:fs';
import { unlink, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Session } from 'chdb';

export interface ClickHouseHttpDouble {
  url: string;
  close(): Promise<void>;
}

export async function startClickHouseHttpDouble(): Promise<ClickHouseHttpDouble> {
  const dir = mkdtempSync(join(tmpdir(), 'agate-ch-double-'));
  const session = new Session(join(dir, 'store'));
  let inserts = 0;
  // One query at a time, as a single-connection server would do it.
  let chain: Promise<unknown> = Promise.resolve();
  const serial = <T>(op: () => Promise<T>): Promise<T> => {
    const next = chain.then(op, op);
    chain = next.catch(() => undefined);
    return next;
  };
  const server: Server = createServer((req, res) => {
    const url = new URL(req.url ?? '/', 'http://double');
    if (url.pathname === '/ping') return void res.end('Ok.\n');
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      const raw = Buffer.concat(chunks);
      const fromUrl = url.searchParams.get('query');
      // Inserts keep their body as bytes (TabSeparated rows may carry binary values).
      const insert = fromUrl === null ? null : /^\s*INSERT INTO\s+([\w.]+)\s*(?:\(([^)]*)\))?\s*FORMAT\s+(\w+)\s*$/i.exec(fromUrl);
      if (insert !== null) {
        const table = insert[1]!;
        const format = insert[3]!;
        const columns = insert[2]?.split(',').map((c) => c.trim().replace(/^`|`$/g, ''));
        const file = join(dir, `insert-${inserts++}.bin`);
        const op: () => Promise<unknown> = format.toLowerCase() === 'rowbinary'
          ? () => insertRowBinary(session, file, table, columns, raw, url.searchParams.get('insert_deduplication_token') ?? undefined)
          : () => session.insert({ table, values: raw, format: format as 'JSONEachRow', ...(columns ? { columns } : {}) });
        serial(op).then(
          () => res.end(),
          (err: Error & { clickhouseCode?: number }) => {
            res.writeHead(500, { 'x-clickhouse-exception-code': String(err.clickhouseCode ?? 1000) });
            res.end(`Code: ${err.clickhouseCode ?? 1000}. DB::Exception: ${err.message}`);
          },
        );
        return;
      }
      const body = raw.toString('utf8');
      const sql = fromUrl === null ? body : `${fromUrl}\n${body}`;
      const params: Record<string, unknown> = {};
      const arrays = new Set([...sql.matchAll(/\{(\w+):\s*Array\(/g)].map((m) => m[1]));
      for (const [k, v] of url.searchParams) {
        if (!k.startsWith('param_')) continue;
        const name = k.slice(6);
        // chdb binds JS arrays natively but re-escapes array literals given as text.
        params[name] = arrays.has(name) ? parseArrayLiteral(v) : unescapeParam(v);
      }
      serial(() => (Object.keys(params).length > 0 ? session.queryBindAsync(sql, params, { format: 'TabSeparated' }) : session.queryAsync(sql, { format: 'TabSeparated' }))).then(
        (r) => {
          res.writeHead(200, { 'content-type': 'text/plain; charset=utf-8', 'x-clickhouse-summary': '{}' });
          res.end(Buffer.from(r.bytes()));
        },
        (err: Error & { clickhouseCode?: number }) => {
          const code = err.clickhouseCode ?? 1000;
          res.writeHead(500, { 'content-type': 'text/plain; charset=utf-8', 'x-clickhouse-exception-code': String(code) });
          res.end(`Code: ${code}. DB::Exception: ${err.message}`);
        },
      );
    });
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  const { port } = server.address() as AddressInfo;
  return {
    url: `http://127.0.0.1:${port}`,
    close: async () => {
      server.closeAllConnections();
      await new Promise((r) => server.close(r));
      await chain;
      session.close();
      rmSync(dir, { recursive: true, force: true });
    },
  };
}

/**
 * RowBinary as a server takes it: each column's type comes from the table (system.columns), not
 * from the client, so bytes that do not match the table fail here as they would on a server.
 * chdb's insert API takes text formats only; the bytes go through a file the engine reads.
 */
async function insertRowBinary(session: Session, file: string, table: string, columns: string[] | undefined, body: Buffer, dedupToken: string | undefined): Promise<void> {
  const dot = table.indexOf('.');
  const where = dot < 0 ? { db: 'currentDatabase()', params: { t: table } } : { db: '{db:String}', params: { db: table.slice(0, dot), t: table.slice(dot + 1) } };
  const described = await session.queryBindAsync(
    `SELECT name, type FROM system.columns WHERE database = ${where.db} AND table = {t:String} AND default_kind NOT IN ('MATERIALIZED', 'ALIAS') ORDER BY position`,
    where.params,
    { format: 'JSONEachRow' },
  );
  const types = new Map(described.text().split('\n').filter(Boolean).map((line) => {
    const c = JSON.parse(line) as { name: string; type: string };
    return [c.name, c.type] as const;
  }));
  if (types.size === 0) throw Object.assign(new Error(`Table ${table} does not exist`), { clickhouseCode: 60 });
  const names = columns ?? [...types.keys()];
  const structure = names.map((c) => {
    const type = types.get(c);
    if (type === undefined) throw Object.assign(new Error(`No such column ${c} in table ${table}`), { clickhouseCode: 16 });
    return `\`${c}\` ${type}`;
  }).join(', ');
  const quoted = (s: string) => `'${s.replace(/[\\']/g, (c) => '\\' + c)}'`;
  await writeFile(file, body, { mode: 0o600 });
  try {
    // The insert deduplication token a client sends as a setting in the URL, as a server honours it.
    const settings = dedupToken === undefined ? '' : ` SETTINGS insert_deduplication_token = ${quoted(dedupToken)}`;
    await session.queryAsync(`INSERT INTO ${table} (${names.map((c) => `\`${c}\``).join(', ')})${settings} SELECT * FROM file(${quoted(file)}, 'RowBinary', ${quoted(structure)})`);
  } finally {
    await unlink(file).catch(() => undefined);
  }
}

/**
 * A scalar parameter arrives escaped as in the TabSeparated format (`\\'`, `\\\\`, `\\t`, …), which a
 * server undoes before binding; chdb binds the text as given, so the double undoes it here.
 */
function unescapeParam(text: string): string {
  return text.replace(/\\(.)/g, (_x, c: string) => ({ t: '\t', n: '\n', r: '\r', '0': '\0' })[c] ?? c);
}

/** Parses the text form of a flat array parameter: `['a','b\\'c']` or `[1,2]`. */
function parseArrayLiteral(text: string): (string | number)[] {
  const out: (string | number)[] = [];
  const re = /'((?:[^'\\]|\\.)*)'|(-?[\d.]+)/g;
  for (const m of text.slice(1, -1).matchAll(re)) {
    out.push(m[1] !== undefined ? m[1].replace(/\\(.)/g, (_x, c: string) => ({ t: '\t', n: '\n', r: '\r', '0': '\0' })[c] ?? c) : Number(m[2]));
  }
  return out;
}

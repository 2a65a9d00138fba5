// Exactness of the record for what the server tells the client besides results: NOTICE and
// WARNING messages. A `RAISE NOTICE` in a DO block carries a table's value to the agent; a GRANT
// the agent may not give is answered `GRANT` with a WARNING that nothing was granted. The oracle
// is what node-postgres received from the real PostgreSQL: every notice it got is in the record,
// in session order, masked with the audit set.
import { suite } from '../harness/suite.js';
import * as assert from 'uvu/assert';
import pg from 'pg';
import { startEmbeddedAgate, type EmbeddedAgate } from '../harness/embedded-agate.js';
import { until } from '../harness/until.js';

type Ctx = EmbeddedAgate & { analyst: string };
const test = suite<Ctx>('pg notices: what the server told the agent is recorded');

const POLICY = `
policy:
  default: allow
  rules:
    - { id: allow-code, action: allow, match: { sql: { effects: [code, dynamic, opaque, unknown] } } }
`;

test.before(async (ctx) => {
  Object.assign(ctx, await startEmbeddedAgate({ prefix: 'agate-notices-', policyYaml: POLICY, queryYaml: '  roles: { claim: groups, analyst: [sec-analysts] }' }));
  ctx.analyst = await ctx.issuer.mint({ sub: 'analyst-1', groups: ['sec-analysts'] });
  // Owned by the administrator: the agent may read it, not grant it.
  await ctx.pg.psql(`CREATE TABLE public.notice_src (v text); INSERT INTO public.notice_src VALUES ('row-value-4711');
GRANT SELECT ON public.notice_src TO ${ctx.pg.users.scram.user};`);
});
test.after((ctx) => ctx.stop());

async function api<T>(ctx: Ctx, path: string): Promise<T> {
  const res = await fetch(ctx.base + path, { headers: { authorization: `Bearer ${ctx.analyst}` } });
  assert.is(res.status, 200, path);
  return (await res.json()) as T;
}

test('a RAISE NOTICE carrying a value and a WARNING that a GRANT did nothing are recorded as the client got them', async (ctx) => {
  const c = new pg.Client({ host: '127.0.0.1', port: ctx.agate.postgres.port, database: 'appdb', user: 'agent', password: await ctx.issuer.mint({ sub: 'notice-agent' }) });
  const got: { severity: string; code: string; message: string; detail?: string }[] = [];
  c.on('notice', (n) => got.push({ severity: String(n.severity), code: String(n.code), message: String(n.message), ...(n.detail ? { detail: n.detail } : {}) }));
  await c.connect();
  try {
    await c.query(`DO $$ BEGIN RAISE NOTICE 'leaked %', (SELECT v FROM public.notice_src LIMIT 1) USING DETAIL = 'from notice_src'; END $$`);
    const grant = await c.query('GRANT SELECT ON public.notice_src TO PUBLIC');
    assert.is(grant.command, 'GRANT', 'answered as if it had granted');
    await c.query('SELECT 1');
  } finally {
    await c.end();
  }
  // The oracle: what the real server sent.
  assert.equal(got.map((n) => `${n.severity} ${n.code} ${n.message}`), ['NOTICE 00000 leaked row-value-4711', 'WARNING 01007 no privileges were granted for "notice_src"']);

  const [session] = (await api<{ sessions: { session_id: string }[] }>(ctx, '/v1/sessions?subject=notice-agent')).sessions;
  assert.ok(session !== undefined);
  const timeline = await until('the notices recorded', async () => {
    const t = await api<{ events: { kind: string; text: string; channel?: string }[] }>(ctx, `/v1/sessions/${session!.session_id}/timeline`);
    return t.events.filter((e) => e.kind === 'response').length === 3 ? t.events : undefined;
  });
  // Each notice between its statement's command and the next one (a Response may be recorded later).
  assert.equal(
    timeline.filter((e) => e.kind !== 'response').map((e) => (e.kind === 'notification' ? `${e.kind} ${e.channel}: ${e.text}` : e.kind === 'command' ? `command ${e.text.slice(0, 5)}` : e.kind)),
    [
      'command DO $$', 'verdict', 'notification NOTICE 00000: leaked row-value-4711\nDETAIL: from notice_src',
      'command GRANT', 'verdict', 'notification WARNING 01007: no privileges were granted for "notice_src"',
      'command SELEC', 'verdict',
    ],
  );
});

test.run();

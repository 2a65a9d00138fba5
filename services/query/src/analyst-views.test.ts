import { suite } from '../../../test/harness/suite.js';
import * as assert from 'uvu/assert';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import pg from 'pg';
import { packageRoot } from '../../../core/src/package-root.js';
import { startEmbeddedAgate, type EmbeddedAgate } from '../../../test/harness/embedded-agate.js';
import { until } from '../../../test/harness/until.js';

/*
 * The ten forensic questions of docs/analyst-sql.md, each asked with the query the document
 * prints (read from the file, so the documentation cannot drift from what is tested), against a
 * store filled by the real pipeline: node-postgres clients through Agate's proxy to a real
 * PostgreSQL, a hold released by one approver and refused by another over the API, masked
 * results, refused logins.
 */
const views = suite('analyst views answer the ten forensic questions');

interface Ctx extends EmbeddedAgate {
  analyst: string;
  alice: string;
  queries: Map<number, string>;
}
const ctx = {} as Ctx;
type Row = Record<string, any>;

const POLICY = `
policy:
  default: allow
  rules:
    - { id: no-drop, action: deny, message: no dropping, match: { sql: { statements: [DropStmt] } } }
    - id: hold-delete
      action: hold
      match: { sql: { statements: [DeleteStmt] } }
      approval: { approvers: { claims: { team: dba } }, timeout_s: 60 }
    - { id: mask-accounts, action: allow, mask_client: true, match: { sql: { statements: [SelectStmt], tables: [accounts] } } }
`;

async function sql(text: string): Promise<Row[]> {
  const res = await fetch(ctx.base + '/v1/sql', { method: 'POST', headers: { authorization: `Bearer ${ctx.analyst}`, 'content-type': 'application/json' }, body: JSON.stringify({ sql: text }) });
  const body = (await res.json()) as { rows?: Row[]; error?: unknown };
  if (res.status !== 200) throw new Error(`${res.status} ${JSON.stringify(body)} for ${text}`);
  return body.rows!;
}

async function client(sub: string, application: string, notices: { message?: string }[] = []): Promise<pg.Client> {
  const c = new pg.Client({ host: '127.0.0.1', port: ctx.agate.postgres.port, database: 'appdb', user: 'agent', password: await ctx.issuer.mint({ sub }), application_name: application });
  c.on('notice', (n) => notices.push(n));
  await c.connect();
  return c;
}

/** Runs a statement Agate holds, and has `approver` answer it over the API once the hold shows. */
async function held(c: pg.Client, notices: { message?: string }[], statement: string, approver: string, answer: 'approve' | 'deny'): Promise<void> {
  const before = notices.length;
  const run = c.query(statement).then(() => 'ran', (e: Error) => e.message);
  const id = await until('the hold notice', async () => /approval ([0-9a-f-]{36})/.exec(notices.slice(before).map((n) => n.message).join(' '))?.[1], 20_000);
  await new Promise((r) => setTimeout(r, 300)); // a wait the view must show
  const token = await ctx.issuer.mint({ sub: approver, groups: ['approvers'], team: 'dba' });
  // The request reaches the ledger a moment after the client's notice.
  await until('the approval recorded', async () => ((await fetch(`${ctx.base}/v1/approvals/${id}`, { headers: { authorization: `Bearer ${token}` } })).status === 200 ? true : undefined), 20_000);
  const res = await fetch(`${ctx.base}/v1/approvals/${id}/${answer}`, { method: 'POST', headers: { authorization: `Bearer ${token}`, 'content-type': 'application/json' }, body: '{}' });
  assert.is(res.status, 200, await res.text());
  const outcome = await run;
  assert.is(outcome === 'ran', answer === 'approve', outcome);
}

/** docs/analyst-sql.md's worked queries, by question number: "N. question" then a ```sql block. */
function documentedQueries(): Map<number, string> {
  const doc = readFileSync(join(packageRoot(), 'docs', 'analyst-sql.md'), 'utf8');
  const out = new Map<number, string>();
  for (const m of doc.matchAll(/^(\d+)\. [^\n]*\n+```sql\n([\s\S]*?)```/gm)) out.set(Number(m[1]), m[2]!.trim());
  return out;
}

/** A documented query with its example values replaced by this run's. */
function ask(n: number, values: Record<string, string> = {}): Promise<Row[]> {
  let q = ctx.queries.get(n);
  if (q === undefined) throw new Error(`docs/analyst-sql.md has no query ${n}`);
  for (const [k, v] of Object.entries(values)) q = q.replaceAll(k, v);
  return sql(q);
}

// uvu reports a failed hook without its error: print it, since the whole suite depends on it.
views.before(() => setup().catch((err: unknown) => {
  console.error(err);
  throw err;
}));

/** Fills the store through the proxy, then waits for the ledger to hold all of it. */
async function setup(): Promise<void> {
  ctx.queries = documentedQueries();
  Object.assign(
    ctx,
    await startEmbeddedAgate({
      prefix: 'agate-views-',
      policyYaml: POLICY,
      queryYaml: '  roles: { claim: groups, analyst: [sec-analysts], approver: [approvers] }',
    }),
  );
  ctx.analyst = await ctx.issuer.mint({ sub: 'analyst-1', groups: ['sec-analysts'] });

  const notices: { message?: string }[] = [];
  const alice = await client('alice', 'migrate-tool', notices);
  try {
    await alice.query('CREATE TABLE accounts (id int, email text, api_token text)');
    await alice.query("INSERT INTO accounts VALUES (1, 'ann@example.com', 'tok-123')");
    await alice.query('SELECT id, email, api_token FROM accounts');
    await alice.query("UPDATE items SET name = 'omega' WHERE id = 3");
    await held(alice, notices, 'DELETE FROM items WHERE id = 1', 'dba-1', 'approve');
    await alice.query('DROP TABLE items').catch(() => undefined);
    await held(alice, notices, 'WITH d AS (DELETE FROM accounts RETURNING id) SELECT * FROM d', 'dba-2', 'deny');
  } finally {
    await alice.end();
  }
  const bob = await client('bob', 'report-job');
  await bob.query('SELECT name FROM items WHERE id = 2');
  await bob.query('SELECT count(*) FROM public.items');
  await bob.end();
  for (const password of ['not-a-token', await ctx.issuer.mintExpired({ sub: 'mallory' })]) {
    const c = new pg.Client({ host: '127.0.0.1', port: ctx.agate.postgres.port, database: 'appdb', user: 'agent', password });
    await c.connect().then(() => c.end(), () => undefined);
  }
  await until('every command with its response, and both refused logins', async () => {
    const [r] = await sql("SELECT countIf(status != '') AS done, count() AS n FROM agate.activity");
    const [f] = await sql('SELECT count() AS n FROM agate.auth_failures');
    return Number(r?.done) === 9 && Number(r?.n) === 9 && Number(f?.n) === 2 ? true : undefined;
  }, 20_000);
  ctx.alice = (await sql("SELECT session_id FROM agate.sessions WHERE subject = 'alice'"))[0]!.session_id;
}

views.after(() => ctx.stop?.());

views('docs/analyst-sql.md documents ten questions, each with its query', () => {
  assert.equal([...ctx.queries.keys()], [1, 2, 3, 4, 5, 6, 7, 8, 9, 10]);
});

views('1. what an identity did on a target in the last week: statement, tables, decision', async () => {
  const rows = await ask(1);
  assert.equal(rows.map((r) => [r.statement, r.tables_written, r.tables_read, r.decision, r.decided_by]), [
    ['CreateStmt', ['accounts'], [], 'allow', 'policy'],
    ['InsertStmt', ['accounts'], [], 'allow', 'policy'],
    ['SelectStmt', [], ['accounts'], 'mask', 'policy'],
    ['UpdateStmt', ['items'], ['items'], 'allow', 'policy'],
    ['DeleteStmt', ['items'], ['items'], 'allow', 'approver'],
    ['DropStmt', ['items'], [], 'deny', 'policy'],
    ['SelectStmt', ['accounts'], ['accounts'], 'deny', 'approver'],
  ]);
  assert.equal(await ask(1, { "'alice'": "'bob'" }).then((r) => r.map((x) => x.tables_read)), [['items'], ['public.items']]);
});

views('2. every destructive statement and who decided it', async () => {
  const rows = await ask(2);
  assert.equal(rows.map((r) => [r.subject, r.text, r.decision, r.decided_by, r.rule_id, r.approvers]), [
    ['alice', 'DROP TABLE items', 'deny', 'policy', 'no-drop', []],
    ['alice', 'WITH d AS (DELETE FROM accounts RETURNING id) SELECT * FROM d', 'deny', 'approver', 'hold-delete', ['dba-2']],
  ]);
});

views('3. which tables an identity wrote (statements that ran)', async () => {
  const rows = await ask(3);
  assert.equal(rows.map((r) => [r.qualified_name, Number(r.statements), r.kinds]), [['accounts', 2, ['CreateStmt', 'InsertStmt']], ['items', 2, ['DeleteStmt', 'UpdateStmt']]]);
});

views('4. every hold, who answered it and how long it waited', async () => {
  const rows = await ask(4);
  assert.equal(rows.map((r) => [r.text, r.decision, r.decided_by, r.approvers, r.rule_id]), [
    ['DELETE FROM items WHERE id = 1', 'allow', 'approver', ['dba-1'], 'hold-delete'],
    ['WITH d AS (DELETE FROM accounts RETURNING id) SELECT * FROM d', 'deny', 'approver', ['dba-2'], 'hold-delete'],
  ]);
  for (const r of rows) assert.ok(Number(r.waited_ms) >= 300 && Number(r.waited_ms) < 60_000, String(r.waited_ms));
});

views('5. refused logins by source address and reason', async () => {
  const rows = await ask(5);
  assert.equal(rows.map((r) => [r.source, r.reason_code, Number(r.failures)]).sort(), [['127.0.0.1', 'AUTH_TOKEN_EXPIRED', 1], ['127.0.0.1', 'AUTH_TOKEN_MALFORMED', 1]]);
});

views('6. sessions by application name', async () => {
  const rows = await ask(6);
  assert.equal(rows.map((r) => [r.application_name, Number(r.sessions), r.subjects, Number(r.commands)]), [['migrate-tool', 1, ['alice'], 7], ['report-job', 1, ['bob'], 2]]);
});

views('7. statements whose results were masked, and which columns', async () => {
  const rows = await ask(7);
  assert.equal(rows.map((r) => [r.subject, r.text, r.mask_set, Number(r.masked_values), r.masked_columns]), [
    ['alice', 'SELECT id, email, api_token FROM accounts', 'default', 2, ['email', 'api_token']],
  ]);
});

views('8. the rules that denied most, and who denied', async () => {
  const rows = await ask(8);
  assert.equal(rows.map((r) => [r.rule_id, r.decided_by, Number(r.denied)]).sort(), [['hold-delete', 'approver', 1], ['no-drop', 'policy', 1]]);
});

views('9. one session in order, with decisions and results', async () => {
  const rows = await ask(9, { 'S-ID': ctx.alice });
  assert.equal(rows.map((r) => [Number(r.sequence), r.statement, r.decision, r.status, r.command_tag, Number(r.rows)]), [
    [1, 'CreateStmt', 'allow', 'ok', 'CREATE TABLE', 0],
    [2, 'InsertStmt', 'allow', 'ok', 'INSERT 0 1', 1],
    [3, 'SelectStmt', 'mask', 'ok', 'SELECT 1', 1],
    [4, 'UpdateStmt', 'allow', 'ok', 'UPDATE 1', 1],
    [5, 'DeleteStmt', 'allow', 'ok', 'DELETE 1', 1],
    [6, 'DropStmt', 'deny', 'refused', null, 0],
    [7, 'SelectStmt', 'deny', 'refused', null, 0],
  ]);
});

views('10. which commands of an identity touched a table, however the table was named', async () => {
  const rows = await ask(10);
  assert.equal(rows.map((r) => [r.statement, r.access, r.decision, r.status]), [
    ['UpdateStmt', 'write', 'allow', 'ok'],
    ['UpdateStmt', 'read', 'allow', 'ok'],
    ['DeleteStmt', 'write', 'allow', 'ok'],
    ['DeleteStmt', 'read', 'allow', 'ok'],
    ['DropStmt', 'write', 'deny', 'refused'],
  ]);
  const bob = await ask(10, { "'alice'": "'bob'" });
  assert.equal(bob.map((r) => [r.qualified_name, r.access]), [['items', 'read'], ['public.items', 'read']]);
});

views.run();

// Exactness of the record across transaction outcomes: statements that succeeded in a
// transaction that then did not commit. Real clients (node-postgres, a raw protocol client)
// through the embedded Agate to a real PostgreSQL; the oracle is the server's own table: a row
// is there exactly when the record does not mark its INSERT rolled back.
import { suite } from '../harness/suite.js';
import * as assert from 'uvu/assert';
import pg from 'pg';
import { serialize } from 'pg-protocol';
import { startEmbeddedAgate, type EmbeddedAgate } from '../harness/embedded-agate.js';
import { until } from '../harness/until.js';
import { RawClient } from './raw-client.js';

type Row = Record<string, any>;
const tx = suite<EmbeddedAgate & { analyst: string }>('pg transactions: the record says which statements never committed');

const POLICY = `
policy:
  default: allow
  rules:
    - { id: no-drop, action: deny, message: no dropping, match: { sql: { statements: [DropStmt] } } }
`;

async function sql(ctx: EmbeddedAgate & { analyst: string }, text: string): Promise<Row[]> {
  const res = await fetch(ctx.base + '/v1/sql', { method: 'POST', headers: { authorization: `Bearer ${ctx.analyst}`, 'content-type': 'application/json' }, body: JSON.stringify({ sql: text }) });
  const body = (await res.json()) as { rows?: Row[] };
  if (res.status !== 200) throw new Error(`${res.status} ${JSON.stringify(body)} for ${text}`);
  return body.rows!;
}

async function client(ctx: EmbeddedAgate): Promise<pg.Client> {
  const c = new pg.Client({ host: '127.0.0.1', port: ctx.agate.postgres.port, database: 'appdb', user: 'agent', password: await ctx.issuer.mint({ sub: 'tx-agent' }) });
  c.on('error', () => undefined); // the disconnect case drops the socket
  await c.connect();
  return c;
}

const ins = (v: string, p = 'NULL') => `INSERT INTO tx_rows VALUES ('${v}', ${p})`;
const extended = (text: string) => [serialize.parse({ text }), serialize.bind({}), serialize.execute({})];
const quiet = (p: Promise<unknown>) => p.then(() => undefined, () => undefined);

/** Each marker's INSERT ran (the server answered it ok); whether it committed is for the oracle. */
const MARKERS = [
  'auto', 'block-commit', 'explicit-rollback', 'commit-answered-rollback', 'deferred-at-commit', 'sp-kept', 'sp-undone', 'sp-after',
  'sp-released', 'implicit-a', 'implicit-b', 'implicit-commit-c', 'implicit-after-d', 'ext-batch', 'ext-next', 'ext-deferred-sync',
  'disconnect', 'refusal-aborts', 'ser-1', 'ser-2', 'chain-first', 'chain-second',
];

tx.before(async (ctx) => {
  Object.assign(ctx, await startEmbeddedAgate({ prefix: 'agate-tx-', policyYaml: POLICY, queryYaml: '  roles: { claim: groups, analyst: [sec-analysts] }' }));
  ctx.analyst = await ctx.issuer.mint({ sub: 'analyst-1', groups: ['sec-analysts'] });
  const owner = ctx.pg.users.scram.user;
  await ctx.pg.psql(`CREATE TABLE public.tx_parent (id int PRIMARY KEY);
CREATE TABLE public.tx_rows (v text NOT NULL, p int REFERENCES public.tx_parent DEFERRABLE INITIALLY DEFERRED);
ALTER TABLE public.tx_parent OWNER TO ${owner}; ALTER TABLE public.tx_rows OWNER TO ${owner};`);

  const c = await client(ctx);
  await c.query(ins('auto'));
  for (const q of ['BEGIN', ins('block-commit'), 'COMMIT']) await c.query(q);
  for (const q of ['BEGIN', ins('explicit-rollback'), 'ROLLBACK']) await c.query(q);
  // An error aborts the block; the COMMIT is answered ROLLBACK.
  await c.query('BEGIN');
  await c.query(ins('commit-answered-rollback'));
  await quiet(c.query('SELECT 1/0'));
  assert.is((await c.query('COMMIT')).command, 'ROLLBACK');
  // A deferred foreign key fails at COMMIT.
  await c.query('BEGIN');
  await c.query(ins('deferred-at-commit', '999'));
  assert.is(await c.query('COMMIT').then(() => 'committed', (e: { code?: string }) => e.code), '23503');
  for (const q of ['BEGIN', ins('sp-kept'), 'SAVEPOINT s', ins('sp-undone'), 'ROLLBACK TO SAVEPOINT s', ins('sp-after'), 'COMMIT']) await c.query(q);
  // A released savepoint's statements belong to the transaction: its ROLLBACK undoes them.
  for (const q of ['BEGIN', 'SAVEPOINT a', ins('sp-released'), 'RELEASE a', 'ROLLBACK']) await c.query(q);
  // One simple Query, one implicit transaction: the third statement fails.
  await quiet(c.query(`${ins('implicit-a')}; ${ins('implicit-b')}; SELECT 1/0`));
  await quiet(c.query(`BEGIN; ${ins('implicit-commit-c')}; COMMIT; ${ins('implicit-after-d')}; SELECT 1/0`));
  // Agate's own refusal aborts the transaction as the server's error would.
  await c.query('BEGIN');
  await c.query(ins('refusal-aborts'));
  await quiet(c.query('DROP TABLE tx_parent'));
  assert.is((await c.query('COMMIT')).command, 'ROLLBACK');
  // COMMIT AND CHAIN: the first transaction commits, the chained one is rolled back.
  for (const q of ['BEGIN', ins('chain-first'), 'COMMIT AND CHAIN', ins('chain-second'), 'ROLLBACK']) await c.query(q);
  await c.end();

  // The extended protocol: statements before a Sync are one implicit transaction.
  const raw = await RawClient.login('127.0.0.1', ctx.agate.postgres.port, await ctx.issuer.mint({ sub: 'tx-agent' }));
  raw.send(...extended(ins('ext-batch')), ...extended('SELECT 1/0'), serialize.sync(), ...extended(ins('ext-next')), serialize.sync());
  await raw.readyCount(2);
  // The deferred key fails at the implicit COMMIT of the Sync.
  raw.send(...extended(ins('ext-deferred-sync', '998')), serialize.sync());
  const replies = await raw.readyCount(1);
  assert.ok(replies.some((r) => r.name === 'error' && r.code === '23503'), 'the implicit commit failed');
  raw.close();

  // A serialization failure (write skew under SERIALIZABLE): one of the two does not commit.
  const [s1, s2] = [await client(ctx), await client(ctx)];
  for (const s of [s1, s2]) {
    await s.query('BEGIN ISOLATION LEVEL SERIALIZABLE');
    await s.query("SELECT count(*) FROM tx_rows WHERE v LIKE 'ser-%'");
  }
  await quiet(s1.query(ins('ser-1')));
  await quiet(s2.query(ins('ser-2')));
  await quiet(s1.query('COMMIT'));
  await quiet(s2.query('COMMIT'));
  await s1.end();
  await s2.end();

  // The client goes away inside a transaction: the server rolls it back.
  const d = await client(ctx);
  await d.query('BEGIN');
  await d.query(ins('disconnect'));
  (d as unknown as { connection: { stream: { destroy(): void } } }).connection.stream.destroy();
  await until('the server to end the dropped session', async () => (await ctx.pg.psql("SELECT count(*) FROM pg_stat_activity WHERE state = 'idle in transaction'")) === '0' || undefined, 20_000);

  await until('every session closed in the record', async () => {
    const [r] = await sql(ctx, "SELECT countIf(closed_at IS NULL) AS open, count() AS n FROM agate.sessions WHERE subject = 'tx-agent'");
    return Number(r?.n) === 5 && Number(r?.open) === 0 ? true : undefined;
  }, 20_000);
});
tx.after(async (ctx) => ctx.stop?.());

tx('a statement that succeeded is marked rolled back exactly when its row is not in the table', async (ctx) => {
  const persisted = new Set((await ctx.pg.psql('SELECT v FROM tx_rows')).split('\n').filter((v) => v !== ''));
  const rows = await sql(ctx, `SELECT c.text AS text, argMin(r.status, r.seq) AS first_status,
      countIf(r.status = 'error' AND r.command_tag = 'ROLLBACK') AS rollbacks
    FROM agate.commands AS c INNER JOIN agate.responses AS r ON r.command_id = c.command_id
    WHERE c.text LIKE 'INSERT INTO tx_rows%' GROUP BY c.command_id, c.text`);
  const seen: Record<string, string> = {};
  const wrong: string[] = [];
  for (const r of rows) {
    const v = /VALUES \('([^']+)'/.exec(r.text)![1]!;
    if (r.first_status !== 'ok') continue; // ser-1/ser-2 may fail at the INSERT itself
    seen[v] = persisted.has(v) ? 'committed' : 'rolled back';
    if (persisted.has(v) === Number(r.rollbacks) > 0) wrong.push(`${v}: in the table ${persisted.has(v)}, rollback records ${r.rollbacks}`);
    if (Number(r.rollbacks) > 1) wrong.push(`${v}: ${r.rollbacks} rollback records`);
  }
  assert.equal(wrong, []);
  // The corpus covers what it means to: every marker ran, and these did not commit.
  for (const m of MARKERS) if (!m.startsWith('ser-')) assert.ok(seen[m] !== undefined, `${m} ran`);
  assert.equal(
    MARKERS.filter((m) => seen[m] === 'rolled back' && !m.startsWith('ser-')),
    ['explicit-rollback', 'commit-answered-rollback', 'deferred-at-commit', 'sp-undone', 'sp-released', 'implicit-a', 'implicit-b', 'implicit-after-d', 'ext-batch', 'ext-deferred-sync', 'disconnect', 'refusal-aborts', 'chain-second'],
  );
  assert.ok(['ser-1', 'ser-2'].some((m) => !persisted.has(m)), 'one serializable transaction failed');
});

tx('the analyst views and the rollback record say it', async (ctx) => {
  const rows = await sql(ctx, `SELECT text, status, rolled_back, rollback_reason FROM agate.activity WHERE text LIKE 'INSERT INTO tx_rows%' ORDER BY time`);
  const of = (v: string) => rows.find((r) => r.text.includes(`'${v}'`))!;
  assert.is(of('auto').rolled_back, false);
  assert.is(of('auto').rollback_reason, null);
  assert.is(of('explicit-rollback').status, 'ok', 'the statement itself still reads as the server answered it');
  assert.is(of('explicit-rollback').rolled_back, true);
  assert.match(of('explicit-rollback').rollback_reason, /ROLLBACK/);
  assert.match(of('deferred-at-commit').rollback_reason, /COMMIT failed/);
  assert.match(of('implicit-a').rollback_reason, /same implicit transaction/);
  assert.match(of('disconnect').rollback_reason, /session ended/);
  assert.match(of('sp-undone').rollback_reason, /ROLLBACK TO SAVEPOINT/);
  const access = await sql(ctx, "SELECT countIf(rolled_back) AS undone, count() AS n FROM agate.table_access WHERE table_name = 'tx_rows' AND text LIKE '%explicit-rollback%'");
  assert.equal([Number(access[0]!.undone), Number(access[0]!.n)], [1, 1]);
  const decisions = await sql(ctx, "SELECT rolled_back FROM agate.decisions WHERE text LIKE '%sp-kept%'");
  assert.is(decisions[0]!.rolled_back, false);
  // The session's commands over the API (the console's timeline) say it too.
  const [s] = await sql(ctx, "SELECT session_id FROM agate.commands WHERE text LIKE '%explicit-rollback%'");
  const res = await fetch(`${ctx.base}/v1/sessions/${s!.session_id}/commands`, { headers: { authorization: `Bearer ${ctx.analyst}` } });
  assert.is(res.status, 200);
  const listed = ((await res.json()) as { commands: Row[] }).commands;
  const byText = (v: string) => listed.find((r) => r.text.includes(`'${v}'`))!;
  assert.equal([byText('explicit-rollback').status, byText('explicit-rollback').rolled_back], ['ok', true]);
  assert.match(byText('explicit-rollback').rollback_reason, /ended with ROLLBACK/);
  assert.equal([byText('block-commit').rolled_back, byText('block-commit').rollback_reason], [false, null]);
});

tx('an UPDATE … RETURNING fetched in parts and closed early: the record does not pass the rows returned off as the rows changed', async (ctx) => {
  await ctx.pg.psql("INSERT INTO public.tx_rows SELECT 'fetch-' || g, NULL FROM generate_series(1, 5) g");
  const raw = await RawClient.login('127.0.0.1', ctx.agate.postgres.port, await ctx.issuer.mint({ sub: 'tx-fetch' }));
  raw.send(serialize.parse({ text: "UPDATE tx_rows SET v = v || '-u' WHERE v LIKE 'fetch-%' RETURNING v" }), serialize.bind({ portal: 'p1' }),
    serialize.execute({ portal: 'p1', rows: 2 }), serialize.close({ type: 'P', name: 'p1' }), serialize.sync());
  await raw.readyCount(1);
  raw.close();
  const rows = await until('the UPDATE recorded', async () => {
    const r = await sql(ctx, "SELECT r.status AS status, r.command_tag AS tag, r.rows AS rows, r.error_message AS message FROM agate.commands AS c INNER JOIN agate.responses AS r ON r.command_id = c.command_id WHERE c.text LIKE 'UPDATE tx_rows SET v = v%'");
    return r.length > 0 ? r : undefined;
  }, 20_000);
  assert.is(rows.length, 1, 'one Response (before: none, the Close overtook the PortalSuspended)');
  // PostgreSQL ran the whole UPDATE at the first Execute (5 rows); the client fetched 2 and closed the portal.
  assert.is(await ctx.pg.psql("SELECT count(*) FROM tx_rows WHERE v LIKE 'fetch-%-u'"), '5');
  assert.equal([rows[0]!.status, rows[0]!.tag, Number(rows[0]!.rows)], ['ok', null, 2]);
  assert.match(rows[0]!.message ?? '', /rows are the rows returned before the portal closed, not how many it changed/);
});

tx('counts that held: a COPY that failed halfway changed nothing and says so; ON CONFLICT DO NOTHING counts 0', async (ctx) => {
  const raw = await RawClient.login('127.0.0.1', ctx.agate.postgres.port, await ctx.issuer.mint({ sub: 'tx-count' }));
  raw.send(serialize.query('COPY tx_rows (v, p) FROM STDIN'));
  await raw.until((r) => r.name === 'copyInResponse');
  raw.send(serialize.copyData(Buffer.from('copy-1\t\\N\ncopy-2\t\\N\ncopy-3\tnot-an-int\n')), serialize.copyDone());
  await raw.readyCount(1);
  for (let i = 0; i < 2; i++) raw.send(serialize.query('INSERT INTO tx_parent VALUES (7) ON CONFLICT DO NOTHING'));
  await raw.readyCount(2);
  raw.close();
  assert.is(await ctx.pg.psql("SELECT count(*) FROM tx_rows WHERE v LIKE 'copy-%'"), '0');
  const rows = await until('the COPY and both INSERTs recorded', async () => {
    const r = await sql(ctx, "SELECT c.text AS text, r.status AS status, r.command_tag AS tag, r.rows AS rows, r.error_code AS code FROM agate.commands AS c INNER JOIN agate.responses AS r ON r.command_id = c.command_id WHERE c.text LIKE 'COPY tx_rows%' OR c.text LIKE 'INSERT INTO tx_parent%' ORDER BY r.seq");
    return r.length === 3 ? r : undefined;
  }, 20_000);
  assert.equal(rows.map((r) => [r.status, r.tag, Number(r.rows), r.code]), [['error', null, 0, '22P02'], ['ok', 'INSERT 0 1', 1, null], ['ok', 'INSERT 0 0', 0, null]]);
});

tx.run();

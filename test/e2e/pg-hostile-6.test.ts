// A hostile agent with a valid token, sixth pass (pg-hostile.test.ts … -5 have the first five):
// through the real `agate start` in front of a PostgreSQL 15 that logs every statement it
// executes (pgaudit). Corners tried here: a setting named in another case (`SET "Role"`, which
// the server finds case-insensitively) or set by set_config; built-ins and statements that act
// on other sessions or the server (advisory locks, statistics resets, logical decoding,
// two-phase commit); a function called as a field (`(x).f` is `f(x)`); a masked client reaching
// a whole row by column notation (`v.record_out` is `record_out(v)`) or changing search_path
// from code only read as text; and a client asking for protocol 3.2. Witnesses: the database
// read directly, the replies on the wire, and pgaudit's log checked against the record.
import { suite } from '../harness/suite.js';
import * as assert from 'uvu/assert';
import { randomBytes } from 'node:crypto';
import { connect } from 'node:net';
import { serialize } from 'pg-protocol';
import { auditAgent, refused, send, startHostile, stopHostile, type HostileCtx } from './pg-hostile-fixture.js';
import { RawClient } from './raw-client.js';

const hostile = suite<HostileCtx>('a hostile agent against the PostgreSQL proxy, sixth pass');

/** The secret column's values: no detector knows their shape. */
const TOKEN = `tok${randomBytes(10).toString('hex')}`;
/** The token as record_send spells it (hex of its bytes). */
const randomHex = (t: string) => Buffer.from(t).toString('hex');
const ROLE = 'h3_auditor';

hostile.before(async (ctx) => {
  await startHostile(ctx, {
    tokens: [TOKEN],
    extraRules: `    - id: no-identity
      action: deny
      match: { claims: { masked: "no" }, sql: { effects: [privilege] } }
    - id: no-admin
      action: deny
      match: { claims: { masked: "no" }, sql: { effects: [admin] } }
    - id: vault-unread
      action: deny
      match: { claims: { masked: "no" }, sql: { tables_read: [vault] } }
    - id: no-settings
      action: deny
      match: { claims: { masked: "no" }, sql: { statements: [VariableSetStmt] } }
`,
  });
  // A role the upstream login may switch to: a SET ROLE that ran would show in current_user.
  await ctx.agate.pg.psql(`CREATE ROLE ${ROLE} NOLOGIN; GRANT ${ROLE} TO ${ctx.agate.pg.users.scram.user};`);
});
hostile.after(stopHostile);

/** The plain agent (claim `masked: no`, which the refusing rules of this suite match). */
async function plain(ctx: HostileCtx): Promise<void> {
  ctx.session ??= await ctx.agate.client({ masked: 'no' });
}

hostile('a setting named in another case is the setting: SET "Role" is SET ROLE', async (ctx) => {
  await plain(ctx);
  await refused(ctx, `SET ROLE ${ROLE}`, 'no-identity');
  for (const sql of [
    `SET "Role" TO ${ROLE}`,
    `SET LOCAL "ROLE" = ${ROLE}`,
    `SET SESSION "Session_Authorization" TO ${ROLE}`,
    `SELECT set_config('Role', '${ROLE}', false)`,
    `CREATE FUNCTION public.as_auditor() RETURNS text LANGUAGE sql SET "Role" = ${ROLE} AS 'SELECT current_user::text'`,
    `ALTER ROLE CURRENT_USER SET "Role" = ${ROLE}`,
  ]) await refused(ctx, sql, 'no-identity');
  // set_config is SET by another name, as pg_notify is NOTIFY: a rule naming VariableSetStmt refuses it.
  await refused(ctx, 'SET statement_timeout = 1', 'no-settings');
  await refused(ctx, "SELECT set_config('statement_timeout', '1', false)", 'no-settings');
  const timeout = await send(ctx, 'SHOW statement_timeout');
  assert.equal(timeout.ok && timeout.rows, [{ statement_timeout: '0' }]);
  const who = await send(ctx, 'SELECT current_user::text AS who');
  assert.equal(who.ok && who.rows, [{ who: ctx.agate.pg.users.scram.user }]);
  assert.is(await ctx.agate.pg.psql("SELECT count(*) FROM pg_proc WHERE proname = 'as_auditor'"), '0');
});

hostile('built-ins and statements that act on other sessions or on the server are admin: advisory locks, statistics resets, logical decoding, two-phase commit', async (ctx) => {
  await plain(ctx);
  for (const sql of [
    // Held by the agent, they block every other session that takes the same key (a migration, a job queue).
    'SELECT pg_advisory_lock(42)',
    'SELECT pg_try_advisory_lock(42)',
    'SELECT pg_advisory_lock_shared(4, 2)',
    'SELECT pg_catalog.pg_advisory_xact_lock(42)',
    'SELECT pg_try_advisory_xact_lock_shared(42)',
    // The server's own record of what ran (and what autovacuum goes by).
    'SELECT pg_stat_reset()',
    "SELECT pg_stat_reset_shared('bgwriter')",
    "SELECT pg_stat_reset_single_table_counters('people'::regclass)",
    "SELECT pg_stat_reset_slru('Xact')",
    // Logical decoding: every table's changes, consumed for the slot's owner.
    "SELECT * FROM pg_logical_slot_get_changes('agate_h3', NULL, NULL)",
    "SELECT * FROM pg_logical_slot_peek_binary_changes('agate_h3', NULL, NULL)",
    "SELECT pg_replication_slot_advance('agate_h3', '0/0')",
    "SELECT pg_copy_logical_replication_slot('agate_h3', 'agate_h3b')",
    "SELECT pg_logical_emit_message(true, 'agate', 'x')",
    "SELECT pg_ls_replslotdir('agate_h3')",
    // Two-phase commit: a transaction that outlives the session, or another session's, finished.
    "COMMIT PREPARED 'app-42'",
    "ROLLBACK PREPARED 'app-42'",
  ]) await refused(ctx, sql, 'no-admin');
  // The agent's session is still open: a lock it took would be held now.
  assert.is(await ctx.agate.pg.psql("SELECT count(*) FROM pg_locks WHERE locktype = 'advisory'"), '0');
});

hostile('a one-argument function called as a field, (x).f, is a call of f: effects, SQL text and masking see it', async (ctx) => {
  await plain(ctx);
  // Field selection calls a function of the value, with no call in the text's tree.
  for (const sql of ["SELECT ('/etc/hostname'::text).pg_read_file", 'SELECT (42::bigint).pg_advisory_lock', "SELECT ('.'::text).pg_ls_dir", 'SELECT ((0)).pg_cancel_backend']) {
    await refused(ctx, sql, 'no-admin');
  }
  await refused(ctx, "SELECT ('SELECT to_tsvector(api_token) FROM vault'::text).ts_stat", 'vault-unread');
  assert.is(await ctx.agate.pg.psql("SELECT count(*) FROM pg_locks WHERE locktype = 'advisory'"), '0');
  // A masked client: the query's words come back masked; a function of its own, called so on a
  // masked column, would store it.
  const read = await send(ctx, "SELECT ('SELECT to_tsvector(api_token) FROM vault'::text).ts_stat", true);
  assert.ok(read.ok && !JSON.stringify(read.rows).includes(TOKEN), JSON.stringify(read));
  const made = await send(ctx, "CREATE FUNCTION public.stash(t text) RETURNS int LANGUAGE sql AS 'INSERT INTO public.scratch VALUES (9, t) RETURNING 1'", true);
  assert.ok(made.ok, JSON.stringify(made));
  const copied = await send(ctx, 'SELECT (api_token).stash FROM vault', true);
  // Refused as running stored code (a function made in the database), or, while the proxy's
  // catalog reading is under a second old and does not show the new function yet (SECURITY.md),
  // as a masked column copied where the mask cannot follow: either way it never runs.
  assert.ok(!copied.ok && /agate\.unverifiable.*function public\.stash|copies a column that mask set/.test(copied.message), JSON.stringify(copied));
  ctx.refusals += 1;
  assert.is(await ctx.agate.pg.psql('SELECT count(*) FROM scratch WHERE id = 9'), '0');
});

hostile('a whole row through column notation (v.record_out is record_out(v)) reaches a masked client masked, and no function of its own takes one', async (ctx) => {
  // Read: a built-in called on the row by a qualified name, whose result column is named after it.
  for (const sql of ['SELECT v.record_out FROM vault v', 'SELECT v.quote_literal AS id FROM vault v', 'SELECT vault.concat FROM vault', 'SELECT public.vault.record_send FROM public.vault', 'SELECT x.concat FROM (SELECT * FROM vault) x', 'SELECT v.quote_nullable::int FROM vault v']) {
    const r = await send(ctx, sql, true);
    assert.not.match(JSON.stringify(r), TOKEN, `${sql}: ${JSON.stringify(r)}`);
    assert.not.match(JSON.stringify(r), randomHex(TOKEN), `${sql}: ${JSON.stringify(r)}`);
  }
  // Copy: a function of the agent's own taking a row, called the same way, would store it where a
  // later plain read gets it under a name no rule masks.
  for (const sql of [
    "CREATE FUNCTION public.keep(anyelement) RETURNS int LANGUAGE sql AS 'INSERT INTO public.scratch VALUES (7, $1::text) RETURNING 1'",
    "CREATE FUNCTION public.keep(r public.vault) RETURNS int LANGUAGE sql AS 'INSERT INTO public.scratch VALUES (7, r::text) RETURNING 1'",
    "CREATE FUNCTION public.keep(r record, n int DEFAULT 0) RETURNS int LANGUAGE plpgsql AS 'BEGIN INSERT INTO public.scratch VALUES (7, r::text); RETURN 1; END'",
    "CREATE FUNCTION public.keep(VARIADIC r anyarray) RETURNS int LANGUAGE sql AS 'INSERT INTO public.scratch VALUES (7, r::text) RETURNING 1'",
  ]) {
    const r = await send(ctx, sql, true);
    assert.ok(!r.ok && /whole row/.test(r.message), `${sql}: ${JSON.stringify(r)}`);
    ctx.refusals += 1;
  }
  assert.is(await ctx.agate.pg.psql("SELECT count(*) FROM pg_proc WHERE proname = 'keep'"), '0');
  // The built-in spelling copies the row as well as a function of its own would.
  const copied = await send(ctx, 'INSERT INTO scratch SELECT 8, v.concat FROM vault v', true);
  assert.ok(!copied.ok && /copies a column/.test(copied.message), JSON.stringify(copied));
  ctx.refusals += 1;
  assert.is(await ctx.agate.pg.psql('SELECT count(*) FROM scratch WHERE id IN (7, 8)'), '0');
  // A function of scalars is still the masked client's to make; a real column spelled qualified is itself.
  const scalar = await send(ctx, "CREATE FUNCTION public.twice(n int) RETURNS int LANGUAGE sql AS 'SELECT n * 2'", true);
  assert.ok(scalar.ok, JSON.stringify(scalar));
  const r = await send(ctx, 'SELECT v.id, v.api_token FROM vault v', true);
  assert.ok(r.ok && JSON.stringify(r.rows).includes('"id":1') && !JSON.stringify(r.rows).includes(TOKEN), JSON.stringify(r));
});

hostile('a masked client may not move pg_catalog back in search_path from code Agate reads only as text', async (ctx) => {
  for (const sql of [
    "DO $$BEGIN PERFORM set_config('search_path', 'other, pg_catalog', false); END$$",
    "SELECT query_to_xml('SELECT set_config(''search_path'', ''other, pg_catalog'', false)', true, false, '')",
    "CREATE FUNCTION public.sp() RETURNS text LANGUAGE sql AS $$SELECT set_config('search_path', 'other, pg_catalog', false)$$",
    'SET "Search_Path" TO other, pg_catalog',
  ]) {
    const r = await send(ctx, sql, true);
    assert.ok(!r.ok && /search_path/.test(r.message), `${sql}: ${JSON.stringify(r)}`);
    ctx.refusals += 1;
  }
  const path = await send(ctx, 'SHOW search_path', true);
  assert.ok(path.ok && !JSON.stringify(path.rows).includes('other'), JSON.stringify(path));
});

/** Everything Agate answers to `bytes` on a fresh connection, until it asks for a password (or closes). */
function greeting(ctx: HostileCtx, bytes: Buffer): Promise<Buffer> {
  return new Promise<Buffer>((resolve) => {
    const chunks: Buffer[] = [];
    const s = connect({ host: ctx.agate.host, port: ctx.agate.port }, () => s.write(bytes));
    const done = () => {
      s.destroy();
      resolve(Buffer.concat(chunks));
    };
    s.on('data', (c) => {
      chunks.push(c);
      // AuthenticationCleartextPassword: 'R' | 8 | 3
      if (Buffer.concat(chunks).includes(Buffer.from([0x52, 0, 0, 0, 8, 0, 0, 0, 3]))) done();
    });
    s.on('error', () => undefined);
    s.on('close', done);
    setTimeout(done, 10_000).unref();
  });
}

/** A StartupMessage asking for protocol `major.minor` with `params`. */
function startup(major: number, minor: number, params: Record<string, string>): Buffer {
  const body = Buffer.concat([...Object.entries(params).flatMap(([k, v]) => [Buffer.from(`${k}\0`), Buffer.from(`${v}\0`)]), Buffer.from([0])]);
  const head = Buffer.alloc(8);
  head.writeInt32BE(8 + body.length, 0);
  head.writeInt32BE((major << 16) | minor, 4);
  return Buffer.concat([head, body]);
}

hostile('protocol 3.2 and _pq_ options: Agate answers NegotiateProtocolVersion for 3.0 as the server does, never silently', async (ctx) => {
  // 'v' | Int32 len | Int32 newest minor | Int32 n | n × option name
  const negotiate = (minor: number, options: string[]) => {
    const names = Buffer.concat(options.map((o) => Buffer.from(`${o}\0`)));
    const b = Buffer.alloc(13);
    b[0] = 0x76;
    b.writeInt32BE(12 + names.length, 1);
    b.writeInt32BE((3 << 16) | minor, 5);
    b.writeInt32BE(options.length, 9);
    return Buffer.concat([b, names]);
  };
  const params = { user: 'agent', database: 'appdb' };
  const v32 = await greeting(ctx, startup(3, 2, params));
  assert.is(v32.indexOf(negotiate(0, [])), 0, `3.2: ${v32.toString('latin1')}`);
  const withOption = await greeting(ctx, startup(3, 2, { ...params, '_pq_.agate_test': '1' }));
  assert.is(withOption.indexOf(negotiate(0, ['_pq_.agate_test'])), 0, `3.2 with an option: ${withOption.toString('latin1')}`);
  const v30 = await greeting(ctx, startup(3, 0, { ...params, '_pq_.agate_test': '1' }));
  assert.is(v30.indexOf(negotiate(0, ['_pq_.agate_test'])), 0, `3.0 with an option: ${v30.toString('latin1')}`);
  const plain30 = await greeting(ctx, serialize.startup(params));
  assert.is(plain30[0], 0x52, `3.0: ${plain30.toString('latin1')}`);
  // Agate's keys are 3.0's 4 bytes; a 3.2 CancelRequest (a longer key) holding one cancels nothing.
  const victim = await RawClient.login(ctx.agate.host, ctx.agate.port, await ctx.agate.token({ masked: 'no' }));
  try {
    victim.send(serialize.query('SELECT pg_sleep(1.5) AS slept'));
    await new Promise((r) => setTimeout(r, 300));
    const long = Buffer.alloc(16 + 28);
    long.writeInt32BE(long.length, 0);
    long.writeInt32BE(80877102, 4);
    long.writeInt32BE(victim.key!.processId, 8);
    long.writeInt32BE(victim.key!.secretKey, 12);
    await new Promise<void>((resolve) => {
      const s = connect({ host: ctx.agate.host, port: ctx.agate.port }, () => s.end(long));
      s.on('error', () => resolve());
      s.on('close', () => resolve());
      setTimeout(() => (s.destroy(), resolve()), 5_000).unref();
    });
    const replies = await victim.readyCount(1);
    assert.ok(replies.some((r) => r.name === 'dataRow') && !replies.some((r) => r.name === 'error'), replies.map((r) => r.name).join(','));
  } finally {
    victim.close();
  }
});

hostile('pgaudit: everything PostgreSQL executed was recorded as allowed; nothing refused ran', async (ctx) => {
  const { entries, checked, report } = await auditAgent(ctx);
  assert.ok(report.checked > 3, `pgaudit logged the attempts (${report.checked})`);
  assert.equal(report.unexplained, []);
  assert.equal(report.substituted, []);
  assert.equal(report.overrun, []);
  assert.equal(entries.filter((e) => checked(e) && /advisory|pg_stat_reset|_changes|set_config\('search_path'|"Role"|SET ROLE/i.test(e.statement)).map((e) => e.statement), []);
  const refusedCount = ctx.agate.events().filter((e) => e.type === 'Response' && (e as { status?: string }).status === 'refused').length;
  assert.ok(refusedCount >= ctx.refusals, `${refusedCount} refusals recorded, ${ctx.refusals} expected`);
});

hostile.run();

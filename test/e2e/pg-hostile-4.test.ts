// A hostile agent with a valid token, fourth pass (pg-hostile.test.ts, -2 and -3 have the first
// three): through the real `agate start` in front of a PostgreSQL 15 that logs every statement it
// executes (pgaudit). Corners tried here: the names PostgreSQL shares between SQL and the extended
// protocol (a prepared statement made by Parse is one `EXECUTE` can run and `DEALLOCATE` can drop;
// a portal made by Bind is a cursor `FETCH`, `MOVE`, `CLOSE` and PL/pgSQL can reach), so that
// what Agate decided under a name is not what the server runs under it; a masked column quoted in
// an error detail; what one session may make Agate keep; the record of a query string an error
// stops; spellings of the lexer. Witnesses: the database read directly, the replies on the wire,
// the record, and pgaudit's log checked against it.
import { suite } from '../harness/suite.js';
import * as assert from 'uvu/assert';
import { randomBytes } from 'node:crypto';
import { serialize } from 'pg-protocol';
import type { Command, Response } from '../../schemas/src/events.js';
import { untilQuiet, waitForEvents } from './agate-fixture.js';
import { auditAgent, intact, refused, send, startHostile, stopHostile, type HostileCtx } from './pg-hostile-fixture.js';
import { RawClient, type Reply } from './raw-client.js';

const hostile = suite<HostileCtx>('a hostile agent against the PostgreSQL proxy, fourth pass');

/** A masked column's values: no detector knows their shape, only the column rule masks them. */
const TOKEN = `tok${randomBytes(10).toString('hex')}`;

hostile.before((ctx) => startHostile(ctx, { tokens: [TOKEN], moreSql: "INSERT INTO public.scratch VALUES (1, 'kept');" }));
hostile.after(stopHostile);

function describe(r: Reply): unknown {
  const { name, length: _length, ...rest } = r as Reply & Record<string, unknown>;
  return { name, ...Object.fromEntries(Object.entries(rest).map(([k, v]) => [k, Buffer.isBuffer(v) ? v.toString('latin1') : v])) };
}
const seen = (replies: Reply[]) => JSON.stringify(replies.map(describe));
const rows = (replies: Reply[]) => replies.filter((r) => r.name === 'dataRow').length;
const leaks = (replies: Reply[]) => seen(replies).includes(TOKEN) || seen(replies).includes(TOKEN.slice(3, 15));
const errorOf = (replies: Reply[]) => replies.find((r) => r.name === 'error') as (Reply & { code?: string; message?: string }) | undefined;

async function login(ctx: HostileCtx, claims: Record<string, unknown> = {}): Promise<RawClient> {
  return RawClient.login(ctx.agate.host, ctx.agate.port, await ctx.agate.token(claims));
}

/** Sends one simple Query and returns its replies up to ReadyForQuery. */
async function query(raw: RawClient, sql: string): Promise<Reply[]> {
  raw.send(serialize.query(sql));
  return raw.readyCount(1);
}

hostile('a portal made by Bind is no cursor for SQL: FETCH and MOVE do not run its statement undecided', async (ctx) => {
  const raw = await login(ctx);
  try {
    for (const fetch of ['FETCH ALL FROM p', 'FETCH FORWARD 1 IN p', 'MOVE ALL IN p', 'FETCH ALL FROM "p"']) {
      await query(raw, 'BEGIN');
      // Parse and Bind run nothing; Agate decides a portal's statement at its Execute.
      raw.send(serialize.parse({ text: 'DELETE FROM people RETURNING id' }), serialize.bind({ portal: 'p' }), serialize.sync());
      let replies = await raw.readyCount(1);
      assert.is(errorOf(replies), undefined, seen(replies));
      replies = await query(raw, fetch);
      assert.is(rows(replies), 0, `${fetch}: ${seen(replies)}`);
      assert.is(errorOf(replies)?.code, '0A000', `${fetch} ran: ${seen(replies)}`);
      assert.match(errorOf(replies)?.message ?? '', /portal "p": it was bound with the extended protocol/);
      await query(raw, 'ROLLBACK');
      await intact(ctx);
    }
    // cursor_to_xml fetches the portal its argument names: the same run, through a built-in.
    for (const sql of ["SELECT cursor_to_xml('p', 10, false, false, '')", "SELECT cursor_to_xml(c, 10, false, false, '') FROM (SELECT 'p'::refcursor AS c) s"]) {
      await query(raw, 'BEGIN');
      raw.send(serialize.parse({ text: 'DELETE FROM people RETURNING id' }), serialize.bind({ portal: 'p' }), serialize.sync());
      await raw.readyCount(1);
      const replies = await query(raw, sql);
      assert.match(errorOf(replies)?.message ?? '', /agate\.unverifiable/, `${sql} ran: ${seen(replies)}`);
      await query(raw, 'COMMIT');
      await intact(ctx);
    }
    // Through Execute the same portal is decided, and refused by policy.
    await query(raw, 'BEGIN');
    raw.send(serialize.parse({ text: 'DELETE FROM people RETURNING id' }), serialize.bind({ portal: 'p' }), serialize.sync());
    await raw.readyCount(1);
    raw.send(serialize.execute({ portal: 'p' }), serialize.sync());
    let replies = await raw.readyCount(1);
    assert.match(errorOf(replies)?.message ?? '', /rule "no-delete"/, seen(replies));
    await query(raw, 'ROLLBACK');
    // A cursor DECLAREd in SQL, and a portal closed then declared again in the same text, still fetch.
    replies = await query(raw, 'BEGIN; DECLARE c CURSOR FOR SELECT id FROM people ORDER BY id; FETCH 1 FROM c; MOVE 1 IN c; FETCH ALL FROM c; COMMIT');
    assert.is(rows(replies), 1, seen(replies));
    assert.is(errorOf(replies), undefined, seen(replies));
    await query(raw, 'BEGIN');
    raw.send(serialize.parse({ text: 'SELECT 1 AS one' }), serialize.bind({ portal: 'p' }), serialize.sync());
    await raw.readyCount(1);
    replies = await query(raw, 'CLOSE p; DECLARE p CURSOR FOR SELECT id FROM people ORDER BY id; FETCH ALL FROM p; COMMIT');
    assert.is(rows(replies), 2, seen(replies));
  } finally {
    raw.close();
  }
  // What pgaudit saw run: no DELETE of people.
  assert.is(await ctx.agate.pg.psql('SELECT count(*) FROM people'), '2');
});

hostile('prepared statement names are shared: a name Parse made, dropped or re-made by SQL, runs what Agate decided', async (ctx) => {
  const raw = await login(ctx);
  const masked = await login(ctx, { masked: 'yes' });
  try {
    // SQL PREPARE, dropped by the protocol's Close, made again by Parse: EXECUTE runs the new one.
    let replies = await query(raw, 'PREPARE ps AS SELECT 1 AS x');
    assert.is(errorOf(replies), undefined, seen(replies));
    raw.send(serialize.close({ type: 'S', name: 'ps' }), serialize.parse({ name: 'ps', text: 'DELETE FROM people RETURNING id' }), serialize.sync());
    replies = await raw.readyCount(1);
    replies = await query(raw, 'EXECUTE ps');
    assert.is(rows(replies), 0, `EXECUTE ps: ${seen(replies)}`);
    assert.is(errorOf(replies)?.code, '26000', `EXECUTE ps ran: ${seen(replies)}`);
    await intact(ctx);
    // A statement PREPAREd in SQL, dropped and made again in SQL, is still followed.
    replies = await query(raw, 'DEALLOCATE ps; PREPARE ps AS SELECT 2 AS two; EXECUTE ps');
    assert.is(rows(replies), 1, seen(replies));

    // Parse, then dropped and re-made by SQL under the same name, read by a masked client.
    for (const drop of ['DEALLOCATE s', 'DEALLOCATE ALL', 'DISCARD ALL', 'DEALLOCATE PREPARE s']) {
      masked.send(serialize.parse({ name: 's', text: 'SELECT 1::text AS x' }), serialize.sync());
      replies = await masked.readyCount(1);
      assert.is(errorOf(replies), undefined, seen(replies));
      replies = await query(masked, drop);
      replies = await query(masked, 'PREPARE s AS SELECT api_token AS x FROM vault');
      masked.send(serialize.bind({ statement: 's' }), serialize.execute({}), serialize.sync());
      replies = await masked.readyCount(1);
      assert.not.ok(leaks(replies), `${drop}: the masked client saw ${seen(replies)}`);
      assert.is(errorOf(replies)?.code, '26000', `${drop}: ${seen(replies)}`);
      // Read as itself, the masked client gets the value masked.
      replies = await query(masked, 'EXECUTE s');
      assert.is(rows(replies), 1, seen(replies));
      assert.not.ok(leaks(replies), `${drop}: the masked client saw ${seen(replies)}`);
      await query(masked, 'DEALLOCATE ALL');
      masked.send(serialize.close({ type: 'S', name: 's' }), serialize.sync());
      await masked.readyCount(1);
    }
  } finally {
    raw.close();
    masked.close();
  }
});

hostile('portal names are shared: a portal Bind made, closed and re-declared by SQL, runs what Agate decided', async (ctx) => {
  const masked = await login(ctx, { masked: 'yes' });
  try {
    for (const close of ['CLOSE c', 'CLOSE ALL']) {
      await query(masked, 'BEGIN');
      masked.send(serialize.parse({ text: 'SELECT 2::text AS x' }), serialize.bind({ portal: 'c' }), serialize.sync());
      let replies = await masked.readyCount(1);
      assert.is(errorOf(replies), undefined, seen(replies));
      replies = await query(masked, `${close}; DECLARE c CURSOR FOR SELECT api_token AS x FROM vault`);
      masked.send(serialize.execute({ portal: 'c' }), serialize.sync());
      replies = await masked.readyCount(1);
      assert.not.ok(leaks(replies), `${close}: the masked client saw ${seen(replies)}`);
      assert.is(errorOf(replies)?.code, '34000', `${close}: ${seen(replies)}`);
      await query(masked, 'ROLLBACK');
    }
  } finally {
    masked.close();
  }
});

hostile('PL/pgSQL reaches portals by name too: a DO block cannot fetch, close or re-open a portal Bind made', async (ctx) => {
  const raw = await login(ctx);
  const masked = await login(ctx, { masked: 'yes' });
  try {
    for (const body of ["DECLARE c refcursor := 'p'; r record; BEGIN FETCH c INTO r; END", "DECLARE c refcursor := 'p'; BEGIN MOVE c; END", "DECLARE c refcursor; r record; BEGIN c := 'p'; FETCH c INTO r; END"]) {
      await query(raw, 'BEGIN');
      raw.send(serialize.parse({ text: 'DELETE FROM people RETURNING id' }), serialize.bind({ portal: 'p' }), serialize.sync());
      await raw.readyCount(1);
      const replies = await query(raw, `DO $$ ${body} $$`);
      assert.match(errorOf(replies)?.message ?? '', /agate\.unverifiable/, `${body} ran: ${seen(replies)}`);
      await query(raw, 'ROLLBACK');
      await intact(ctx);
    }
    for (const body of ["DECLARE k refcursor := 'c'; BEGIN CLOSE k; OPEN k FOR SELECT api_token AS x FROM vault; END"]) {
      await query(masked, 'BEGIN');
      masked.send(serialize.parse({ text: 'SELECT 2::text AS x' }), serialize.bind({ portal: 'c' }), serialize.sync());
      await masked.readyCount(1);
      let replies = await query(masked, `DO $$ ${body} $$`);
      assert.match(errorOf(replies)?.message ?? '', /agate\.unverifiable/, `${body} ran: ${seen(replies)}`);
      await query(masked, 'ROLLBACK');
      await query(masked, 'BEGIN');
      masked.send(serialize.parse({ text: 'SELECT 2::text AS x' }), serialize.bind({ portal: 'c' }), serialize.execute({ portal: 'c' }), serialize.sync());
      replies = await masked.readyCount(1);
      assert.not.ok(leaks(replies), `${body}: the masked client saw ${seen(replies)}`);
      assert.is(rows(replies), 1, seen(replies));
      await query(masked, 'ROLLBACK');
    }
    // A cursor the code opens and loops over itself still runs.
    const replies = await query(raw, 'DO $$ DECLARE c CURSOR FOR SELECT id FROM people; r record; BEGIN FOR r IN c LOOP END LOOP; END $$');
    assert.is(errorOf(replies), undefined, seen(replies));
  } finally {
    raw.close();
    masked.close();
  }
});

hostile('a masked column quoted in an error detail by a statement that never names it does not reach the masked client', async (ctx) => {
  const masked = await login(ctx, { masked: 'yes' });
  try {
    // A NOT NULL violation quotes the whole row the statement would have written.
    let replies = await query(masked, 'UPDATE vault SET id = NULL WHERE id = 1');
    assert.is(errorOf(replies)?.code, '23502', seen(replies));
    assert.not.ok(leaks(replies), `the masked client saw ${seen(replies)}`);
    assert.is((errorOf(replies) as { detail?: string }).detail, 'Failing row contains ([masked]).');
    // Other shapes that carry the column under another name stay masked or refused.
    for (const sql of ['UPDATE vault SET id = id RETURNING api_token AS x', 'SELECT x FROM vault, LATERAL (SELECT api_token) l(x)', 'VALUES ((SELECT api_token FROM vault LIMIT 1))', 'TABLE vault', "DO $$ BEGIN RAISE NOTICE '%', (SELECT api_token FROM vault LIMIT 1); END $$"]) {
      replies = await query(masked, sql);
      assert.not.ok(leaks(replies), `${sql}: the masked client saw ${seen(replies)}`);
    }
  } finally {
    masked.close();
  }
  // An unmasked client gets the server's detail as it is (the record keeps the message only).
  const raw = await login(ctx);
  try {
    const replies = await query(raw, 'UPDATE vault SET id = NULL WHERE id = 1');
    assert.ok(leaks(replies), seen(replies));
  } finally {
    raw.close();
  }
  await untilQuiet(ctx.agate);
  assert.not.ok(ctx.agate.busLog().includes(TOKEN), 'the bus log carries the masked column');
});

hostile('statements and bound values a session keeps are bounded: one session cannot fill the proxy\'s memory', async (ctx) => {
  const raw = await login(ctx);
  const other = await login(ctx);
  // Five statements of 14 MiB each (each under max_message_bytes): the server would keep them
  // all, and so would Agate; past 64 MiB for the session the Parse is refused.
  const big = (i: number) => `SELECT ${i} AS n /* ${'x'.repeat(14 << 20)} */`;
  try {
    const outcomes: (string | undefined)[] = [];
    for (let i = 1; i <= 5; i++) {
      raw.send(serialize.parse({ name: `big${i}`, text: big(i) }), serialize.sync());
      outcomes.push(errorOf(await raw.readyCount(1))?.code);
    }
    assert.equal(outcomes, [undefined, undefined, undefined, undefined, '54000']);
    // Bound values count too: a 14 MiB value does not fit beside them.
    raw.send(serialize.bind({ statement: 'big1', portal: 'p', values: ['y'.repeat(14 << 20)] }), serialize.sync());
    assert.is(errorOf(await raw.readyCount(1))?.code, '54000');
    // Closing frees the room; the session and its neighbours go on.
    raw.send(serialize.close({ type: 'S', name: 'big1' }), serialize.parse({ name: 'big5', text: big(5) }), serialize.parse({ name: 'small', text: 'SELECT 5 AS small' }), serialize.bind({ statement: 'small' }), serialize.execute({}), serialize.sync());
    const replies = await raw.readyCount(1);
    assert.is(errorOf(replies), undefined, seen(replies).slice(0, 300));
    assert.is(rows(replies), 1);
    assert.is(rows(await query(other, 'SELECT 1 AS neighbour')), 1);
  } finally {
    raw.close();
    other.close();
  }
});

hostile('the record of a query string stopped by an error in its middle says which statements ran', async (ctx) => {
  const raw = await login(ctx);
  const marker = `mid-${randomBytes(4).toString('hex')}`;
  const texts = [`SELECT '${marker}' AS a`, 'SELECT 1/0', `UPDATE scratch SET note = '${marker}'`];
  try {
    const replies = await query(raw, texts.join('; '));
    assert.is(errorOf(replies)?.code, '22012', seen(replies));
  } finally {
    raw.close();
  }
  const events = await waitForEvents(ctx.agate, (ev) => ev.filter((e) => e.type === 'Response' && ev.some((c) => c.type === 'Command' && c.event_id === (e as Response).command_id && c.text.includes(marker) && c.text.startsWith('UPDATE'))).length === 1);
  const status = (text: string) => {
    const command = events.find((e): e is Command => e.type === 'Command' && e.text === text)!;
    return events.find((e): e is Response => e.type === 'Response' && e.command_id === command.event_id)!.status;
  };
  assert.equal(texts.map(status), ['ok', 'error', 'skipped']);
  assert.is(await ctx.agate.pg.psql(`SELECT count(*) FROM scratch WHERE note = '${marker}'`), '0');
});

hostile('spellings the lexer must read as the server does: Unicode escapes, nested comments, dollar quotes', async (ctx) => {
  await refused(ctx, 'UPDATE U&"l\\0065dger" SET amount = 0', 'ledger-read-only');
  await refused(ctx, 'UPDATE U&"l!0065dger" UESCAPE \'!\' SET amount = 0', 'ledger-read-only');
  await refused(ctx, 'DELETE/**/FROM people', 'no-delete');
  await refused(ctx, "SELECT U&'!0027' UESCAPE '!'; DELETE FROM people", 'no-delete');
  await refused(ctx, '/* /* */ SELECT 1; */ DELETE FROM people', 'no-delete');
  // Text that only looks like a statement is one: it runs, and nothing else does.
  for (const sql of ['SELECT 1 /* /* */ ; DELETE FROM people; /* */ */', 'SELECT $tag$ $$; DELETE FROM people; $$ $tag$', "SELECT E'\\'; DELETE FROM people; --'"]) {
    const r = await send(ctx, sql);
    assert.ok(r.ok && r.rows.length === 1, `${sql}: ${JSON.stringify(r)}`);
    await intact(ctx);
  }
});

hostile('pgaudit: everything PostgreSQL executed was recorded as allowed; nothing refused ran', async (ctx) => {
  const { report } = await auditAgent(ctx);
  assert.ok(report.checked > 5, `pgaudit logged the attempts (${report.checked})`);
  assert.equal(report.unexplained, []);
  assert.equal(report.substituted, []);
  // A SELECT's portal is started at Bind (PortalStart), where pgaudit logs it; its rows come only
  // with an Execute, which Agate refused (26000 and 34000 above) or the transaction was rolled
  // back before: once per attempt, beside the EXECUTE s that ran each time as the PREPARE allowed
  // it, and the one Execute of portal c that ran.
  assert.equal(report.overrun.sort(), ['PREPARE s AS SELECT api_token AS x FROM vault ran 8×, allowed 4×', 'SELECT 2::text AS x ran 4×, allowed 1×']);
});

hostile.run();

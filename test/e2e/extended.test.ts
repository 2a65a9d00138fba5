import { suite } from '../harness/suite.js';
import * as assert from 'uvu/assert';
import { serialize } from 'pg-protocol';
import type { AgateEvent, Command, Response } from '../../schemas/src/events.js';
import { startAgate, waitForEvents, type AgateFixture } from './agate-fixture.js';
import { RawClient } from './raw-client.js';

const extended = suite<{ agate: AgateFixture }>('extended query protocol through Agate');

extended.before(async (ctx) => {
  ctx.agate = await startAgate();
});
extended.after(async (ctx) => {
  await ctx.agate?.cleanup();
});

const commands = (agate: AgateFixture) => agate.events().filter((e): e is Command => e.type === 'Command');

extended('node-postgres: parameterised statements run and record their bound values', async ({ agate }) => {
  const c = await agate.client();
  try {
    const r = await c.query('SELECT id, name FROM items WHERE id = $1 AND name = $2', [2, 'beta']);
    assert.equal(r.rows, [{ id: 2, name: 'beta' }]);
    await c.query('INSERT INTO items VALUES ($1, $2)', [40, null]);
    const del = await c.query('DELETE FROM items WHERE id = $1', [40]);
    assert.is(del.rowCount, 1);
    // A named prepared statement, executed twice with different values.
    for (const id of [1, 3]) {
      const p = await c.query({ name: 'by-id', text: 'SELECT name FROM items WHERE id = $1', values: [id] });
      assert.is(p.rows.length, 1);
    }
  } finally {
    await c.end();
  }
  const events = await waitForEvents(agate, (ev) => ev.some((e) => e.type === 'Command' && e.text === 'DELETE FROM items WHERE id = $1'));
  const del = events.find((e): e is Command => e.type === 'Command' && e.text === 'DELETE FROM items WHERE id = $1')!;
  assert.equal(del.parameters, ['40']);
  const insert = commands(agate).find((e) => e.text.startsWith('INSERT'))!;
  assert.equal(insert.parameters, ['40', null]);
  const named = commands(agate).filter((e) => e.text === 'SELECT name FROM items WHERE id = $1');
  assert.equal(named.map((e) => e.parameters), [['1'], ['3']]);
  const done = await waitForEvents(agate, (ev) => ev.some((e) => e.type === 'Response' && e.command_id === del.event_id));
  const resp = done.find((e): e is Response => e.type === 'Response' && e.command_id === del.event_id)!;
  assert.is(resp.status, 'ok');
  assert.is(resp.command_tag, 'DELETE 1');
  assert.is(resp.rows, 1);
});

extended('a denied statement in the middle of a pipeline fails with 42501; the rest is skipped until Sync', async ({ agate }) => {
  const c = await RawClient.login(agate.host, agate.port, await agate.token());
  try {
    const step = (text: string, values: string[] = []) => [
      serialize.parse({ text }), serialize.bind({ values }), serialize.describe({ type: 'P' }), serialize.execute({}),
    ];
    c.send(
      serialize.query('BEGIN'),
      ...step('INSERT INTO items VALUES ($1, $2)', ['50', 'pipelined']),
      ...step('TRUNCATE items'),
      ...step('INSERT INTO items VALUES ($1, $2)', ['51', 'never']),
      serialize.sync(),
      ...step('SELECT 1'),
      serialize.sync(),
      serialize.query('ROLLBACK'),
    );
    const replies = await c.readyCount(4);
    const names = replies.map((r) => r.name);
    assert.equal(names, [
      'commandComplete', 'readyForQuery', // BEGIN
      'parseComplete', 'bindComplete', 'noData', 'commandComplete', // the first INSERT ran
      'parseComplete', 'bindComplete', 'noData', 'error', 'readyForQuery', // TRUNCATE refused at Execute; the second INSERT discarded
      'error', 'readyForQuery', // as after any error inside BEGIN, the transaction is failed (25P02)
      'commandComplete', 'readyForQuery', // ROLLBACK
    ]);
    const errors = replies.filter((r) => r.name === 'error').map((r) => r.code);
    assert.equal(errors, ['42501', '25P02']);
    assert.equal(replies.filter((r) => r.name === 'readyForQuery').map((r) => r.status), ['T', 'E', 'E', 'I']);
    const never = await agate.pg.psql("SELECT count(*) FROM items WHERE id IN (50, 51)");
    assert.is(never, '0');
  } finally {
    c.close();
  }
});

extended('outside a transaction block, a refusal rolls back the statements before it in the same Sync', async ({ agate }) => {
  const c = await RawClient.login(agate.host, agate.port, await agate.token());
  try {
    c.send(
      serialize.parse({ text: 'INSERT INTO items VALUES ($1, $2)' }), serialize.bind({ values: ['70', 'rolled back'] }), serialize.execute({}),
      serialize.parse({ text: 'DROP TABLE items' }), serialize.bind({}), serialize.execute({}),
      serialize.sync(),
    );
    const replies = await c.readyCount(1);
    assert.equal(replies.map((r) => r.name), ['parseComplete', 'bindComplete', 'commandComplete', 'parseComplete', 'bindComplete', 'error', 'readyForQuery']);
    assert.is(replies.find((r) => r.name === 'error')!.code, '42501');
    assert.is(await agate.pg.psql('SELECT count(*) FROM items WHERE id = 70'), '0');
  } finally {
    c.close();
  }
});

extended('errors at Parse, at Bind and at Execute are recorded against the statement sent, with the SQLSTATE', async ({ agate }) => {
  const c = await RawClient.login(agate.host, agate.port, await agate.token());
  // The pgjdbc / psycopg shape: Parse, Bind, Describe, Execute, Sync for each statement.
  const flow = (text: string, values: string[] = []) => [
    serialize.parse({ text }), serialize.bind({ values }), serialize.describe({ type: 'P' }), serialize.execute({}), serialize.sync(),
  ];
  try {
    c.send(
      ...flow('SELECT * FROM nosuch_table'), // fails at Parse: 42P01
      ...flow('SELECT $1::int AS n', ['abc']), // fails at Bind: 22P02
      ...flow('SELECT 1/0'), // constant-folded at Bind: 22012
      ...flow('SELECT 1/(id - id) FROM items'), // fails while executing: 22012
      // The asyncpg shape of preparing: Parse, Describe statement, Sync, and no Execute.
      serialize.parse({ name: 'asyncpg_1', text: 'SELECT nosuch_column FROM items' }), serialize.describe({ type: 'S', name: 'asyncpg_1' }), serialize.sync(),
    );
    const replies = await c.readyCount(5);
    assert.equal(replies.filter((r) => r.name === 'error').map((r) => r.code), ['42P01', '22P02', '22012', '22012', '42703']);
  } finally {
    c.close();
  }
  const texts = ['SELECT * FROM nosuch_table', 'SELECT $1::int AS n', 'SELECT 1/0', 'SELECT 1/(id - id) FROM items', 'SELECT nosuch_column FROM items'];
  const responseOf = (events: AgateEvent[], text: string) => {
    const cmd = events.find((e): e is Command => e.type === 'Command' && e.text === text);
    return cmd === undefined ? undefined : events.find((e): e is Response => e.type === 'Response' && e.command_id === cmd.event_id);
  };
  const events = await waitForEvents(agate, (ev) => texts.every((t) => responseOf(ev, t) !== undefined));
  const got = texts.map((t) => [t, responseOf(events, t)!.status, responseOf(events, t)!.error_code]);
  assert.equal(got, [
    ['SELECT * FROM nosuch_table', 'error', '42P01'],
    ['SELECT $1::int AS n', 'error', '22P02'],
    ['SELECT 1/0', 'error', '22012'],
    ['SELECT 1/(id - id) FROM items', 'error', '22012'],
    ['SELECT nosuch_column FROM items', 'error', '42703'],
  ]);
  assert.match(responseOf(events, 'SELECT $1::int AS n')!.error_message!, /invalid input syntax for type integer/);
  const bind = events.find((e): e is Command => e.type === 'Command' && e.text === 'SELECT $1::int AS n')!;
  assert.equal(bind.parameters, ['abc']);
  const prepared = events.find((e): e is Command => e.type === 'Command' && e.text === 'SELECT nosuch_column FROM items')!;
  assert.equal(prepared.attributes, { message: 'Parse', statement: 'asyncpg_1', settled: 'failed' });
  // One record per statement sent: nothing recorded twice.
  for (const t of texts) assert.is(events.filter((e) => e.type === 'Command' && e.text === t).length, 1, t);
});

extended('an error that comes back before the rest of its pipeline is sent: later results stay with their own statements', async ({ agate }) => {
  const c = await RawClient.login(agate.host, agate.port, await agate.token());
  const step = (text: string) => [serialize.parse({ text }), serialize.bind({}), serialize.describe({ type: 'P' }), serialize.execute({})];
  try {
    // Flush makes the server send the error before the client has sent the rest of the batch.
    c.send(...step('SELECT 1/(id - id) AS boom FROM items'), serialize.flush());
    await c.until((r) => r.name === 'error');
    c.send(...step('SELECT 2 AS two'), serialize.sync());
    await c.until((r) => r.name === 'readyForQuery');
    c.take();
    c.send(...step('SELECT 3 AS three'), ...step('SELECT 4 AS four'), serialize.sync());
    const replies = await c.readyCount(1);
    assert.equal(replies.filter((r) => r.name === 'dataRow').map((r) => (r.fields as string[])[0]), ['3', '4']);
  } finally {
    c.close();
  }
  const texts = ['SELECT 1/(id - id) AS boom FROM items', 'SELECT 2 AS two', 'SELECT 3 AS three', 'SELECT 4 AS four'];
  const responseOf = (events: AgateEvent[], text: string) => {
    const cmd = events.find((e): e is Command => e.type === 'Command' && e.text === text);
    return cmd === undefined ? undefined : events.find((e): e is Response => e.type === 'Response' && e.command_id === cmd.event_id);
  };
  const events = await waitForEvents(agate, (ev) => texts.every((t) => responseOf(ev, t) !== undefined));
  assert.equal(texts.map((t) => [responseOf(events, t)!.status, responseOf(events, t)!.columns, responseOf(events, t)!.rows]), [
    ['error', ['boom'], 0], ['skipped', [], 0], ['ok', ['three'], 1], ['ok', ['four'], 1],
  ]);
  const two = events.find((e): e is Command => e.type === 'Command' && e.text === 'SELECT 2 AS two')!;
  assert.is(two.attributes.settled, 'skipped', 'the server ignored it: recorded, not decided');
});

extended('a portal fetched 10 rows at a time (pgjdbc setFetchSize) is one command with its fetches, decided once', async ({ agate }) => {
  const c = await RawClient.login(agate.host, agate.port, await agate.token());
  const text = 'SELECT g AS n FROM generate_series(1, 1000) g';
  try {
    // pgjdbc's shape with autocommit off: a named portal, Execute with a row limit and Sync, then
    // Execute and Sync again until CommandComplete.
    c.send(serialize.query('BEGIN'), serialize.parse({ text }), serialize.bind({ portal: 'C_1' }), serialize.describe({ type: 'P', name: 'C_1' }), serialize.execute({ portal: 'C_1', rows: 10 }), serialize.sync());
    let rows = (await c.readyCount(2)).filter((r) => r.name === 'dataRow').length;
    let executes = 1;
    for (;;) {
      c.send(serialize.execute({ portal: 'C_1', rows: 10 }), serialize.sync());
      const replies = await c.readyCount(1);
      executes += 1;
      rows += replies.filter((r) => r.name === 'dataRow').length;
      if (replies.some((r) => r.name === 'commandComplete')) break;
      assert.ok(replies.some((r) => r.name === 'portalSuspended'), replies.map((r) => r.name).join(','));
    }
    assert.is(rows, 1000);
    assert.is(executes, 101);
    c.send(serialize.query('COMMIT'));
    await c.readyCount(1);
  } finally {
    c.close();
  }
  const events = await waitForEvents(agate, (ev) => ev.some((e) => e.type === 'Command' && e.text === 'COMMIT'));
  const commands = events.filter((e): e is Command => e.type === 'Command' && e.text === text);
  assert.is(commands.length, 1, 'one command, not one per Execute');
  assert.is(events.filter((e) => e.type === 'Verdict' && e.command_id === commands[0]!.event_id).length, 1, 'decided once');
  const responses = events.filter((e): e is Response => e.type === 'Response' && e.command_id === commands[0]!.event_id);
  assert.is(responses.length, 1);
  const r = responses[0]!;
  assert.equal([r.status, r.rows, r.columns], ['ok', 1000, ['n']]);
  assert.equal(r.fetches, [...Array.from({ length: 100 }, () => 10), 0]);
});

extended('a Query followed at once by Terminate and a closed socket keeps its result', async ({ agate }) => {
  const rounds = 10;
  for (let i = 0; i < rounds; i++) {
    const c = await RawClient.login(agate.host, agate.port, await agate.token());
    c.sendAndLeave(serialize.query(`SELECT pg_sleep(0.05), ${i} AS round_${i}`));
  }
  const responseOf = (events: AgateEvent[], text: string) => {
    const cmd = events.find((e): e is Command => e.type === 'Command' && e.text === text);
    return cmd === undefined ? undefined : events.find((e): e is Response => e.type === 'Response' && e.command_id === cmd.event_id);
  };
  const texts = Array.from({ length: rounds }, (_, i) => `SELECT pg_sleep(0.05), ${i} AS round_${i}`);
  const events = await waitForEvents(agate, (ev) => texts.every((t) => responseOf(ev, t) !== undefined));
  assert.equal(texts.map((t) => [responseOf(events, t)!.status, responseOf(events, t)!.rows, responseOf(events, t)!.command_tag]), texts.map(() => ['ok', 1, 'SELECT 1']));
});

extended('results in binary format are recorded exactly as the same results in text format, for every built-in type', async ({ agate }) => {
  const c = await RawClient.login(agate.host, agate.port, await agate.token());
  const text = `SELECT 1::int2, 2::int4, -3::int8, 1.5::float4, 0.1::float8, 1e300::float8, true, 'tëxt'::text, '\\xcafe'::bytea,
    '2024-02-29'::date, '0044-03-15 BC'::date, '12:34:56.789'::time, '12:00:01+05:30'::timetz,
    '2024-02-29 12:34:56.5'::timestamp, '2024-02-29 12:34:56.5+00'::timestamptz, 'infinity'::timestamp,
    '1 year 2 mons -3 days 04:05:06.5'::interval, '-00:00:01'::interval, '11111111-2222-3333-4444-555555555555'::uuid,
    '{"a": [1, 2]}'::json, '{"a": [1, 2]}'::jsonb, 123.4500::numeric, -0.00001234::numeric, 'NaN'::numeric, 10000::numeric,
    ARRAY[1, 2, NULL]::int4[], ARRAY['a', 'b c', '"q"', 'NULL', '']::text[], ARRAY[1.5, 2]::numeric[], '{{1,2},{3,4}}'::int8[],
    '[0:1]={7,8}'::int2[], '{}'::int4[], ARRAY['2024-01-01'::date], ARRAY[true, false], ARRAY['\\x00'::bytea],
    ARRAY['1 day'::interval], ARRAY['2024-02-29 12:34:56.5'::timestamp], ARRAY[0.25::float8], ARRAY['11111111-2222-3333-4444-555555555555'::uuid]`;
  try {
    c.send(serialize.query("SET TimeZone = 'UTC'"));
    await c.readyCount(1);
    for (const binary of [false, true]) {
      c.send(serialize.parse({ text }), serialize.bind({ binary }), serialize.describe({ type: 'P' }), serialize.execute({}), serialize.sync());
      const replies = await c.readyCount(1);
      assert.ok(replies.some((r) => r.name === 'dataRow'), replies.map((r) => r.name).join(','));
    }
  } finally {
    c.close();
  }
  const answered = (ev: AgateEvent[]) => ev.filter((c) => c.type === 'Command' && c.text === text && ev.some((r) => r.type === 'Response' && r.command_id === c.event_id)).length;
  const events = await waitForEvents(agate, (ev) => answered(ev) === 2);
  const [asText, asBinary] = events.filter((e): e is Command => e.type === 'Command' && e.text === text).map((cmd) => events.find((e): e is Response => e.type === 'Response' && e.command_id === cmd.event_id)!);
  assert.is(asText!.sample[0]!.length, 38);
  assert.equal(asBinary!.sample, asText!.sample);
  assert.ok(!asBinary!.sample[0]!.some((v) => v?.startsWith('\\x') && v !== '\\xcafe'), 'no value left as raw hex');
});

extended('a frame longer than max_message_bytes is a protocol error: FATAL 08P01', async ({ agate }) => {
  const c = await RawClient.login(agate.host, agate.port, await agate.token());
  const huge = Buffer.alloc(5);
  huge[0] = 0x51; // Q
  huge.writeInt32BE(64 << 20, 1); // above the 16 MiB default; nothing more need be sent
  c.send(huge);
  const replies = await c.until((r) => r.name === 'error');
  const e = replies.find((r) => r.name === 'error') as { code?: string; severity?: string };
  assert.is(e.code, '08P01');
  assert.is(e.severity, 'FATAL');
});

extended.run();

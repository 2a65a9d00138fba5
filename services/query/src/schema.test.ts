import { suite } from '../../../test/harness/suite.js';
import * as assert from 'uvu/assert';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { randomUUID } from 'node:crypto';
import type { Command, Response, Verdict } from '../../../schemas/src/events.js';
import { DURABLE_TABLE_SETTINGS, durableSettingsOf } from '../../../core/src/store/durable-tables.js';
import { EmbeddedStore } from '../../../core/src/store/embedded.js';
import { getSession, listSessions } from './queries.js';
import { QUERY_DDL, migrateQuery } from './schema.js';
import { sessionEvents, testLedger } from './test-ledger.js';

/*
 * The session tables behind listSessions: filled by materialized views as the ledger appends,
 * backfilled once from events recorded before the query service first ran, and never counted
 * twice when the backfill and the views overlap or the migration runs again.
 */
const dir = mkdtempSync(join(tmpdir(), 'agate-query-schema-'));
const store = EmbeddedStore.open(join(dir, 'store'));
const schema = suite('session tables');
schema.after(async () => {
  await store.close();
  rmSync(dir, { recursive: true, force: true });
});

schema('backfill, then materialized views; counters are not doubled by a second migration', async () => {
  const ledger = await testLedger(store);
  const before = sessionEvents('early', 4);
  await ledger.append(before);
  await migrateQuery(store); // backfills the session recorded before it
  await migrateQuery(store); // idempotent: no second backfill
  const after = sessionEvents('late', 6, 1_764_000_100_000_000);
  await ledger.append(after.slice(0, 10));
  await ledger.append(after.slice(10)); // one session spread over two inserts
  await ledger.append(after.slice(10)); // a redelivery is dropped by the ledger
  const early = await getSession(store, before[0]!.session_id);
  assert.equal({ ...early, opened_at: undefined }, {
    session_id: before[0]!.session_id, opened_at: undefined, protocol: 'postgres', target: 'app', issuer: 'https://token.actions.githubusercontent.com',
    subject: 'early', client_address: '10.0.0.4:5432', proxy_id: 'proxy-a', closed_at: early!.closed_at, commands: 4, denied: 2,
  });
  assert.ok(early!.closed_at !== null);
  const late = await listSessions(store, { subject: 'late', limit: 10 });
  assert.is(late.length, 1);
  assert.is(late[0]!.commands, 6);
  assert.is(late[0]!.denied, 2);
  assert.is((await listSessions(store, { verdict: 'deny', limit: 10 })).length, 2);
  assert.is((await listSessions(store, { subject: 'early', fromMicros: 1_764_000_050_000_000, limit: 10 })).length, 0);
  // The analyst view agrees with the API.
  const rows = await store.query<{ subject: string; commands: string; denied: string }>('SELECT subject, commands, denied FROM agate.sessions ORDER BY subject');
  assert.equal(rows.map((r) => [r.subject, Number(r.commands), Number(r.denied)]), [['early', 4, 2], ['late', 6, 2]]);
  await ledger.stop();
});

schema('the session tables, filled by the ledger\'s inserts, are as durable as the ledger; older ones are migrated', async () => {
  const wanted = Object.fromEntries(Object.entries(DURABLE_TABLE_SETTINGS).map(([k, v]) => [k, String(v)]));
  const both = async () => [await durableSettingsOf(store, 'agate', 'q_sessions'), await durableSettingsOf(store, 'agate', 'q_session_stats')];
  await migrateQuery(store);
  assert.equal(await both(), [wanted, wanted]);
  for (const t of ['q_sessions', 'q_session_stats']) await store.exec(`ALTER TABLE agate.${t} RESET SETTING ${Object.keys(DURABLE_TABLE_SETTINGS).join(', ')}`);
  assert.not.equal(await both(), [wanted, wanted]);
  await migrateQuery(store);
  assert.equal(await both(), [wanted, wanted]);
});

schema('a store made before responses had an outcome is upgraded in place: decisions and activity gain it', async () => {
  const ledger = await testLedger(store);
  await migrateQuery(store);
  // The store as the previous version left it: views without `outcome` (their definitions then).
  const before = (ddl: string) => {
    const old = ddl.replace(' r.outcome AS outcome,', '').replace(' argMin(outcome, seq) AS outcome,', '').replace(' d.outcome AS outcome,', '');
    assert.is.not(old, ddl);
    return old;
  };
  for (const name of ['decisions', 'activity']) await store.exec(before(QUERY_DDL.find((d) => d.includes(`VIEW agate.${name} AS`))!));
  assert.ok(await store.query('SELECT outcome FROM agate.decisions LIMIT 1').then(() => false, () => true), 'the old view has no outcome');
  // Recorded then: a response from before schema v7 (no outcome in its body), and after the
  // upgrade a command a crash cut (closed at the next start) and one that has no response yet.
  const [opened, c1, v1, r1] = sessionEvents('upgrade', 3, 1_764_000_200_000_000);
  const { outcome: _absent, ...oldBody } = r1 as Response;
  await ledger.append([opened!, c1!, v1!, oldBody as Response]);
  await migrateQuery(store);
  const head = { session_id: opened!.session_id, time: 1_764_000_201_000_000 };
  const c2: Command = { ...(c1 as Command), ...head, event_id: randomUUID(), sequence: 2 };
  const c3: Command = { ...(c1 as Command), ...head, event_id: randomUUID(), sequence: 3 };
  await ledger.append([
    c2, { ...(v1 as Verdict), ...head, event_id: randomUUID(), command_id: c2.event_id, decision: 'allow', rule_id: null },
    { ...(r1 as Response), ...head, event_id: randomUUID(), command_id: c2.event_id, status: 'error', outcome: 'unknown', error_message: 'outcome unknown: Agate stopped after forwarding' },
    c3,
  ]);
  const [hasOutcome] = await store.query<{ n: string }>("SELECT count() AS n FROM agate.ledger WHERE event_id = {id:String} AND JSONHas(body, 'outcome')", { id: r1!.event_id });
  assert.is(Number(hasOutcome!.n), 0, 'the old response is stored without an outcome');
  const rows = (view: string) => store.query<{ command_id: string; status: string; outcome: string }>(
    `SELECT command_id, status, outcome FROM agate.${view} WHERE command_id IN {ids:Array(String)} ORDER BY sequence`, { ids: [c1!.event_id, c2.event_id, c3.event_id] });
  const wanted = [[c1!.event_id, 'ok', 'observed'], [c2.event_id, 'error', 'unknown'], [c3.event_id, '', '']];
  for (const view of ['decisions', 'activity']) assert.equal((await rows(view)).map((r) => [r.command_id, r.status, r.outcome]), wanted, view);
  await ledger.stop();
});

schema.run();

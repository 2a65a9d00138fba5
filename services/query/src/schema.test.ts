import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { DURABLE_TABLE_SETTINGS, durableSettingsOf } from '../../../core/src/store/durable-tables.js';
import { EmbeddedStore } from '../../../core/src/store/embedded.js';
import { getSession, listSessions } from './queries.js';
import { migrateQuery } from './schema.js';
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

schema.run();

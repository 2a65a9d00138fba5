import { suite } from '../../../test/harness/suite.js';
import * as assert from 'uvu/assert';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { EmbeddedStore } from '../../../core/src/store/embedded.js';
import { migrateQuery } from './schema.js';
import { checkSessionTables } from './session-check.js';
import { sessionEvents, testLedger } from './test-ledger.js';

/*
 * The session tables are derived from the ledger outside its hash chain; verification derives
 * them again and compares. A deleted, changed or inserted row must be named, on the real engine.
 */
const dir = mkdtempSync(join(tmpdir(), 'agate-session-check-'));
const store = EmbeddedStore.open(join(dir, 'store'));
const test = suite('session tables against the ledger');
test.after(async () => {
  await store.close();
  rmSync(dir, { recursive: true, force: true });
});

const mutate = (sql: string) => store.exec(`${sql} SETTINGS mutations_sync = 2`);
const ids: string[] = [];

test.before(async () => {
  const ledger = await testLedger(store);
  await migrateQuery(store);
  for (const who of ['alice', 'bob', 'carol']) {
    const events = sessionEvents(who, 3);
    ids.push(events[0]!.session_id);
    await ledger.append(events);
  }
});

test('tables that match the ledger pass, with the number of sessions', async () => {
  assert.equal(await checkSessionTables(store, 0), { ok: true, sessions: 3, problem: null });
});

test('a deleted session row is named', async () => {
  await mutate(`ALTER TABLE agate.q_sessions DELETE WHERE session_id = '${ids[1]}'`);
  const r = (await checkSessionTables(store, 0))!;
  assert.not.ok(r.ok);
  assert.is(r.problem, `session ${ids[1]} is in the ledger, but agate.sessions does not show it as recorded (its agate.q_sessions row was deleted or changed)`);
  await store.exec(`INSERT INTO agate.q_sessions SELECT * FROM (${(await import('./schema.js')).SESSIONS_SELECT}) WHERE session_id = '${ids[1]}'`);
  assert.ok((await checkSessionTables(store, 0))!.ok, 'put back, it matches again');
});

test('a changed column and an invented session are named', async () => {
  // The application name analysts group sessions by is covered like the other columns.
  await mutate(`ALTER TABLE agate.q_sessions UPDATE attributes = map('application_name', 'nightly-report') WHERE session_id = '${ids[1]}'`);
  assert.match((await checkSessionTables(store, 0))!.problem ?? '', new RegExp(`session ${ids[1]} is in the ledger`));
  await mutate(`ALTER TABLE agate.q_sessions DELETE WHERE session_id = '${ids[1]}'`);
  await store.exec(`INSERT INTO agate.q_sessions SELECT * FROM (${(await import('./schema.js')).SESSIONS_SELECT}) WHERE session_id = '${ids[1]}'`);
  assert.ok((await checkSessionTables(store, 0))!.ok);
  await mutate(`ALTER TABLE agate.q_sessions UPDATE client_address = '192.0.2.1:1' WHERE session_id = '${ids[0]}'`);
  assert.match((await checkSessionTables(store, 0))!.problem ?? '', new RegExp(`session ${ids[0]} is in the ledger`));
  await mutate(`ALTER TABLE agate.q_sessions DELETE WHERE session_id = '${ids[0]}'`);
  await store.exec(`INSERT INTO agate.q_sessions SELECT * FROM (${(await import('./schema.js')).SESSIONS_SELECT}) WHERE session_id = '${ids[0]}'`);
  await store.exec(`INSERT INTO agate.q_sessions SELECT * REPLACE ('invented' AS session_id) FROM (SELECT * FROM agate.q_sessions FINAL WHERE session_id = '${ids[2]}')`);
  assert.is((await checkSessionTables(store, 0))!.problem, 'agate.q_sessions holds session invented as the ledger does not record it (a row inserted or changed)');
  await mutate("ALTER TABLE agate.q_sessions DELETE WHERE session_id = 'invented'");
});

test('deleted session counters are named', async () => {
  assert.ok((await checkSessionTables(store, 0))!.ok);
  await mutate(`ALTER TABLE agate.q_session_stats DELETE WHERE session_id = '${ids[2]}'`);
  assert.match((await checkSessionTables(store, 0))!.problem ?? '', new RegExp(`the counters of session ${ids[2]} in agate.q_session_stats`));
});

test.run();

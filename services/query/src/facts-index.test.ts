import { suite } from '../../../test/harness/suite.js';
import * as assert from 'uvu/assert';
import { randomUUID } from 'node:crypto';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { EmbeddedStore } from '../../../core/src/store/embedded.js';
import type { AgateEvent } from '../../../schemas/src/events.js';
import { SAMPLES } from '../../../schemas/src/samples.js';
import { checkCommandFacts } from './facts-check.js';
import { FactsIndex } from './facts-index.js';
import { migrateQuery, SESSION_TABLES_DDL, SESSION_VIEWS } from './schema.js';
import { sessionEvents, testLedger } from './test-ledger.js';

/*
 * q_command_facts follows the ledger: every command indexed once, in order, incrementally, and
 * the session table of an earlier version gains its attributes (application name) on upgrade.
 */
const dir = mkdtempSync(join(tmpdir(), 'agate-facts-index-'));
const store = EmbeddedStore.open(join(dir, 'store'));
const index = suite('facts index');
let ledger: Awaited<ReturnType<typeof testLedger>>;
index.before(async () => {
  ledger = await testLedger(store);
});
index.after(async () => {
  await ledger.stop();
  await store.close();
  rmSync(dir, { recursive: true, force: true });
});

/** An SSH command in the session of `like` (a Command event): indexed with no SQL facts. */
const sshCommand = (like: AgateEvent): AgateEvent => ({ ...(like as typeof SAMPLES.Command), event_id: randomUUID(), sequence: 99, protocol: 'ssh', text: 'rm -rf /tmp/x', attributes: { request: 'exec' } });

index('catches up in order, once, and again after more commands', async () => {
  // A q_sessions as an earlier version made it: without the attributes column or its view's extraction.
  await store.exec(SESSION_TABLES_DDL[0]!.replace('    attributes Map(String, String),\n', ''));
  const oldSelect = SESSION_VIEWS[0]!.select.replace(/,\s*JSONExtract\(body, 'attributes'.*? AS attributes/, '');
  assert.not.ok(oldSelect.includes("'attributes'"));
  await store.exec(`CREATE MATERIALIZED VIEW agate.q_sessions_mv TO agate.q_sessions AS ${oldSelect}`);
  const first = sessionEvents('alice', 3);
  await ledger.append(first);
  const [before] = await store.query<{ n: string }>('SELECT count() AS n FROM agate.q_sessions');
  assert.is(Number(before!.n), 1, 'the old view filled the old table');
  await migrateQuery(store);
  const facts = new FactsIndex(store);
  const [a, b] = await Promise.all([facts.catchUp(), facts.catchUp()]);
  assert.is(a + b, 3, 'two concurrent catch-ups index each command once');
  assert.is(await facts.catchUp(), 0);
  const more = sessionEvents('bob', 2);
  await ledger.append([...more, sshCommand(more[1]!)]);
  assert.is(await facts.catchUp(), 3);
  const rows = await store.query<{ subject: string; statement: string; tables_read: string[]; request: string }>(
    "SELECT subject, statement, tables_read, attributes['request'] AS request FROM agate.activity ORDER BY subject, sequence, statement");
  assert.equal(rows.map((r) => [r.subject, r.statement, r.tables_read, r.request]), [
    ['alice', 'SelectStmt', ['items'], ''], ['alice', 'SelectStmt', ['items'], ''], ['alice', 'SelectStmt', ['items'], ''],
    ['bob', 'SelectStmt', ['items'], ''], ['bob', 'SelectStmt', ['items'], ''], ['bob', '', [], 'exec'],
  ]);
  const [n] = await store.query<{ n: string }>('SELECT count() AS n FROM agate.q_command_facts');
  assert.is(Number(n!.n), 6);
  // The upgraded session table has the application name of sessions recorded before the upgrade.
  const apps = await store.query<{ subject: string; application_name: string }>('SELECT subject, application_name FROM agate.sessions ORDER BY subject');
  assert.equal(apps.map((r) => [r.subject, r.application_name]), [['alice', 'psql'], ['bob', 'psql']]);
});

index('verification works the facts out again: a deleted, changed or added row is named', async () => {
  const mutate = (sql: string) => store.exec(`${sql} SETTINGS mutations_sync = 1`);
  assert.equal(await checkCommandFacts(store), { ok: true, commands: 6, problem: null });
  const [first] = await store.query<{ command_id: string; seq: string }>("SELECT command_id, seq FROM agate.q_command_facts FINAL WHERE statement = 'SelectStmt' ORDER BY seq LIMIT 1");
  const id = first!.command_id;
  const saved = await store.query<Record<string, unknown>>(`SELECT * FROM agate.q_command_facts FINAL WHERE command_id = '${id}'`);
  await mutate(`ALTER TABLE agate.q_command_facts DELETE WHERE command_id = '${id}'`);
  assert.match((await checkCommandFacts(store))!.problem ?? '', new RegExp(`command ${id} .* not in agate.q_command_facts`));
  await store.insert('agate.q_command_facts', saved);
  assert.ok((await checkCommandFacts(store))!.ok, 'put back, it matches again');
  await mutate(`ALTER TABLE agate.q_command_facts UPDATE table_names = ['innocent'] WHERE command_id = '${id}'`);
  assert.match((await checkCommandFacts(store))!.problem ?? '', new RegExp(`the facts of command ${id} .* differ`));
  await mutate(`ALTER TABLE agate.q_command_facts DELETE WHERE command_id = '${id}'`);
  await store.insert('agate.q_command_facts', saved);
  const [ssh] = await store.query<{ command_id: string }>("SELECT command_id FROM agate.q_command_facts FINAL WHERE attributes['request'] = 'exec'");
  await mutate(`ALTER TABLE agate.q_command_facts UPDATE attributes = map('request', 'sftp') WHERE command_id = '${ssh!.command_id}'`);
  assert.match((await checkCommandFacts(store))!.problem ?? '', new RegExp(`the facts of command ${ssh!.command_id} .* differ`));
  await mutate(`ALTER TABLE agate.q_command_facts UPDATE attributes = map('request', 'exec') WHERE command_id = '${ssh!.command_id}'`);
  assert.ok((await checkCommandFacts(store))!.ok);
  await store.insert('agate.q_command_facts', [{ ...saved[0], seq: 1 }]);
  assert.match((await checkCommandFacts(store))!.problem ?? '', new RegExp(`holds command ${id} more than once`));
});

index('following, the index catches up by itself until stopped', async () => {
  const count = async () => Number((await store.query<{ n: string }>('SELECT count() AS n FROM agate.q_command_facts'))[0]!.n);
  const before = await count();
  const errors: unknown[] = [];
  const stop = new FactsIndex(store).follow(20, (err) => errors.push(err));
  await ledger.append(sessionEvents('carol', 2));
  for (let i = 0; i < 200 && (await count()) < before + 2; i++) await new Promise((r) => setTimeout(r, 25));
  assert.is(await count(), before + 2, 'indexed without an analyst query');
  await stop();
  await ledger.append(sessionEvents('dave', 1));
  await new Promise((r) => setTimeout(r, 200));
  assert.is(await count(), before + 2, 'nothing indexed after stop');
  assert.equal(errors, []);
});

index.run();
